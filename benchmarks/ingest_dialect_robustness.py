"""Rewrite every dev log in each dialect quirk and check the reader still reads the same rows.

Usage: python benchmarks/ingest_dialect_robustness.py [FOLDER ...]   (default: dev and dev2)
For each log and quirk: the share of rows whose (status, description, metric) match the reading of
the original file; a baseline column shows the same figure for naive `line.split('\\t')` parsing.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log
from nrr_stats.ingest.columns import normalise_name
from nrr_stats.ingest.status import map_status

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared/data/autoresearch-logs/dev"


def _lines(text: str) -> tuple[list[str], list[str]]:
    lines = text.splitlines()
    head = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    return head, body


def crlf(text: str, rng: random.Random) -> str:
    return text.replace("\n", "\r\n")


def literal_tabs(text: str, rng: random.Random) -> str:
    head, body = _lines(text)
    body = [body[0]] + [
        line.replace("\t", "\\t") if rng.random() < 0.3 else line for line in body[1:]
    ]
    return "\n".join(head + body) + "\n"


def separators(text: str, rng: random.Random) -> str:
    head, body = _lines(text)
    out = [body[0], "-" * 40]
    for line in body[1:]:
        out.append(line)
        if rng.random() < 0.1:
            out.append(rng.choice(["---", "=====", "|---|---|"]))
    return "\n".join(head + out) + "\n"


def comments(text: str, rng: random.Random) -> str:
    return "# results of the loop\n# started by an agent\n\n" + text


def as_csv(text: str, rng: random.Random) -> str:
    head, body = _lines(text)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line in body:
        writer.writerow(line.split("\t"))
    return "\n".join(head) + ("\n" if head else "") + buffer.getvalue()


def padded(text: str, rng: random.Random) -> str:
    head, body = _lines(text)
    body = ["\t".join(f" {cell}  " for cell in line.split("\t")) for line in body]
    return "\n".join(head + body) + "\n"


def _join_some(text: str, rng: random.Random, glue: str) -> str:
    head, body = _lines(text)
    out = [body[0]]
    index = 1
    while index < len(body):
        if index + 1 < len(body) and rng.random() < 0.05:
            out.append(body[index] + glue + body[index + 1])
            index += 2
        else:
            out.append(body[index])
            index += 1
    return "\n".join(head + out) + "\n"


def run_together(text: str, rng: random.Random) -> str:
    return _join_some(text, rng, "")


def literal_newline(text: str, rng: random.Random) -> str:
    return _join_some(text, rng, "\\n")


def trailing_tabs(text: str, rng: random.Random) -> str:
    head, body = _lines(text)
    body = [body[0]] + [line + "\t" * rng.randint(0, 2) for line in body[1:]]
    return "\n".join(head + body) + "\n"


def ragged(text: str, rng: random.Random, keep: set[int]) -> str:
    """Drop one cell that is none of id, metric, status, description from a fifth of the rows."""
    head, body = _lines(text)
    out = [body[0]]
    width = len(body[0].split("\t"))
    for line in body[1:]:
        cells = line.split("\t")
        if len(cells) != width:  # already ragged: one missing cell per row is the quirk
            out.append(line)
            continue
        droppable = [i for i in range(len(cells)) if i not in keep]
        if droppable and rng.random() < 0.2:
            del cells[rng.choice(droppable)]
        out.append("\t".join(cells))
    return "\n".join(head + out) + "\n"


def _status_index(original) -> int:
    return original.header.index(original.columns["status"])


def wider(text: str, rng: random.Random, original, share: float = 1.0) -> str:
    """A field added just before the status on `share` of the data rows, the header untouched."""
    head, body = _lines(text)
    at = _status_index(original)
    out = [body[0]]
    for line in body[1:]:
        cells = line.split("\t")
        if len(cells) > at and rng.random() < share:
            cells = cells[:at] + [str(rng.randint(100, 9999))] + cells[at:]
        out.append("\t".join(cells))
    return "\n".join(head + out) + "\n"


def wider_some(text: str, rng: random.Random, original) -> str:
    return wider(text, rng, original, 0.3)


def run_and_decision(text: str, rng: random.Random, original) -> str:
    """The status split into `run_status` (ok / crash) and `decision` (promote / reject)."""
    if "\t" not in text.splitlines()[0] or original.columns.get("decision"):
        return text
    head, body = _lines(text)
    at = _status_index(original)
    mapped = {"keep": "promote", "discard": "reject"}
    out = []
    for index, line in enumerate(body):
        cells = line.split("\t")
        if index == 0:
            pair = ["run_status", "decision"]
        elif len(cells) > at:
            raw = cells[at].strip()
            status = map_status(raw)
            pair = ["crash", ""] if status == "crash" else ["ok", mapped.get(status, raw)]
        else:
            out.append(line)
            continue
        out.append("\t".join(cells[:at] + pair + cells[at + 1 :]))
    return "\n".join(head + out) + "\n"


NEEDS_LOG = {"wider": wider, "wider_some": wider_some, "run_decision": run_and_decision}
ENCODED = {"cp1252"}

QUIRKS = {
    "ragged": ragged,
    "trailing_tab": trailing_tabs,
    "run_together": run_together,
    "literal_nl": literal_newline,
    "crlf": crlf,
    "literal_tab": literal_tabs,
    "separators": separators,
    "comments": comments,
    "csv": as_csv,
    "padded": padded,
    **NEEDS_LOG,
    "cp1252": lambda text, rng: text,  # the same text, written in Windows-1252
}


def _signature(log) -> list[tuple]:
    return [(r.status, r.description, r.metric) for r in log.rows]


def _naive(text: str) -> list[tuple]:
    """Baseline: the first non-comment line is the header, cells split on real tabs, no repair."""
    _, body = _lines(text)
    names = [normalise_name(h) for h in body[0].split("\t")]
    rows = []
    for line in body[1:]:
        cells = line.split("\t")
        row = dict(zip(names, cells, strict=False))
        rows.append((row.get("status", ""), row.get("description", "")))
    return rows


def _read_text(path: Path, content: str):
    path.write_bytes(content.encode("utf-8"))
    return read_results_log(path)


def main(folders: list[Path]) -> int:
    rng = random.Random(0)
    matched: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    naive_matched: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for path in sorted(p for dev in folders for p in dev.glob("*.tsv")):
            if path.name == "MANIFEST.tsv":
                continue
            original = read_results_log(path)
            text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
            for quirk, rewrite in QUIRKS.items():
                mutated = Path(folder) / f"{quirk}-{path.name}"
                if rewrite is ragged:
                    roles = {original.header.index(c) for c in original.columns.values() if c}
                    content = ragged(text, rng, roles)
                elif quirk in NEEDS_LOG:
                    content = rewrite(text, rng, original)
                else:
                    content = rewrite(text, rng)
                if quirk in ENCODED:
                    content = content.encode("cp1252", errors="replace").decode("cp1252")
                    want = _signature(_read_text(Path(folder) / "utf8.tsv", content))
                    mutated.write_bytes(content.encode("cp1252"))
                else:
                    want = _signature(original)
                    mutated.write_bytes(content.encode("utf-8"))
                try:
                    got = _signature(read_results_log(mutated))
                except NrrInputError as error:
                    got = []
                    failures.append(f"{quirk} {path.name}: {error}")
                same = (
                    sum(1 for a, b in zip(got, want, strict=False) if a == b)
                    if len(got) == len(want)
                    else 0
                )
                matched[quirk][0] += same
                matched[quirk][1] += len(want)
                naive = _naive(content)
                wanted = [(r.raw_status, r.description) for r in original.rows]
                naive_same = sum(1 for a, b in zip(naive, wanted, strict=False) if a == b)
                naive_matched[quirk][0] += naive_same if len(naive) == len(wanted) else 0
                naive_matched[quirk][1] += len(wanted)
                if same != len(want):
                    failures.append(
                        f"{quirk} {path.name}: {same}/{len(want)} rows as in the original"
                    )
    print(f"{'quirk':12} {'reader':>18} {'naive split':>18}")
    for quirk in QUIRKS:
        ok, total = matched[quirk]
        naive_ok, naive_total = naive_matched[quirk]
        print(
            f"{quirk:12} {ok:>7}/{total:<5} {ok / total:6.1%} {naive_ok:>7}/{naive_total:<5} {naive_ok / naive_total:6.1%}"
        )
    for failure in failures[:40]:
        print("  " + failure)
    return 0


if __name__ == "__main__":
    sys.exit(main([Path(a) for a in sys.argv[1:]] or [DEFAULT_DEV, DEFAULT_DEV.parent / "dev2"]))
