"""`nrr backtest`: the prequential check of EVALUATION.md on real logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import app
from nrr_stats.errors import NrrInputError


@app.command()
def backtest(
    logs: list[Path] = typer.Argument(..., help="Results logs to walk, each on its own."),
    jsonl: Path = typer.Option(
        ..., "--jsonl", help="Write one JSON object per predicted row here."
    ),
    plot: Path = typer.Option(None, "--plot", help="Draw the reliability diagram to this PNG."),
    no_population_prior: bool = typer.Option(
        False, "--no-population-prior", help="Start every log from no prior (conjugate form)."
    ),
    corpus: Path = typer.Option(
        None,
        "--corpus",
        help="The population prior's training logs, to fit held-out fold priors for logs it saw.",
    ),
    no_dynamics: bool = typer.Option(
        False, "--no-dynamics", help="Turn the session dynamics off (ablation)."
    ),
    no_curator_weights: bool = typer.Option(
        False, "--no-curator-weights", help="Weigh every failure 1 (ablation)."
    ),
    no_similarity: bool = typer.Option(
        False,
        "--no-similarity",
        help="Walk the cell engine instead of the similarity-evidence model (ablation).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    progress: bool = typer.Option(
        None,
        "--progress/--no-progress",
        help="A line per log on stderr (default: when stderr is a terminal).",
        show_default=False,
    ),
) -> None:
    """Walk each log in order, predict every experiment from the rows before it, and score.

    Example: nrr backtest results.tsv --jsonl backtest.jsonl --plot reliability.png
    """
    from nrr_stats.backtest.summary import log_loss_ratio_interval, score_rows
    from nrr_stats.backtest.walk import backtest_logs, default_options

    for path in logs:
        if not path.is_file():
            raise NrrInputError("no such log file", path=str(path))
    for target, what in ((jsonl, "JSONL"), (plot, "plot")):
        if target is not None and not target.parent.is_dir():
            raise NrrInputError(f"the {what}'s folder does not exist", path=str(target))
    options = default_options(
        dynamics=not no_dynamics,
        curator_weights=not no_curator_weights,
        evidence=not no_similarity,
    )
    result = backtest_logs(
        logs,
        prior=None if no_population_prior else "shipped",
        options=options,
        corpus_dir=corpus,
        progress=(lambda line: print(f"nrr: {line}", file=sys.stderr, flush=True))
        if (sys.stderr.isatty() if progress is None else progress)
        else None,
    )
    result.write_jsonl(jsonl)
    rows = result.rows()
    ratio = log_loss_ratio_interval(
        [r.p_keep for r in rows],
        [r.p_laplace for r in rows],
        [r.y for r in rows],
        [r.file for r in rows],
    )
    if plot is not None:
        from nrr_stats.report.plots import reliability_diagram

        try:
            reliability_diagram(result.method_arrays(), plot, title="nrr backtest: reliability")
        except OSError as error:
            raise NrrInputError(
                f"cannot write the plot ({error.strerror})", path=str(plot)
            ) from None
    discounted = log_loss_ratio_interval(
        [r.p_keep for r in rows],
        [r.p_discounted for r in rows],
        [r.y for r in rows],
        [r.file for r in rows],
    )
    curve = _tradeoff(rows, options.decision_rule)
    stale = sum(r.stale for r in rows)
    if as_json:
        out = result.as_dict()
        out["log_loss_ratio_vs_running_laplace"] = {"ratio": ratio[0], "interval": ratio[1:]}
        out["log_loss_ratio_vs_discounted_rate"] = {
            "ratio": discounted[0],
            "interval": discounted[1:],
        }
        out["tradeoff_curve"] = curve
        out["stale_rows"] = stale
        print(json.dumps(out, indent=2))
        return
    _print_summary(score_rows(result.scores), result, ratio, stale, discounted, curve)


def _tradeoff(rows, rule) -> list[dict]:
    """Avoid recall against keep-block rate over floors of P(keep) (rows with enough history)."""
    from nrr_stats.backtest.metrics import TRADEOFF_FLOORS, tradeoff_curve

    floors = sorted(set(TRADEOFF_FLOORS) | {rule.avoid_below})
    history: dict[str, int] = {}
    eligible = []
    for row in rows:
        eligible.append(history.get(row.file, 0) >= rule.min_history)
        history[row.file] = history.get(row.file, 0) + 1
    curve = tradeoff_curve([r.p_keep for r in rows], [r.y for r in rows], eligible, floors)
    for point in curve:
        point["shipped"] = point["floor"] == rule.avoid_below
    return curve


def _print_summary(rows, result, ratio, stale: int, discounted=None, curve=()) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nrr backtest: {result.prior_note}", title_justify="left")
    columns = ("method", "log loss", "Brier", "ECE", "avoid recall", "keep-block", "avoid prec.")
    for name in columns + ("rows", "logs"):
        table.add_column(name, justify="left" if name == "method" else "right")

    def fmt(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    for row in rows:
        table.add_row(
            row["method"],
            fmt(row["log_loss"], 4),
            fmt(row["brier"], 4),
            fmt(row["ece"], 4),
            fmt(row["avoid_recall"]),
            fmt(row["keep_block_rate"]),
            fmt(row["avoid_precision"]),
            str(row["rows"]),
            str(row["logs"]),
        )
    console = Console(width=max(Console().width, 110))
    console.print(table)
    priors = sorted({log.prior for log in result.logs})
    constant = (
        f"{result.constant_rate:.4f} (dev corpus keep rate, from the shipped prior)"
        if result.constant_rate is not None
        else "unavailable (no shipped prior)"
    )
    console.print(
        f"engine log loss / running Laplace: {ratio[0]:.3f} (90% log-bootstrap interval"
        f" {ratio[1]:.3f}..{ratio[2]:.3f}); constant baseline {constant};"
        " running Laplace = (keeps+1)/(n+2) over the log's predicted rows so far"
    )
    if discounted is not None:
        console.print(
            f"engine log loss / discounted running rate: {discounted[0]:.3f} (90% log-bootstrap"
            f" interval {discounted[1]:.3f}..{discounted[2]:.3f}); discounted rate ="
            " (0.5 + sum 0.9^a y) / (2 + sum 0.9^a), its verdict: avoid below 0.05"
        )
    if curve:
        points = "  ".join(
            f"{c['floor']:.2f}{'*' if c['shipped'] else ''}:"
            f" {c['avoid_recall']:.2f}/{c['keep_block_rate']:.3f}"
            for c in curve
        )
        console.print(
            "trade-off, avoid when P(keep) < floor (floor: avoid recall / keep-block rate;"
            f" * = shipped floor, exact repeats aside): {points}"
        )
    console.print(
        f"priors used: {', '.join(priors)}; stale rows (ESS share < 0.3): {stale};"
        f" wall time {result.wall_s:.1f} s"
    )
