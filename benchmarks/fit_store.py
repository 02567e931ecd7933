"""What a check pays to find and read the bank's fit on a PostgreSQL bank, against a file.

Usage: NRR_TEST_POSTGRES=postgresql://... python benchmarks/fit_store.py [--sessions 2000,20000]
       [--draws 4000] [--repeats 5]

For each size, a synthetic fit (draws of the model's shapes: `--draws` x sessions effects) is
published into a throwaway schema of the server. Timed, `--repeats` times each:
- `newest_passing()`: the query a check makes to learn which fit is newest;
- a first load on a new machine (fetch the bytes, verify them, write the cache, load);
- a later load from the verified cache (hash the cached file, load);
- the baseline: `load_posterior` of the same `.npz` as a file beside a SQLite bank.
Prints each median with its range, and the ratios to the baseline. Wall times on a shared
machine measure its load too: read them against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_result(n_sessions: int, n_draws: int):
    """A FitResult with the model's shapes (no sampling): `n_sessions` sessions, 40 cells."""
    import arviz as az

    from nrr_stats.models.data import ExperimentTable
    from nrr_stats.models.fit import FitResult, model_data, stored_posterior
    from nrr_stats.models.posterior import MODEL_VERSION

    rng = np.random.default_rng(0)
    table = ExperimentTable.from_records(
        {
            "session": f"s{i}",
            "category": f"c{i % 8}",
            "direction": ("increase", "decrease", "replace", "add", "remove")[i % 5],
            "parameter": "",
            "status": ("keep", "discard", "discard", "crash")[i % 4],
        }
        for i in range(n_sessions)
    )
    data = model_data(table)
    sizes = {
        "a_cat": len(data.categories),
        "b_cell": len(data.cells),
        "e_param": len(data.parameters),
        "u_sess": len(data.sessions),
        "crash_a_cat": len(data.categories),
        "crash_u_sess": len(data.sessions),
    }
    names = ["alpha", "sigma_cat", "sigma_cell", "sigma_param", "sigma_sess", "nu"]
    names += ["crash_alpha", "crash_sigma_cat", "crash_sigma_sess", "crash_nu"]
    draws = {name: np.abs(rng.normal(0.5, 0.1, n_draws)) for name in names}
    draws.update({name: rng.normal(0, 0.5, (n_draws, k)) for name, k in sizes.items()})
    meta = {
        "created_at": "2026-01-01T00:00:00+00:00",
        "model_version": MODEL_VERSION,
        "n_experiments": n_sessions,
        "data_hash": "bench",
        "passed_diagnostics": True,
        "diagnostics": {},
    }
    posterior = stored_posterior(draws, data, meta)
    scalars = {k: v[None, :] for k, v in draws.items() if v.ndim == 1}
    idata = az.from_dict(posterior=scalars)  # the netCDF's size does not enter a check
    return FitResult(posterior=posterior, idata=idata, diagnostics={}, passed=True)


def timed(function, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        out.append(time.perf_counter() - started)
    return out


def said(seconds: list[float]) -> str:
    return f"{1e3 * statistics.median(seconds):8.1f} ms [{1e3 * min(seconds):.1f}, {1e3 * max(seconds):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="2000,20000")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from nrr_stats.bank import open_bank
    from nrr_stats.bank import testing as bank_testing
    from nrr_stats.bank.fits import BankFitStore, FileFitStore
    from nrr_stats.models.posterior import load_posterior

    server = bank_testing.postgres_server_url()
    reason = bank_testing.postgres_unreachable_reason(server)
    if reason:
        sys.exit(f"fit_store: {reason}")
    for n_sessions in (int(s) for s in args.sessions.split(",")):
        result = synthetic_result(n_sessions, args.draws)
        schema, url = bank_testing.create_schema(server, "nrr_bench")
        try:
            with open_bank(url) as bank, tempfile.TemporaryDirectory() as folder:
                root = Path(folder)
                started = time.perf_counter()
                stored = BankFitStore(bank, root / "fitter").publish(result, (0, 0))
                publish_s = time.perf_counter() - started
                files = FileFitStore(root / "bank.posterior.nc")
                files.publish(result, (0, 0))
                npz = Path(files.newest_passing().where)

                def head(root=root, stored=stored):
                    store = BankFitStore(bank, root / "x")
                    assert store.newest_passing().sha256 == stored.sha256

                counter = iter(range(10**6))

                def first_load(root=root, counter=counter):
                    store = BankFitStore(bank, root / f"machine{next(counter)}")
                    store.load(store.newest_passing())
                    assert store.fetched == 1

                def cached_load(root=root):
                    store = BankFitStore(bank, root / "machine0")
                    store.load(store.newest_passing())
                    assert store.fetched == 0

                baseline = timed(lambda npz=npz: load_posterior(npz), args.repeats)
                rows = [
                    ("which fit is newest (query)", timed(head, args.repeats)),
                    ("first load on a new machine", timed(first_load, args.repeats)),
                    ("later load, verified cache", timed(cached_load, args.repeats)),
                    ("baseline: load_posterior(file)", baseline),
                ]
                mb = stored.meta["npz_bytes"] / 1e6
                print(
                    f"\n{n_sessions} sessions x {args.draws} draws: npz {mb:.1f} MB;"
                    f" publish into the bank {publish_s:.2f} s"
                )
                base = statistics.median(baseline)
                for name, seconds in rows:
                    print(f"  {name:32s} {said(seconds)}  x{statistics.median(seconds) / base:.2f}")
        finally:
            bank_testing.drop_schema(server, schema)


if __name__ == "__main__":
    main()
