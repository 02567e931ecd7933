"""Terminal tables: every estimate with its 90% interval and its count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"[{low:.2f}, {high:.2f}]"


def cell_table(
    cells: Iterable[Any],
    title: str = "Keep rate per (category, direction) cell",
    *,
    wide: bool = False,
) -> Table:
    """Cells sorted as given: count, keeps, mean, 90% interval, P(rate < base); `wide` adds the
    weighted count and the level the cell borrows from."""
    table = Table(title=title, title_justify="left")
    columns = [
        ("category", "left"),
        ("direction", "left"),
        ("n", "right"),
        ("n (weighted)", "right"),
        ("kept", "right"),
        ("mean", "right"),
        ("90% interval", "center"),
        ("P(< base)", "right"),
        ("borrows from", "left"),
    ]
    shown = [i for i, (name, _) in enumerate(columns) if wide or name not in _WIDE_ONLY]
    for i in shown:
        table.add_column(columns[i][0], justify=columns[i][1])
    for cell in cells:
        values = (
            cell.category,
            cell.direction,
            str(cell.n),
            f"{cell.n_weighted:.1f}",
            str(cell.k),
            f"{cell.mean:.2f}",
            _interval(*cell.interval),
            f"{cell.prob_below_base:.2f}",
            cell.level,
        )
        table.add_row(*(values[i] for i in shown))
    return table


_WIDE_ONLY = {"n (weighted)", "borrows from"}


def check_table(checks: Sequence[tuple[str, Mapping[str, Any]]]) -> Table:
    """One row per checked proposal: verdict, P(keep), interval, cell and its count."""
    table = Table(title="nrr check", title_justify="left")
    for name, justify in (
        ("proposal", "left"),
        ("verdict", "left"),
        ("P(keep)", "right"),
        ("90% interval", "center"),
        ("crash", "right"),
        ("cell", "left"),
        ("n", "right"),
    ):
        # The proposal folds; a cell's name stays whole.
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name == "cell")
    colours = {"proceed": "green", "caution": "yellow", "avoid": "red"}
    for text, answer in checks:
        verdict = answer["verdict"]
        table.add_row(
            text,
            f"[{colours[verdict]}]{verdict}[/]",
            f"{answer['p_keep']:.2f}",
            _interval(*answer["interval"]),
            f"{answer['p_crash']:.2f}" if answer.get("p_crash") is not None else "-",
            f"{answer['category']}/{answer['direction']}",
            str(answer["n"]),
        )
    return table


def ingest_table(summaries: Sequence[Any]) -> Table:
    """One row per ingested log: rows added / already present / skipped, status counts, metric."""
    table = Table(title="nrr ingest", title_justify="left")
    for name in (
        "log",
        "added",
        "present",
        "skipped",
        "keep",
        "discard",
        "crash",
        "other",
        "metric",
    ):
        table.add_column(
            name, justify="left" if name in ("log", "metric") else "right", overflow="fold"
        )
    for summary in summaries:
        counts = summary.status_counts
        table.add_row(
            Path(summary.path).name,
            str(summary.rows_added),
            str(summary.rows_already_present),
            str(len(summary.bad_rows)),
            *(str(counts.get(status, 0)) for status in ("keep", "discard", "crash", "other")),
            f"{summary.metric_name} ({summary.metric_direction})",
        )
    # Which columns were read, and where the metric's direction came from, fold below the table.
    table.caption = "; ".join(
        f"{Path(summary.path).name}: {_columns_used(summary.columns)},"
        f" {summary.metric_direction} is better (from {summary.direction_source})"
        for summary in summaries
    )
    table.caption_justify = "left"
    return table


def _columns_used(columns: dict[str, str | None]) -> str:
    """'status=status, decision=decision, text=description, id=commit': the columns ingest read."""
    shown = {"status": "status", "decision": "decision", "description": "text", "id": "id"}
    return ", ".join(
        f"{label}={columns[role]}" for role, label in shown.items() if columns.get(role)
    )


def print_table(table: Table, *, stderr: bool = False) -> None:
    """Print a table at the terminal's width (80 columns when piped, or $COLUMNS), in a compact
    frame: numbers and intervals never wrap, text columns fold instead."""
    from rich import box

    table.box, table.pad_edge, table.collapse_padding = box.SIMPLE_HEAD, False, True
    for column in table.columns:
        if column.justify in ("right", "center"):
            column.no_wrap = True
    Console(stderr=stderr).print(table)


def session_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """One row per session: id, name, path, rows, keep rate with its 90% interval, last update."""
    table = Table(title="Sessions", title_justify="left")
    for name, justify in (
        ("id", "right"),
        ("name", "left"),
        ("folder", "left"),
        ("rows", "right"),
        ("kept/n", "right"),
        ("keep rate, 90%", "center"),
        ("updated, UTC", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")
    for row in rows:
        rate = row["keep_rate"]
        table.add_row(
            str(row["id"]),
            row["name"],
            short_dir(row["path"]),
            str(row["rows"]),
            f"{row['keeps']}/{row['experiments']}",
            "-" if rate is None else f"{rate:.2f} {_interval(*row['interval'])}",
            row["updated_at"][5:16].replace("T", " "),
        )
    return table


def short_dir(path: str, keep: int = 2) -> str:
    """The folder of a log for a table: relative to the working directory when under it, else
    its last `keep` parts after an ellipsis (the full path is in --format json/csv)."""
    folder = Path(path).parent
    try:
        return str(folder.relative_to(Path.cwd())) or "."
    except ValueError:
        parts = folder.parts
        return str(folder) if len(parts) <= keep + 1 else str(Path("…", *parts[-keep:]))


# The columns of a fit summary, as az.summary names them (90% HDI).
FIT_SUMMARY_COLUMNS = (
    "mean",
    "sd",
    "hdi_5%",
    "hdi_95%",
    "mcse_mean",
    "mcse_sd",
    "ess_bulk",
    "ess_tail",
    "r_hat",
)


def fit_summary(idata: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """az.summary (90% HDI) of a stored fit: rows of the hyperparameters, then of the group
    effects (per category, cell, parameter and session), each row {"name", column: value}."""
    import arviz as az

    from nrr_stats.models.posterior import CRASH_DRAWS, CRASH_EFFECTS, KEEP_DRAWS, KEEP_EFFECTS

    def rows(names: Sequence[str]) -> list[dict[str, Any]]:
        present = [name for name in names if name in idata.posterior]
        if not present:
            return []
        frame = az.summary(idata, var_names=present, hdi_prob=0.9, round_to="none")
        return [
            {"name": str(label), **{c: float(frame.loc[label, c]) for c in FIT_SUMMARY_COLUMNS}}
            for label in frame.index
        ]

    return rows(KEEP_DRAWS + CRASH_DRAWS), rows(KEEP_EFFECTS + CRASH_EFFECTS)
