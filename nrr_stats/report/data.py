"""What `nrr report` shows, gathered once: every number from the engine's answer path.

The session's base rate and its trajectory come from the Checker (check.py), the cells from
`Checker.patterns` (the `nrr patterns` answers), the observed keep rate from sessions.py (as
`nrr sessions` lists it), the fit summary from the stored netCDF (ArviZ). The page renders this
object and embeds it as JSON, so a reader or a test can take the numbers from the page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nrr_stats.check import BaseRate, Checker, cell_json, pick_session
from nrr_stats.models.posterior import CellSummary
from nrr_stats.sessions import observed_keep_rate

TRAJECTORY_POINTS = 60
DECISIONS_SHOWN = 50


@dataclass
class FitSection:
    """The bank's stored fit: "fit" (answers use it), "failed" (stored marked, not used) or
    "none"; az.summary rows of the hyperparameters and of the group effects."""

    status: str
    path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    hyperparameters: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class ReportData:
    bank: str
    n_sessions: int
    n_rows: int
    prior_source: str  # where the answers' prior comes from: fit | population-prior | conjugate
    session: dict[str, Any] | None  # id, name, path of the session the answers are for
    base_rate: BaseRate | None
    observed: dict[str, Any] | None  # the session's observed keep rate with its interval
    trajectory: list[dict[str, Any]]
    statuses: list[str]  # every stored row of the session, in log order
    cells: list[CellSummary]
    fit: FitSection
    decisions: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """The report's numbers as plain JSON (cells as `nrr patterns --json` prints them)."""
        return {
            "bank": self.bank,
            "sessions": self.n_sessions,
            "rows": self.n_rows,
            "prior_source": self.prior_source,
            "session": self.session,
            "base_rate": _base_json(self.base_rate) if self.base_rate else None,
            "observed": self.observed,
            "trajectory": self.trajectory,
            "cells": [{**cell_json(c), "prior_only": prior_only(c)} for c in self.cells],
            "fit": asdict(self.fit),
        }


def prior_only(cell: CellSummary) -> bool:
    """A cell with no rows of its own in the session: its answer is the prior's alone."""
    return cell.n == 0


def grouped_cells(cells: Sequence[CellSummary]) -> list[CellSummary]:
    """Cells grouped by category (alphabetical), the highest mean first within each."""
    return sorted(cells, key=lambda c: (c.category, -c.mean, c.direction))


def _base_json(base: BaseRate) -> dict[str, Any]:
    return {
        "mean": base.mean,
        "interval": list(base.interval),
        "n": base.n,
        "k": base.k,
        "crashes": base.crashes,
        "n_weighted": base.n_weighted,
        "source": base.source,
    }


def _observed(base: BaseRate) -> dict[str, Any]:
    rate, interval = observed_keep_rate(base.k, base.n)
    return {"rate": rate, "interval": list(interval), "n": base.n, "k": base.k}


def report_data(
    checker: Checker,
    session: str | int | None = None,
    *,
    prior_cells: bool = False,
    trajectory_points: int = TRAJECTORY_POINTS,
) -> ReportData:
    """Gather the report of the checker's bank for one session (default the most recent)."""
    bank = checker.bank
    session_row = pick_session(bank, session)
    reference = session_row["id"] if session_row else None
    cells = grouped_cells(checker.patterns(reference, prior_cells=prior_cells))
    base = trajectory = statuses = None
    if session_row is not None:
        base = checker.base_rate(reference)
        trajectory = [
            {
                "rows": position,
                "base_mean": point.mean,
                "base_interval": list(point.interval),
                **{f"observed_{k}": v for k, v in _observed(point).items()},
            }
            for position, point in checker.base_rate_trajectory(reference, trajectory_points)
        ]
        statuses = [row["status"] for row in bank.experiments(reference)]
    prior = checker.prior()
    from nrr_stats.models.engine import prior_source

    return ReportData(
        bank=bank.location.display,
        n_sessions=bank.count_sessions(),
        n_rows=bank.count_experiments(),
        prior_source=prior_source(prior),
        session=(
            {
                "id": session_row["id"],
                "name": session_row["name"],
                "path": session_row["source_path"],
            }
            if session_row
            else None
        ),
        base_rate=base,
        observed=_observed(base) if base else None,
        trajectory=trajectory or [],
        statuses=statuses or [],
        cells=cells,
        fit=fit_section(bank),
        decisions=_decisions(bank.recent_decisions(DECISIONS_SHOWN)),
    )


def _decisions(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        try:
            interval = json.loads(row["answer_json"]).get("interval") or [None, None]
        except (TypeError, ValueError, AttributeError):
            interval = [None, None]
        out.append(
            {
                "created_at": str(row["created_at"]),
                "proposal": str(row["proposal"]),
                "verdict": str(row["verdict"]),
                "p_keep": row["p_keep"],
                "interval": interval,
            }
        )
    return out


def fit_section(bank: Any) -> FitSection:
    """The bank's stored fit as az.summary tables: the newest passing fit (the one answers
    use), else a failed one stored after it, else none (bank/fits.py finds them, in the bank
    or beside it; the netCDF is the one the fit's draws name, verified by its sha256)."""
    from nrr_stats.bank.fits import StoredFit, fit_store

    store = fit_store(bank)
    found = store.newest_passing()
    status = "fit"
    if found is None:
        found, status = store.newest_failed(), "failed"
    legacy = getattr(store, "posterior_path", None)  # an older nrr-stats' netCDF alone
    if found is None and legacy is not None and Path(legacy).is_file():
        found, status = StoredFit(key=(), where=str(legacy), passed=True), "fit"
    if found is None:
        return FitSection(status="none")
    path: Path | str = found.where
    try:
        import arviz as az

        from nrr_stats.report.tables import fit_summary

        if found.where.endswith(".nc"):
            path = Path(found.where)
        else:  # None: a fit whose draws name no netCDF (the older x.posterior.nc beside them)
            path = store.local_netcdf(found) or Path(found.where).with_suffix(".nc")
        idata = az.from_netcdf(str(path))
        hyperparameters, effects = fit_summary(idata)
        meta = {k: _plain(v) for k, v in idata.posterior.attrs.items() if k in _META}
    except Exception as error:  # an unreadable fit: say so in the report, show the rest
        return FitSection(status=status, path=str(path), error=f"{type(error).__name__}: {error}")
    return FitSection(status, str(path), meta, hyperparameters, effects)


_META = ("created_at", "model_version", "n_experiments", "passed_diagnostics", "diagnostics")


def _plain(value: Any) -> Any:
    """A netCDF attribute as JSON: numpy scalars as numbers, the diagnostics JSON parsed."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
