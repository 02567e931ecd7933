"""The bounded fit's session sample: at most K sessions, chosen by a hash of their keys.

A NUTS fit costs per gradient one Beta-Binomial term per leaf (session x category x direction x
parameter), and leaves grow with the sessions. The population-level structure (global rate,
category, cell and parameter effects, the scales, nu) is what answers new and unfitted sessions
(every session's own offset is integrated on the session grid at answer time), and a bounded
sample of sessions pins it down: `nrr fit` fits on the sessions whose keys have the smallest
sha256, at most `MAX_FIT_SESSIONS` of them holding at most `MAX_FIT_LEAVES` leaves (a bottom-K
sample: deterministic, chosen from the keys and the design, never the outcomes, independent of
row order, and a session leaves it only when sessions with a smaller hash arrive). Numpy and
hashlib only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from nrr_stats.models.data import ExperimentTable, cell_counts

# At most this many sessions, and this many leaves, enter a fit: the sessions are taken in hash
# order while both bounds hold. A gradient costs one Beta-Binomial term per leaf, so the leaves
# bound the fit's cost (benchmarks/fit_scaling.py); the dev corpus (66 sessions, 1,168 leaves)
# is fitted whole.
MAX_FIT_SESSIONS = 300
MAX_FIT_LEAVES = 5_000
SAMPLE_RULE = "sessions in order of the sha256 of their key, while both bounds hold"


def session_hash(key: str) -> bytes:
    """The sample's order of a session: the sha256 of its key."""
    import hashlib

    return hashlib.sha256(key.encode("utf-8")).digest()


def sample_sessions(
    keys: Iterable[str],
    max_sessions: int | None,
    leaves: Mapping[str, int] | None = None,
    max_leaves: int | None = None,
) -> tuple[str, ...]:
    """The sampled session keys, sorted: the longest prefix of the keys in hash order with at
    most `max_sessions` sessions and (given each key's leaf count) at most `max_leaves` leaves,
    and never fewer than one session. None lifts a bound."""
    distinct = sorted(set(keys))
    if max_sessions is not None and max_sessions < 1:
        raise ValueError("max_sessions must be at least 1")
    if leaves is None or max_leaves is None:
        if max_sessions is None or len(distinct) <= max_sessions:
            return tuple(distinct)
        return tuple(sorted(sorted(distinct, key=session_hash)[:max_sessions]))
    chosen: list[str] = []
    total = 0
    for key in sorted(distinct, key=session_hash):
        total += int(leaves.get(key, 0))
        if chosen and (total > max_leaves or len(chosen) == (max_sessions or len(distinct))):
            break
        chosen.append(key)
    return tuple(sorted(chosen))


def bounded_table(
    table: ExperimentTable,
    max_sessions: int | None = MAX_FIT_SESSIONS,
    max_leaves: int | None = MAX_FIT_LEAVES,
) -> tuple[ExperimentTable, dict]:
    """The rows of the sampled sessions, and the sample as the fit's meta records it."""
    present = np.unique(table.session) if len(table) else np.zeros(0, dtype=np.int64)
    names = [table.session_names[i] for i in present.tolist()]
    leaves = None
    if max_leaves is not None:
        sessions = cell_counts(table, "leaf").keys.get("session", np.zeros(0, dtype=object))
        leaves = Counter(sessions.tolist())
    chosen = set(sample_sessions(names, max_sessions, leaves, max_leaves))
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
        "max_leaves": max_leaves,
        "rule": SAMPLE_RULE,
        "sessions": len(names),
        "sessions_fitted": len(chosen),
        "leaves": int(sum(leaves.values())) if leaves is not None else None,
        "leaves_fitted": int(sum(leaves[name] for name in chosen)) if leaves is not None else None,
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
