"""The bounded fit's session sample: at most K sessions, chosen by a hash of their keys.

A NUTS fit costs per gradient one Beta-Binomial term per leaf (session x category x direction x
parameter), and leaves grow with the sessions. The population-level structure (global rate,
category, cell and parameter effects, the scales, nu) is what answers new and unfitted sessions
(every session's own offset is integrated on the session grid at answer time), and a bounded
sample of sessions pins it down: `nrr fit` fits on the `max_sessions` sessions whose keys have
the smallest sha256 (a bottom-K sample: deterministic, independent of row order, and a session
enters or leaves it only when one with a smaller hash arrives). Numpy and hashlib only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from nrr_stats.models.data import ExperimentTable

# At most this many sessions enter a fit (benchmarks/fit_scaling.py: the 1M synthetic bank's
# fit on this many sessions takes minutes, not hours; the dev corpus has 67, all fitted).
MAX_FIT_SESSIONS = 300
SAMPLE_RULE = "the sessions with the smallest sha256 of their key"


def session_hash(key: str) -> bytes:
    """The sample's order of a session: the sha256 of its key."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def sample_sessions(keys: Iterable[str], max_sessions: int | None) -> tuple[str, ...]:
    """The (at most `max_sessions`) sampled session keys, sorted by key; every key when
    `max_sessions` is None."""
    distinct = sorted(set(keys))
    if max_sessions is None or len(distinct) <= max_sessions:
        return tuple(distinct)
    if max_sessions < 1:
        raise ValueError("max_sessions must be at least 1")
    return tuple(sorted(sorted(distinct, key=session_hash)[:max_sessions]))


def bounded_table(
    table: ExperimentTable, max_sessions: int | None = MAX_FIT_SESSIONS
) -> tuple[ExperimentTable, dict]:
    """The rows of the sampled sessions, and the sample as the fit's meta records it."""
    present = np.unique(table.session) if len(table) else np.zeros(0, dtype=np.int64)
    names = [table.session_names[i] for i in present.tolist()]
    chosen = set(sample_sessions(names, max_sessions))
    if len(chosen) < len(names):
        keep_codes = np.array(
            [code for code, name in zip(present.tolist(), names, strict=True) if name in chosen],
            dtype=np.int64,
        )
        sampled = table.select(np.isin(table.session, keep_codes))
    else:
        sampled = table
    meta = {
        "max_sessions": max_sessions,
        "rule": SAMPLE_RULE,
        "sessions": len(names),
        "sessions_fitted": len(chosen),
        "experiments": len(table),
        "experiments_fitted": len(sampled),
    }
    return sampled, meta


def experiments_offered(meta: dict) -> int | None:
    """How many experiments the bank held when a fit was made (the sample was drawn from them),
    or None for a fit that records no sample (an older fit: it saw every experiment)."""
    sample = meta.get("session_sample")
    if isinstance(sample, dict) and isinstance(sample.get("experiments"), int):
        return int(sample["experiments"])
    return None
