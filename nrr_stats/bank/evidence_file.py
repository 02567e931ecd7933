"""The bank's evidence sums saved beside it, so a new process need not read every row again.

A check reads the bank's leaf sums once per process (`check.Checker.reading`): on a large bank
that one `GROUP BY` is most of a whole `nrr check` process. The sums are saved here with the
evidence state they were read at (Bank.evidence_state: revision, last id). They stay true while
the revision stands; rows past the last id are then all that is new, read from the bank.
A file of another revision, or one that cannot be read, is ignored and written again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nrr_stats.files import DerivedFileError, load_npz, published
from nrr_stats.models.evidence import LEAF, SUM_FIELDS, Evidence

FORMAT_VERSION = 2
# Banks with fewer leaves than this are read whole: their GROUP BY costs less than the file.
MIN_LEAVES = 20_000


def save_evidence(path: Path, evidence: Evidence, state: tuple[int, int]) -> bool:
    """Write the leaf sums and their evidence state atomically; False when the file cannot be
    written (a read-only directory is no error: the next process reads the bank instead)."""
    keys = evidence.keys("leaf")
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(LEAF):  # each key column as its distinct values and a code per leaf
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(key[i], len(index)) for key in keys), np.int64)
        columns[f"{name}_values"] = np.array(list(index), dtype=str).reshape(-1)
        columns[f"{name}_codes"] = codes.astype(np.int32)
    sums = np.asarray(evidence.leaves.sums, dtype=np.float64).reshape(-1, len(SUM_FIELDS))
    try:
        with published(path) as fd, os.fdopen(os.dup(fd), "wb") as out:
            state_array = np.array(state, dtype=np.int64)
            np.savez(out, version=np.int64(FORMAT_VERSION), state=state_array, sums=sums, **columns)
    except OSError:
        return False
    return True


def saved_state(path: Path) -> tuple[int, int] | None:
    """The evidence state the saved sums were read at, without reading the sums."""
    if not path.exists():
        return None
    try:
        saved = load_npz(path, names=("version", "state"))
        if int(saved["version"]) != FORMAT_VERSION:
            return None
        revision, last = (int(x) for x in saved["state"])
    except (OSError, DerivedFileError, ValueError, TypeError) as error:
        from nrr_stats.notices import warn

        warn(f"{path}: saved evidence sums ignored ({error}); read from the bank instead")
        return None
    return revision, last


def load_evidence(path: Path) -> tuple[Evidence, tuple[int, int]] | None:
    """The saved sums and the evidence state they were read at; None when absent or unusable
    (a file that exists but does not verify is said on stderr and in a check's warnings; the
    sums are then read from the bank and saved again)."""
    if not path.exists():
        return None
    try:
        saved = load_npz(path)
        if int(saved["version"]) != FORMAT_VERSION:
            return None
        revision, last = (int(x) for x in saved["state"])
        sums = np.asarray(saved["sums"], dtype=np.float64)
        values = [saved[f"{name}_values"].reshape(-1).tolist() for name in LEAF]
        codes = [saved[f"{name}_codes"].astype(np.int64) for name in LEAF]
        if sums.ndim != 2 or sums.shape[1] != len(SUM_FIELDS):
            raise DerivedFileError(f"sums of shape {sums.shape}")
        for column, code in zip(values, codes, strict=True):
            in_range = not code.size or (code.min() >= 0 and code.max() < len(column))
            if code.shape != (sums.shape[0],) or not in_range:
                raise DerivedFileError("leaf codes out of step with the sums")
    except (OSError, DerivedFileError, KeyError, ValueError, TypeError) as error:
        from nrr_stats.notices import warn

        warn(f"{path}: saved evidence sums ignored ({error}); read from the bank instead")
        return None
    return Evidence.from_codes(values, codes, sums), (revision, last)
