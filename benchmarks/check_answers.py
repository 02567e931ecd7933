"""Do two versions of the code give the same `nrr check` answers? Dump, then compare.

    python benchmarks/check_answers.py dump before.jsonl            # on the old code
    python benchmarks/check_answers.py dump after.jsonl             # on the new code
    python benchmarks/check_answers.py compare before.jsonl after.jsonl

`dump` answers the same proposals (check_latency.proposals) on the cached 1k and 100k banks of
check_latency.py (benchmarks/out/), on each path: the bank's fit, the population prior (fit
moved aside) and the conjugate form, with a held Checker and record=False. Each answer is
written twice: as printed (rounded) and with every number unrounded, so `compare` reports both
the answers that differ byte for byte and the largest difference of any number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_latency as latency  # noqa: E402

PATHS = (("fit", {}), ("population-prior", {}), ("conjugate", {"use_population_prior": False}))


def _answers(path: Path, texts: list[str], unrounded: bool, **options: Any) -> list[str]:
    import nrr_stats.check as check
    from nrr_stats.bank import open_bank

    rounded = check._rounded
    if unrounded:
        check._rounded = lambda value, digits=4: (  # every number as computed
            None if value is None or value != value else float(value)
        )
    try:
        with open_bank(path, create=False) as bank, check.Checker(bank, **options) as checker:
            return [json.dumps(checker.check(t, record=False), sort_keys=True) for t in texts]
    finally:
        check._rounded = rounded


def dump(out: Path, sizes: list[int], count: int) -> None:
    texts = latency.proposals(count)
    with out.open("w", encoding="utf-8") as sink:
        for size in sizes:
            bank, _ = latency.build_bank(size)
            for name, options in PATHS:
                if name == "fit":
                    runs = [_answers(bank, texts, u, **options) for u in (False, True)]
                else:
                    with latency.WithoutFit(bank):
                        runs = [_answers(bank, texts, u, **options) for u in (False, True)]
                for text, printed, exact in zip(texts, *runs, strict=True):
                    row = {"size": size, "path": name, "proposal": text}
                    sink.write(json.dumps(row | {"printed": printed, "exact": exact}) + "\n")


def _numbers(value: Any, where: str = "") -> dict[str, float]:
    """Every number of a JSON value by its path."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, int | float):
        return {where: float(value)}
    if isinstance(value, dict):
        return {k: v for key in value for k, v in _numbers(value[key], f"{where}.{key}").items()}
    if isinstance(value, list):
        return {
            k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{where}[{i}]").items()
        }
    return {}


def _shape(value: Any) -> Any:
    """The answer with every number blanked: what must be equal exactly."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return 0
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return [_shape(item) for item in value]


def compare(before: Path, after: Path) -> int:
    old = [json.loads(line) for line in before.read_text(encoding="utf-8").splitlines()]
    new = [json.loads(line) for line in after.read_text(encoding="utf-8").splitlines()]
    if [(r["size"], r["path"], r["proposal"]) for r in old] != [
        (r["size"], r["path"], r["proposal"]) for r in new
    ]:
        print("the dumps answer different questions")
        return 2
    differ, shapes, worst = 0, 0, (0.0, "")
    for a, b in zip(old, new, strict=True):
        differ += a["printed"] != b["printed"]
        exact_a, exact_b = json.loads(a["exact"]), json.loads(b["exact"])
        shapes += _shape(exact_a) != _shape(exact_b)
        numbers_a, numbers_b = _numbers(exact_a), _numbers(exact_b)
        for key in numbers_a.keys() & numbers_b.keys():
            gap = abs(numbers_a[key] - numbers_b[key])
            if gap > worst[0]:
                worst = (gap, f"{a['size']} {a['path']} {key}")
    print(
        f"{len(old)} answers: {len(old) - differ} printed byte-identical, {differ} differ; "
        f"{shapes} differ in anything but numbers; largest difference of an unrounded number "
        f"{worst[0]:.3g}" + (f" ({worst[1]})" if worst[1] else "")
    )
    return 0 if differ == 0 and shapes == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--sizes", type=int, nargs="*", default=[1_000, 100_000])
    d.add_argument("--proposals", type=int, default=100)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.out, args.sizes, args.proposals)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
