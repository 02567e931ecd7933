"""Issue 6's scale figures in one command: the similarity kernel against the machine's own
limits, then `nrr check` latency, ingest rate, bank size and peak memory.

    python benchmarks/scale.py            # 10k / 100k rows for the kernel, 1k / 100k banks
    python benchmarks/scale.py --full     # and 1M for both (building the 1M bank takes minutes)

Runs `similarity_bench.py` and `check_latency.py` in turn (each measures its baselines in
the same run) and prints their tables one after the other.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="include the 1M-row sizes")
    args = parser.parse_args(argv)
    kernel = [sys.executable, str(HERE / "similarity_bench.py")]
    check = [sys.executable, str(HERE / "check_latency.py")]
    if args.full:
        check.append("--full")
    else:
        kernel += ["--sizes", "10000,100000", "--latency-sizes", "1000,100000"]
    for command in (kernel, check):
        print(
            f"$ {' '.join(Path(part).name if part.endswith('.py') else part for part in command)}"
        )
        sys.stdout.flush()
        if subprocess.run(command).returncode:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
