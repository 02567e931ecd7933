"""Ingest of large synthetic results logs: rows/s and peak memory (RSS) of one `nrr ingest`.

    python benchmarks/ingest_large.py                 # 20 MB and 200 MB logs
    python benchmarks/ingest_large.py --sizes-mb 2 20 # any sizes

Each log is written from the dev corpus's real descriptions with perturbed numbers (the rows of
make_synthetic_bank.py) and ingested into a fresh SQLite bank by a child process, whose wall time
and peak RSS (ru_maxrss from wait4) are reported. The baseline, run in the same invocation, is a
2,000-row log ingested the same way: a large log's rows/s should stay near the baseline's (no
cost that grows faster than the rows) and its RSS near the baseline's (memory bounded, not
growing with the file).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_synthetic_bank as synthetic  # noqa: E402

HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
BASELINE_ROWS = 2_000
CHILD = """
import sys, time
from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
last = [0.0]
def progress(path, done, total):
    now = time.monotonic()
    if now - last[0] >= 2.0 or done == total:
        last[0] = now
        print("progress", "stored" if total else "read", done, file=sys.stderr, flush=True)
bank = open_bank(sys.argv[1])
summary = ingest_log(bank, sys.argv[2], progress=progress)
print(summary.rows_added)
"""
CURVE_EVERY_S = 10.0  # the child's RSS and progress are sampled this often


def write_log(path: Path, *, target_bytes: int | None = None, rows: int | None = None) -> int:
    """Write a synthetic log of about target_bytes (or exactly `rows` rows); return its rows."""
    templates = synthetic.dev_descriptions()
    statuses, weights = list(synthetic.STATUS_WEIGHTS), list(synthetic.STATUS_WEIGHTS.values())
    rng = random.Random(7)
    written, count, metric = len(HEADER), 0, 1.0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        while (rows is not None and count < rows) or (
            target_bytes is not None and written < target_bytes
        ):
            text = synthetic.NUMBER.sub(
                lambda m: synthetic._perturb(m.group(0), rng), rng.choice(templates)
            )
            row = {"status": rng.choices(statuses, weights)[0], "description": text}
            status = row["status"]
            if status == "keep":
                metric -= 1e-6
            value = (
                "0.000000" if status == "crash" else f"{metric + 0.002 * (status != 'keep'):.6f}"
            )
            description = row["description"].replace("\t", " ").replace("\n", " ")
            line = f"{count:08x}\t{value}\t1.0\t{status}\t{description}\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            count += 1
    return count


def _rss_mb(pid: int) -> float:
    """The process's resident set now (VmRSS), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _last_progress(errors: Path) -> str:
    try:
        lines = [
            ln
            for ln in errors.read_text(errors="replace").splitlines()
            if ln.startswith("progress")
        ]
    except OSError:
        return ""
    return lines[-1].split(" ", 1)[1] if lines else ""


def ingest_child(
    bank: Path, log: Path, curve: Path | None = None
) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, rows added) of one ingest in a fresh process.

    With `curve`, the child's RSS and its last progress line are appended to that file every
    CURVE_EVERY_S seconds (how far a long run got, and whether memory grows with the rows)."""
    started = time.perf_counter()
    errors = bank.with_suffix(".stderr")
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(bank), str(log)],
        stdout=subprocess.PIPE,
        stderr=errors.open("wb"),
    )
    assert process.stdout is not None
    # Reaped by wait4 only (never poll): its resource usage is the figure.
    pid, status, usage = os.wait4(process.pid, os.WNOHANG) if curve else (0, 0, None)
    if curve is not None:
        with curve.open("a") as out:
            while pid == 0:
                time.sleep(CURVE_EVERY_S)
                elapsed = time.perf_counter() - started
                line = f"{elapsed:8.0f} s  RSS {_rss_mb(process.pid):7.1f} MB  {_last_progress(errors)}"
                print(line, file=out, flush=True)
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    output = process.stdout.read()
    if usage is None:
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = errors.read_text(errors="replace")[-2000:]
        raise SystemExit(f"ingest of {log} failed with exit {process.returncode}:\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024.0, int(output.decode().split()[-1])


def measure(folder: Path, name: str, curve: Path | None = None, **size: int) -> dict[str, float]:
    log = folder / f"{name}.tsv"
    rows = write_log(log, **size)
    if curve is not None:
        with curve.open("a") as out:
            print(f"# {name}: {rows:,} rows, {log.stat().st_size / 1e6:.1f} MB", file=out)
    elapsed, cpu, rss, added = ingest_child(folder / f"{name}.db", log, curve)
    if added != rows:
        raise SystemExit(f"{name}: {rows} rows written, {added} stored")
    return {
        "rows": rows,
        "mb": log.stat().st_size / 1e6,
        "seconds": elapsed,
        "cpu_s": cpu,
        "rows_per_s": rows / elapsed,
        "rows_per_cpu_s": rows / cpu,
        "rss_mb": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[20.0, 200.0])
    parser.add_argument("--dir", type=Path, default=None, help="Scratch folder (default: temp).")
    parser.add_argument(
        "--curve",
        type=Path,
        default=None,
        help="Append each large log's RSS and progress every 10 s to this file.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        base = measure(folder, "baseline", rows=BASELINE_ROWS)
        print(
            f"baseline {base['rows']:>9,} rows {base['mb']:7.1f} MB  {base['seconds']:7.1f} s"
            f"  {base['rows_per_s']:7,.0f} rows/s ({base['rows_per_cpu_s']:,.0f} per CPU s)"
            f"  peak RSS {base['rss_mb']:6.0f} MB"
        )
        for size in args.sizes_mb:
            got = measure(folder, f"log{size:g}mb", args.curve, target_bytes=int(size * 1e6))
            print(
                f"{size:6g} MB {got['rows']:>9,} rows {got['mb']:7.1f} MB  {got['seconds']:7.1f} s"
                f"  {got['rows_per_s']:7,.0f} rows/s ({got['rows_per_cpu_s']:,.0f} per CPU s)"
                f"  peak RSS {got['rss_mb']:6.0f} MB"
                f"  CPU rate x{got['rows_per_cpu_s'] / base['rows_per_cpu_s']:.2f} of baseline,"
                f" RSS x{got['rss_mb'] / base['rss_mb']:.2f}"
            )
            for path in folder.glob(f"log{size:g}mb*"):
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
