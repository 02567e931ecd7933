"""`nrr init`: the block an autoresearch `program.md` needs so its agent asks before each run."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- nrr-stats: begin -->"
END = "<!-- nrr-stats: end -->"

BLOCK = """\
{begin}
## Before each experiment: ask nrr-stats

Once, before the first experiment, store the log so far:

```bash
nrr ingest {log}
```

Before each experiment:

1. Write the change you are about to make to `proposal.txt`: one line saying what you change
   and why, then the `KEY = value` lines it sets (or the output of `git diff`).
2. Ask:

   ```bash
   nrr check --proposal-file proposal.txt{bank}
   ```

   It prints one JSON object (`verdict`, `reason`, `p_keep` with its 90% `interval`,
   `similar_failures`, `recommended_alternative`) and exits with the verdict:
   - exit 0, `proceed`: run the experiment.
   - exit 1, `caution`: read `reason` and `similar_failures`; run it only if your change
     differs from those failures, else write a different proposal and ask again.
   - exit 2, `avoid`: do not run it. If `recommended_alternative` is not null, make that your
     next proposal; otherwise pick a change of another kind. Then ask again.
   - exit 3: the proposal or the bank is wrong (the one line on stderr says what): fix it and
     ask again. Never treat exit 3 as a verdict.

After each experiment, once its row is appended to `{log}`:

```bash
nrr ingest {log}
```
{end}
"""


def program_block(log: str = "results.tsv", bank: str | None = None) -> str:
    """The block, for a loop whose log is `log` (and bank `bank`, when not the default)."""
    return BLOCK.format(
        begin=BEGIN, end=END, log=log, bank=f" --bank {bank}" if bank else ""
    ).replace("nrr ingest " + log, "nrr ingest " + log + (f" --bank {bank}" if bank else ""))


def write_block(program: Path, block: str) -> str:
    """Put the block in `program` (replacing an earlier nrr-stats block); return what was done."""
    text = program.read_text(encoding="utf-8") if program.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        program.write_text(head + block.rstrip("\n") + tail, encoding="utf-8")
        return "replaced"
    separator = (
        "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    )
    program.write_text(text + separator + block, encoding="utf-8")
    return "appended" if text else "created"
