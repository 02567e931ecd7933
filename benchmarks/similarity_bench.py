"""Similarity kernel against the machine's own limits, measured in the same run.

    python benchmarks/similarity_bench.py            # 10k, 100k, 1M rows (first run builds
                                                     # and caches the synthetic features)

Prints three tables:
1. kernel throughput (GB/s over the matrix bytes) of top_k for one query, beside the best
   single pass over the same bytes: a flat numpy reduction, a copy (read + write counted),
   one BLAS matrix-vector product; rounds alternate all four, the ratio is per round;
2. top-k latency p50 / p99 in process (kernel alone; and the whole similar_experiments call:
   query features, failures-only mask, top-k), against scikit-learn's cosine_similarity on
   the same queries and matrix (the NRR prototype's path) as a ratio;
3. peak memory of a fresh process answering queries over the 1M-row store, memory-mapped.
Figures are medians with the interquartile range and the number of measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_synthetic_bank import dev_descriptions, parsed_templates, synthetic_rows  # noqa: E402

from nrr_stats.similarity import FeatureSpace, similar_experiments, top_k  # noqa: E402
from nrr_stats.similarity.store import row_fields  # noqa: E402

K = 5
QUERY_POOL = 400


def build(n: int, cache: Path, seed: int = 0) -> Path:
    """Synthetic features for n rows (cached): matrix .npy, statuses, df counts, queries."""
    stem = cache / f"synthetic-{n}-seed{seed}"
    if stem.with_suffix(".npy").exists() and stem.with_suffix(".json").exists():
        return stem
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    templates = parsed_templates(dev_descriptions())
    rows = synthetic_rows(n + QUERY_POOL, templates, seed=seed)
    bank, queries = rows[:n], rows[n:]
    space = FeatureSpace.fit_idf(row["description"] for row in bank)
    matrix = np.lib.format.open_memmap(
        stem.with_suffix(".npy"), mode="w+", dtype=np.float32, shape=(n, space.dim)
    )
    step = 50_000
    for start in range(0, n, step):
        chunk = bank[start : start + step]
        matrix[start : start + len(chunk)] = space.transform(
            [row["description"] for row in chunk], [row_fields(row) for row in chunk]
        )
    matrix.flush()
    failed = np.array([row["status"] in ("discard", "crash") for row in bank])
    np.savez(stem.with_suffix(".npz"), df=space.df, n_docs=space.n_docs, failed=failed)
    stem.with_suffix(".json").write_text(
        json.dumps(
            [
                {"description": q["description"], "fields": {**row_fields(q), "outcome": ""}}
                for q in queries
            ]
        )
    )
    print(
        f"built {n} synthetic rows in {time.perf_counter() - started:.0f} s -> {stem}",
        file=sys.stderr,
    )
    return stem


def load(stem: Path, n: int | None = None, *, mmap: bool = False):
    """(space, matrix[:n], failed[:n], queries)."""
    saved = np.load(stem.with_suffix(".npz"))
    space = FeatureSpace(df=saved["df"], n_docs=int(saved["n_docs"]))
    matrix = np.load(stem.with_suffix(".npy"), mmap_mode="r" if mmap else None)
    queries = json.loads(stem.with_suffix(".json").read_text())
    n = matrix.shape[0] if n is None else n
    return space, matrix[:n], saved["failed"][:n], queries


def summary(values, scale=1.0, digits=1) -> str:
    """median [q25-q75] n=."""
    values = np.asarray(values, dtype=float) * scale
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return f"{q50:.{digits}f} [{q25:.{digits}f}-{q75:.{digits}f}]"


def kernel_throughput(matrix: np.ndarray, query_vectors: np.ndarray, rounds: int) -> dict:
    """GB/s per round for top_k and the three single passes, alternating."""
    nbytes = matrix.nbytes
    flat = matrix.reshape(-1)
    buffer = np.empty_like(matrix)
    passes = {
        "top_k": lambda q: top_k(matrix, q, K),
        "reduce": lambda q: np.add.reduce(flat),
        "copy": lambda q: np.copyto(buffer, matrix),
        "gemv": lambda q: matrix @ q,
    }
    moved = {"top_k": nbytes, "reduce": nbytes, "copy": 2 * nbytes, "gemv": nbytes}
    rates = {name: [] for name in passes}
    for run in passes.values():  # warm-up: page in, spin up BLAS threads
        run(query_vectors[0])
    for index in range(rounds):
        query = query_vectors[index % len(query_vectors)]
        order = list(passes)[index % 4 :] + list(passes)[: index % 4]  # rotate who goes first
        for name in order:
            started = time.perf_counter()
            passes[name](query)
            rates[name].append(moved[name] / (time.perf_counter() - started) / 1e9)
    best = np.maximum.reduce([np.array(rates[name]) for name in ("reduce", "copy", "gemv")])
    rates["best"] = list(best)
    rates["ratio"] = list(np.array(rates["top_k"]) / best)
    return rates


def latencies(space, matrix, failed, queries, count, sklearn_count):
    """Milliseconds per query: kernel alone, whole similar_experiments, scikit-learn path."""
    picked = queries[:count]
    vectors = space.transform([q["description"] for q in picked], [q["fields"] for q in picked])
    kernel, whole, sklearn = [], [], []
    for query, vector in zip(picked, vectors, strict=True):
        started = time.perf_counter()
        top_k(matrix, vector, K, mask=failed)
        kernel.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        similar_experiments(space, matrix, query["description"], query["fields"], K, mask=failed)
        whole.append((time.perf_counter() - started) * 1e3)
    try:
        from sklearn.metrics.pairwise import cosine_similarity
    except ImportError:
        return kernel, whole, None
    for vector in vectors[:sklearn_count]:
        started = time.perf_counter()
        scores = cosine_similarity(vector[None, :], matrix)[0]
        scores = np.where(failed, scores, -np.inf)
        np.argsort(-scores, kind="stable")[:K]
        sklearn.append((time.perf_counter() - started) * 1e3)
    return kernel, whole, sklearn


PEAK_CHILD = """
import sys, tracemalloc
sys.path.insert(0, {bench_dir!r})
from similarity_bench import load, K
from nrr_stats.similarity import similar_experiments
space, matrix, failed, queries = load(__import__('pathlib').Path({stem!r}), mmap=True)
tracemalloc.start()
for q in queries[:30]:
    similar_experiments(space, matrix, q['description'], q['fields'], K, mask=failed)
_, heap = tracemalloc.get_traced_memory()
# VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the forking parent's high-water mark.
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(int(hwm.split()[1]) * 1024, heap, matrix.nbytes)
"""


def peak_memory(stem: Path) -> tuple[int, int, int]:
    """(peak RSS, peak heap allocated while answering, matrix bytes) of a fresh process."""
    code = PEAK_CHILD.format(bench_dir=str(Path(__file__).resolve().parent), stem=str(stem))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, heap, nbytes = map(int, out.stdout.split())
    return rss, heap, nbytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="similarity kernel benchmark")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="kernel throughput sizes")
    parser.add_argument("--latency-sizes", default="1000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sklearn-queries", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nrr-similarity-bench"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    latency_sizes = [int(s) for s in args.latency_sizes.split(",")]
    largest = max(sizes + latency_sizes)
    stem = build(largest, args.cache)
    space, full, failed_all, queries = load(stem)
    vectors = space.transform(
        [q["description"] for q in queries[:50]], [q["fields"] for q in queries[:50]]
    )

    load_1, load_5, _ = os.getloadavg()
    print(
        f"similarity kernel: one query, k={K}, {full.shape[1]}-dim float32 rows; "
        f"{os.cpu_count()} CPUs, load average {load_1:.1f} (1 min) {load_5:.1f} (5 min), "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    print(
        f"GB/s: median [interquartile range] over {args.rounds} alternating rounds; "
        "then the best round of each (what the machine can do when not interrupted)"
    )
    print(
        f"{'rows':>9} {'MB':>6} | {'top_k':>17} | {'reduce':>17} {'copy (r+w)':>17} "
        f"{'BLAS gemv':>17} | {'ratio to best':>17}"
    )
    for n in sizes:
        matrix = np.ascontiguousarray(full[:n])
        rates = kernel_throughput(matrix, vectors, args.rounds)
        print(
            f"{n:>9} {matrix.nbytes / 1e6:>6.0f} | {summary(rates['top_k']):>17} | "
            f"{summary(rates['reduce']):>17} {summary(rates['copy']):>17} {summary(rates['gemv']):>17} | "
            f"{summary(rates['ratio'], digits=2):>17}"
        )
        best = {name: max(values) for name, values in rates.items()}
        print(
            f"{'best':>9} {'':>6} | {best['top_k']:>17.1f} | {best['reduce']:>17.1f} "
            f"{best['copy']:>17.1f} {best['gemv']:>17.1f} | {best['top_k'] / best['best']:>17.2f}"
        )
    print()
    print("top-k latency in process, ms: median [interquartile range]; p99; n queries")
    print(
        f"{'rows':>9} | {'top_k p50':>17} {'p99':>7} | {'similar p50':>17} {'p99':>7} | "
        f"{'sklearn p50':>19} {'p99':>8} | {'sklearn / top_k':>15}"
    )
    for n in latency_sizes:
        matrix, failed = full[:n], failed_all[:n]
        kernel, whole, sklearn = latencies(
            space, matrix, failed, queries, args.queries, args.sklearn_queries
        )
        line = (
            f"{n:>9} | {summary(kernel, digits=2):>17} {np.percentile(kernel, 99):>7.2f} | "
            f"{summary(whole, digits=2):>17} {np.percentile(whole, 99):>7.2f} | "
        )
        if sklearn is None:
            line += f"{'(scikit-learn not installed)':>45}"
        else:
            ratio = np.median(sklearn) / np.median(kernel)
            line += (
                f"{summary(sklearn, digits=2):>19} {np.percentile(sklearn, 99):>8.2f} | "
                f"{ratio:>14.1f}x"
            )
        print(line + f"   (n={len(kernel)}, sklearn n={0 if sklearn is None else len(sklearn)})")
    print("similar = query features + failures-only mask + top_k (the nrr check path);")
    print("sklearn = cosine_similarity(query, matrix) + mask + argsort, same query vectors.")
    print()
    rss, heap, nbytes = peak_memory(stem)
    print(
        f"peak memory, fresh process, 30 queries over {largest} rows memory-mapped: "
        f"RSS {rss / 1e6:.0f} MB (matrix file {nbytes / 1e6:.0f} MB, mapped pages count), "
        f"heap allocated by the queries {heap / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
