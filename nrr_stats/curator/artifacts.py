"""Artifacts of one experiment, read only from the directory the user names, capped and redacted.

`--artifacts DIR` holds, per experiment (`<id>` is its id in the log, usually the commit, e.g.
`a1b2c3d`), either a folder in the NK reference implementation's layout of one round:

    <id>/exec.log      the run's output; its last LOG_TAIL_CAP characters are used
    <id>/eval.log      the evaluator's output, when it ran; its last LOG_TAIL_CAP characters
    <id>/candidate.py  the program that ran; its first DIFF_CAP characters
    <id>/reasoning.md  the agent's reasoning; its first REASONING_CAP characters

or flat files (used where the folder has no file of that kind):

    <id>.log           the run's output
    <id>.diff          the change (or <id>.patch)
    <id>.reasoning.md  the agent's reasoning (or <id>.md)

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

_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], int, bool]] = {
    # kind: (names in an NK round folder, flat-file suffixes in order of preference, cap,
    # keep the tail rather than the head)
    "log_tail": (("exec.log",), (".log",), LOG_TAIL_CAP, True),
    "eval_log": (("eval.log",), (), LOG_TAIL_CAP, True),
    "diff": (("candidate.py",), (".diff", ".patch"), DIFF_CAP, False),
    "reasoning": (("reasoning.md",), (".reasoning.md", ".md"), REASONING_CAP, False),
}
FOLDER_FILES: tuple[str, ...] = tuple(name for names, *_ in _KINDS.values() for name in names)
FLAT_SUFFIXES: tuple[str, ...] = tuple(
    suffix for _, suffixes, *_ in _KINDS.values() for suffix in suffixes
)


@dataclass(frozen=True)
class Artifacts:
    """Redacted, capped texts of one experiment (empty strings when absent), and the files
    they were read from, relative to the artifacts directory."""

    log_tail: str = ""
    diff: str = ""
    reasoning: str = ""
    eval_log: str = ""
    files: tuple[str, ...] = ()

    def present(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("log_tail", self.log_tail),
                ("eval_log", self.eval_log),
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
    files: list[str] = []
    for kind, (names, suffixes, cap, tail) in _KINDS.items():
        candidates = [directory / experiment_id / name for name in names]
        candidates += [directory / f"{experiment_id}{suffix}" for suffix in suffixes]
        for path in candidates:
            if _inside(path, directory):
                texts[kind] = _read_capped(path, cap, tail=tail)
                files.append(path.relative_to(directory).as_posix())
                break
    return Artifacts(**texts, files=tuple(files))


def artifact_names(directory: Path) -> set[str]:
    """The experiment ids the directory has artifacts for: its folders holding a round file,
    and the stems of its flat artifact files."""
    names: set[str] = set()
    try:
        entries = list(directory.iterdir())
    except OSError as error:
        raise NrrInputError(
            f"cannot list the artifacts directory ({error.strerror})", path=str(directory)
        ) from None
    for entry in entries:
        if entry.is_dir() and any(_inside(entry / name, directory) for name in FOLDER_FILES):
            names.add(entry.name)
        elif entry.is_file():
            for suffix in sorted(FLAT_SUFFIXES, key=len, reverse=True):
                if entry.name.endswith(suffix) and len(entry.name) > len(suffix):
                    names.add(entry.name[: -len(suffix)])
                    break
    return names


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
