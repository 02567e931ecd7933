"""`nrr report`: one self-contained HTML page of a bank for one session.

The session's base rate and keep-rate trajectory, a forest plot of the cells grouped by
category (prior-only cells greyed), the stored fit as an az.summary table, recent decisions.
Every number is read from a ReportData (report/data.py); the page embeds it as JSON
(`<script type="application/json" id="nrr-report-data">`). Every text from the bank is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nrr_stats.report.data import FitSection, ReportData, prior_only
from nrr_stats.report.tables import FIT_SUMMARY_COLUMNS

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.7em; text-align: right; }
th.text, td.text { text-align: left; }
tr.category td { font-weight: bold; background: #f6f6f6; text-align: left; }
tr.prior-only td { color: #999; }
.avoid { color: #b00; } .caution { color: #a60; } .proceed { color: #070; }
.headline { font-size: 1.15em; } .note { color: #666; font-size: 0.9em; }
"""

PROPOSAL_SHOWN = 120  # characters of a decision's proposal in the table


def esc(value: Any) -> str:
    """Any text from the bank, escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _interval(pair: Sequence[Any], digits: int = 3) -> str:
    low, high = pair
    if low is None or high is None:
        return "-"
    return f"[{_number(low, digits)}, {_number(high, digits)}]"


def _image(png: Path | None, alt: str) -> str:
    if png is None:
        return ""
    encoded = base64.b64encode(png.read_bytes()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def _json_for_script(data: Any) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` (nothing can close the element),
    non-finite numbers as null."""
    text = json.dumps(_finite(data), ensure_ascii=False, sort_keys=True)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _session_section(data: ReportData, trajectory_png: Path | None) -> str:
    if data.session is None or data.base_rate is None:
        return "<h2>Session</h2><p>No session in the bank yet.</p>"
    base, observed, session = data.base_rate, data.observed, data.session
    return f"""<h2>Session {esc(session["name"])}</h2>
<p class="note">id {esc(session["id"])}, log <code>{esc(session["path"])}</code>;
{len(data.statuses)} rows stored.</p>
<p class="headline" id="base-rate">Base rate <b>{_number(base.mean)}</b>
{_interval(base.interval)} (90% interval) from {base.n} counted experiments
({base.k} kept, {base.crashes} crashed; {base.n_weighted:.1f} after the engine's discounts);
prior: {esc(base.source)}.</p>
<p>Observed keep rate {observed["k"]}/{observed["n"]} = {_number(observed["rate"])}
{_interval(observed["interval"])} (90% Jeffreys interval, as <code>nrr sessions</code> lists it).</p>
<p class="note">The base rate is the session's keep rate for a typical change as the engine
answers it: what <code>nrr check</code> compares a proposal with (P(&lt; base)). Older rows count
less after each keep (the configuration moved on), so it follows the session where the observed
rate lags. The trajectory shows it after each number of rows read ({len(data.trajectory)}
points), with the observed rate and every row's outcome below.</p>
{_image(trajectory_png, "keep-rate trajectory of the session")}"""


def _cell_rows(data: ReportData) -> str:
    rows, category = [], None
    for cell in data.cells:
        if cell.category != category:
            category = cell.category
            rows.append(f'<tr class="category"><td colspan="9">{esc(category)}</td></tr>')
        alone = prior_only(cell)
        rows.append(
            f'<tr class="{"prior-only" if alone else "cell"}" data-category="{esc(cell.category)}"'
            f' data-direction="{esc(cell.direction)}">'
            f'<td class="text">{esc(cell.direction)}</td>'
            f"<td>{cell.n}</td><td>{cell.k}</td><td>{cell.n_weighted:.1f}</td>"
            f"<td>{_number(cell.mean)}</td><td>{_interval(cell.interval)}</td>"
            f"<td>{_number(cell.prob_below_base, 2)}</td>"
            f'<td class="text">{esc(cell.level)}</td>'
            f'<td class="text">{"prior only" if alone else "data"}</td></tr>'
        )
    return "".join(rows)


def _fit_table(rows: Sequence[dict[str, Any]], table_id: str) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in FIT_SUMMARY_COLUMNS)
    body = "".join(
        f'<tr><td class="text">{esc(row["name"])}</td>'
        + "".join(
            f"<td>{_number(row[c], 0 if c.startswith('ess') else 3)}</td>"
            for c in FIT_SUMMARY_COLUMNS
        )
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><tr><th class="text">parameter</th>{head}</tr>{body}</table>'


def _fit_section(fit: FitSection, prior_source: str) -> str:
    if fit.status == "none":
        fallback = {
            "population-prior": "the shipped population prior",
            "conjugate": "the conjugate form (no prior)",
        }.get(prior_source, esc(prior_source))
        return (
            f'<h2>Fit</h2><p id="no-fit">No stored fit for this bank: answers come from'
            f" {fallback}. Run <code>nrr fit</code> to fit the hierarchy on the bank.</p>"
        )
    said = (
        "The bank's own fit; answers use it."
        if fit.status == "fit"
        else "This fit <b>failed its diagnostics</b>: it is stored marked and answers do not use it."
    )
    if fit.error:
        return f"<h2>Fit</h2><p>{said} It cannot be read: {esc(fit.error)}.</p>"
    meta = fit.meta
    diagnostics = meta.get("diagnostics") if isinstance(meta.get("diagnostics"), dict) else {}
    summary = (
        f"fitted {esc(meta.get('created_at', '?'))} on {esc(meta.get('n_experiments', '?'))}"
        f" experiments; {esc(diagnostics.get('chains', '?'))} chains x"
        f" {esc(diagnostics.get('draws', '?'))} draws; {esc(diagnostics.get('divergences', '?'))}"
        f" divergences; max R-hat {_number(diagnostics.get('max_rhat'))}, min bulk ESS"
        f" {_number(diagnostics.get('min_ess_bulk'), 0)}, min tail ESS"
        f" {_number(diagnostics.get('min_ess_tail'), 0)} (over the sampled variables)"
    )
    failures = diagnostics.get("failures") or []
    return f"""<h2>Fit</h2>
<p>{said} <code>{esc(fit.path)}</code>: {summary}.
{"Failures: " + esc("; ".join(map(str, failures))) + "." if failures else ""}</p>
<p class="note">As <code>az.summary</code> gives it (90% HDI): alpha and the effects on the logit
scale, nu the leaf concentration.</p>
<h3>Hyperparameters</h3>{_fit_table(fit.hyperparameters, "fit-summary")}
<details><summary>Group effects ({len(fit.effects)})</summary>
{_fit_table(fit.effects, "fit-effects")}</details>"""


def _decision_rows(decisions: Sequence[dict[str, Any]]) -> str:
    rows = []
    for decision in decisions:
        verdict = esc(decision["verdict"])
        rows.append(
            f'<tr><td class="text">{esc(decision["created_at"])}</td>'
            f'<td class="text">{esc(decision["proposal"][:PROPOSAL_SHOWN])}</td>'
            f'<td class="text {verdict}">{verdict}</td><td>{_number(decision["p_keep"])}</td>'
            f"<td>{_interval(decision['interval'])}</td></tr>"
        )
    return "".join(rows)


def render_report(data: ReportData) -> str:
    """The report as one HTML string (plots embedded as PNG, the numbers as JSON)."""
    from nrr_stats.report.plots import forest_plot, trajectory_plot

    base = data.base_rate
    with tempfile.TemporaryDirectory() as scratch:
        forest = (
            forest_plot(
                data.cells,
                Path(scratch) / "forest.png",
                base_rate=base.mean if base else None,
                base_interval=base.interval if base else None,
            )
            if data.cells
            else None
        )
        trajectory = (
            trajectory_plot(
                data.trajectory,
                data.statuses,
                Path(scratch) / "trajectory.png",
                title=f"session {data.session['name']}" if data.session else "",
            )
            if data.trajectory
            else None
        )
        session_html = _session_section(data, trajectory)
        forest_html = _image(forest, "forest plot of the cells' keep rates")
    n_prior_only = sum(prior_only(cell) for cell in data.cells)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nrr-stats report</title><style>{_STYLE}</style></head>
<body>
<h1>nrr-stats report</h1>
<p>Bank <code>{esc(data.bank)}</code>: {data.n_sessions} sessions, {data.n_rows} rows;
answers from {esc(data.prior_source)}.</p>
{session_html}
<h2>Keep rate per cell</h2>
<p class="note">Posterior mean and 90% interval of each (category, direction) cell as this
session's checks answer a change in it (<code>nrr patterns</code>), grouped by category; the
dashed line and band are the session's base rate. {n_prior_only} of {len(data.cells)} cells
have no rows in this session: their answer is the prior's alone (grey).</p>
{forest_html or "<p>No cells yet.</p>"}
<table id="cells"><tr><th class="text">category / direction</th><th>n</th><th>kept</th>
<th>n weighted</th><th>mean</th><th>90% interval</th><th>P(&lt; base)</th>
<th class="text">borrows from</th><th class="text">evidence</th></tr>{_cell_rows(data)}</table>
{_fit_section(data.fit, data.prior_source)}
<h2>Recent decisions</h2>
<table><tr><th class="text">when</th><th class="text">proposal</th><th class="text">verdict</th>
<th>P(keep)</th><th>90% interval</th></tr>{_decision_rows(data.decisions)}</table>
<script type="application/json" id="nrr-report-data">{_json_for_script(data.as_json())}</script>
</body></html>
"""
