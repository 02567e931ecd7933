"""Artifacts of one experiment, read only from the directory the user names, capped and redacted.

Layout of `--artifacts DIR` (flat; `<id>` is the experiment's id in its log, usually the
commit, e.g. `a1b2c3d`):

    <id>.log           the run's output; its last LOG_TAIL_CAP characters are used
    <id>.diff          the change (or <id>.patch); its first DIFF_CAP characters
    <id>.reasoning.md  the agent's reasoning (or <id>.md); its first REASONING_CAP characters

Files that are missing are simply absent; nothing outside DIR is ever read (no symlink escapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nrr_stats.curator.redact import redact
from nrr_stats.errors import NrrInputError

LOG_TAIL_CAP = 6000
DIFF_CAP = 6000
REASONING_CAP = 3000
# Read at most this much of a file before redaction, so a redaction pattern sees whole secrets
# around the part that is kept.
_READ_MARGIN = 4096

_KINDS: dict[str, tuple[tuple[str, ...], int, bool]] = {
    # kind: (file suffixes in order of preference, cap, keep the tail rather than the head)
    "log_tail": ((".log",), LOG_TAIL_CAP, True),
    "diff": ((".diff", ".patch"), DIFF_CAP, False),
    "reasoning": ((".reasoning.md", ".md"), REASONING_CAP, False),
}


@dataclass(frozen=True)
class Artifacts:
    """Redacted, capped texts of one experiment; empty strings when absent."""

    log_tail: str = ""
    diff: str = ""
    reasoning: str = ""

    def present(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("log_tail", self.log_tail),
                ("diff", self.diff),
                ("reasoning", self.reasoning),
            )
            if v
        }


def check_artifacts_dir(directory: str | Path) -> Path:
    """The resolved artifacts directory, or a one-line error when it is not a readable directory."""
    path = Path(directory)
    if not path.is_dir():
        raise NrrInputError("artifacts directory not found (or not a directory)", path=str(path))
    return path.resolve()


def load_artifacts(directory: Path | None, experiment_id: str) -> Artifacts:
    """The artifacts named after `experiment_id` inside `directory` (nothing when directory is None)."""
    if directory is None or not _safe_name(experiment_id):
        return Artifacts()
    texts: dict[str, str] = {}
    for kind, (suffixes, cap, tail) in _KINDS.items():
        for suffix in suffixes:
            path = directory / f"{experiment_id}{suffix}"
            if _inside(path, directory):
                texts[kind] = _read_capped(path, cap, tail=tail)
                break
    return Artifacts(**texts)


def _safe_name(name: str) -> bool:
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
        and "\0" not in name
    )


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.is_file() and path.resolve().is_relative_to(directory)
    except OSError:
        return False


def _read_capped(path: Path, cap: int, *, tail: bool) -> str:
    budget = cap + _READ_MARGIN
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = max(0, size - budget) if tail else 0
            handle.seek(start)
            raw = handle.read(budget)
    except OSError as error:
        raise NrrInputError(f"cannot read artifact ({error})", path=str(path)) from None
    # Drop the partial line at a cut, so no secret is seen without its recognisable start or end.
    if tail and start > 0:
        raw = raw.partition(b"\n")[2]
    elif not tail and size > budget:
        raw = raw.rpartition(b"\n")[0]
    text = redact(raw.decode("utf-8", errors="replace"))
    if len(text) <= cap:
        return text
    return "[...]" + text[-cap:] if tail else text[:cap] + "[...]"
