"""Fit wall time for banks of 1k, 10k and 100k experiments, and the numpy path's latency.

Usage: python benchmarks/fit_scaling.py [--sizes 1000,10000,100000] [--draws N] [--chains N]
The banks share one dev-like set of groups (leaves), so only the counts grow: with sufficient
statistics the fit time should stay nearly flat. The baseline is the 1k fit of the same run.
Then it times the fast path on the largest fit: importing it, loading the stored draws, and
answering one proposal in process (with and without new evidence since the fit).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def table_of_size(n_experiments: int, leaves: list[tuple], seed: int):
    """`n_experiments` rows spread evenly over fixed leaves, outcomes from one prior draw."""
    from nrr_stats.models.simulate import draw_truth, simulate_table

    rng = np.random.default_rng(seed)
    truth = draw_truth(np.random.default_rng(0), leaves)
    design = [leaves[i % len(leaves)] for i in range(n_experiments)]
    return simulate_table(rng, design, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--leaves", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from nrr_stats.models.fit import fit_hierarchy, model_data, save_fit
    from nrr_stats.models.simulate import dev_like_design

    rng = np.random.default_rng(3)
    leaves = sorted(set(dev_like_design(rng)))[: args.leaves]
    times = {}
    last = None
    for size in (int(s) for s in args.sizes.split(",")):
        table = table_of_size(size, leaves, seed=size)
        started = time.perf_counter()
        data = model_data(table)
        reduce_s = time.perf_counter() - started
        result = fit_hierarchy(table, draws=args.draws, chains=args.chains, seed=1, progress=False)
        t, d = result.timings, result.diagnostics
        times[size] = reduce_s + t["total_s"]
        print(
            f"{size:>7d} experiments, {len(data.keeps_w)} leaves: counts {reduce_s:5.2f} s, "
            f"compile {t['compile_s']:5.1f} s, sample {t['sample_s']:6.1f} s, "
            f"total {times[size]:6.1f} s  (x{times[size] / next(iter(times.values())):.2f} of the "
            f"first)  R-hat {d['max_rhat']:.3f} ESS {d['min_ess_bulk']:.0f} div {d['divergences']}"
        )
        last = (table, result)

    table, result = last
    with tempfile.TemporaryDirectory() as folder:
        path = save_fit(result, Path(folder) / "bank.posterior.nc")
        code = (
            "import time; t=time.perf_counter();"
            "from nrr_stats.models.posterior import load_posterior, predict_keep;"
            "i=time.perf_counter();"
            f"p=load_posterior({str(path)!r});"
            "l=time.perf_counter();"
            "print(f'{i-t:.4f} {l-i:.4f}')"
        )
        baseline = _median_process_time([sys.executable, "-c", "import numpy"])
        whole = _median_process_time([sys.executable, "-c", code])
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        import_s, load_s = (float(x) for x in out.split())
        print(
            f"fast path as a process: {whole * 1e3:.0f} ms vs `python -c 'import numpy'` "
            f"{baseline * 1e3:.0f} ms (x{whole / baseline:.2f}); import {import_s * 1e3:.0f} ms, "
            f"load {result.posterior.n_draws} draws {load_s * 1e3:.0f} ms"
        )
        from nrr_stats.models.data import ExperimentTable
        from nrr_stats.models.posterior import load_posterior, predict_keep

        posterior = load_posterior(path)
        session = table.session_names[0]
        query = (session, table.category[0], table.direction[0], table.parameter[0])
        extra = ExperimentTable.from_records(
            [
                {"session": session, "category": c, "direction": d, "parameter": p, "status": x}
                for c, d, p, x in [query[1:] + ("discard",)] * 5
            ]
        )
        grown = ExperimentTable(
            **{
                name: np.concatenate([getattr(table, name), getattr(extra, name)])
                for name in (
                    "session",
                    "category",
                    "direction",
                    "parameter",
                    "kept",
                    "crashed",
                    "weight",
                    "position",
                )
            },
            session_names=table.session_names,
        )
        for label, current in (("no new data", table), ("5 new experiments", grown)):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                answer = predict_keep(posterior, current, *query)
                runs.append(time.perf_counter() - started)
            print(
                f"in-process predict_keep ({label}, table of {len(current)}): median "
                f"{np.median(runs) * 1e3:.1f} ms; p_keep {answer.p_keep:.3f} "
                f"[{answer.interval[0]:.3f}, {answer.interval[1]:.3f}], ESS share {answer.ess_share:.2f}"
            )


def _median_process_time(command: list[str], repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    return float(np.median(runs))


if __name__ == "__main__":
    main()
