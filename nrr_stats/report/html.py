"""`nrr report`: one self-contained HTML page of a bank: cells, forest plot, fit, decisions."""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nrr_stats.bank import Bank

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.75em; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
.avoid { color: #b00; } .caution { color: #a60; } .proceed { color: #070; }
"""


def _cell_rows(cells: Sequence[Any]) -> str:
    rows = []
    for cell in cells:
        low, high = cell.interval
        rows.append(
            f"<tr><td>{html.escape(cell.category)}</td><td>{html.escape(cell.direction)}</td>"
            f"<td>{cell.n}</td><td>{cell.n_weighted:.1f}</td><td>{cell.k}</td><td>{cell.mean:.3f}</td>"
            f"<td>[{low:.3f}, {high:.3f}]</td><td>{cell.prob_below_base:.2f}</td>"
            f"<td>{html.escape(cell.level)}</td></tr>"
        )
    return "".join(rows)


def _decision_rows(decisions: Sequence[dict[str, Any]]) -> str:
    rows = []
    for decision in decisions:
        answer = json.loads(decision["answer_json"])
        low, high = answer.get("interval", [None, None])
        interval = f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else "-"
        verdict = html.escape(decision["verdict"])
        rows.append(
            f"<tr><td>{html.escape(decision['created_at'])}</td>"
            f"<td>{html.escape(decision['proposal'][:120])}</td>"
            f"<td class='{verdict}'>{verdict}</td><td>{decision['p_keep']:.3f}</td><td>{interval}</td></tr>"
        )
    return "".join(rows)


def render_report(
    bank: Bank, cells: Sequence[Any], fit: dict[str, Any] | None, base_rate: float | None
) -> str:
    """The report as an HTML string (the forest plot embedded as a PNG)."""
    from nrr_stats.report.plots import forest_plot

    with tempfile.TemporaryDirectory() as scratch:
        png = (
            forest_plot(cells, Path(scratch) / "forest.png", base_rate=base_rate) if cells else None
        )
        image = base64.b64encode(png.read_bytes()).decode() if png else ""
    sessions = bank.sessions()
    decisions = bank.recent_decisions(50)
    n_experiments = bank.count_experiments()
    fit_text = (
        html.escape(json.dumps(fit, indent=1, default=str))
        if fit
        else "no stored fit: answers come from the shipped population prior or the conjugate form"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nrr-stats report</title><style>{_STYLE}</style></head>
<body>
<h1>nrr-stats report</h1>
<p>Bank <code>{html.escape(bank.location.display)}</code>: {len(sessions)} sessions, {n_experiments} rows.</p>
<h2>Keep rate per cell (posterior mean, 90% interval)</h2>
{f'<img alt="forest plot" src="data:image/png;base64,{image}">' if image else "<p>No cells yet.</p>"}
<table><tr><th>category</th><th>direction</th><th>n</th><th>n weighted</th><th>kept</th><th>mean</th>
<th>90% interval</th><th>P(&lt; base)</th><th>borrows from</th></tr>{_cell_rows(cells)}</table>
<h2>Fit</h2><pre>{fit_text}</pre>
<h2>Recent decisions</h2>
<table><tr><th>when</th><th>proposal</th><th>verdict</th><th>P(keep)</th><th>90% interval</th></tr>
{_decision_rows(decisions)}</table>
</body></html>
"""
