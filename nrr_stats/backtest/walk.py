"""The prequential backtest of EVALUATION.md: walk each log in order, predict every experiment
from the rows before it (plus the shipped prior), then score the predictions.

Row t's description, scrubbed of result words, is its only input; the history is rows < t of the
same log. Every method is fed the same rows, so the engine and the baselines are scored alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrr_stats.backtest.metrics import (
    DISCOUNTED_AVOID_BELOW,
    Scores,
    discounted_running_rate,
    running_laplace_rate,
    score,
)
from nrr_stats.decide import DecisionRule, decide
from nrr_stats.errors import NrrInputError
from nrr_stats.models.engine import DEFAULT_DYNAMICS, Dynamics, EvidenceWeights, SessionEngine
from nrr_stats.models.posterior import StoredPosterior
from nrr_stats.similarity.repeats import repeat_flags

__all__ = ["BacktestOptions", "Dynamics", "backtest_logs", "default_options", "walk_log"]

PREDICTED = ("keep", "discard", "crash")
ENGINE = "engine"
CONSTANT = "constant"
LAPLACE = "running_laplace"
DISCOUNTED = "discounted_rate"


@dataclass(frozen=True)
class BacktestOptions:
    """How the engine predicts: its prior, dynamics, evidence weights and verdict rule."""

    dynamics: Dynamics = field(default_factory=Dynamics)
    decision_rule: DecisionRule = field(default_factory=DecisionRule)
    # history rows (dicts) -> evidence weight per row in (0, 1]; None: all 1 (no curator)
    curator_weights: EvidenceWeights | None = None
    # the similarity-weighted evidence model (models/similarity_evidence.py); when set, it gives
    # P(keep), the interval and the verdict, and the cell engine is not run
    evidence: Any = None


def default_options(
    *, dynamics: bool = True, curator_weights: bool = True, evidence: bool = True
) -> BacktestOptions:
    """The full engine's options (models.engine.DEFAULT_DYNAMICS, the offline curator's
    weights, the shipped similarity-evidence model, models/similarity_evidence.json); each
    switch turns one ablated part off (`evidence=False`: walk the cell engine instead)."""
    from nrr_stats.backtest.curation import OfflineCuratorWeights
    from nrr_stats.models.similarity_evidence import shipped_evidence

    return BacktestOptions(
        dynamics=DEFAULT_DYNAMICS if dynamics else Dynamics(),
        curator_weights=OfflineCuratorWeights() if curator_weights else None,
        evidence=shipped_evidence() if evidence else None,
    )


@dataclass(frozen=True)
class PredictedRow:
    """One predicted row: the JSONL fields of EVALUATION.md plus the baselines' probabilities."""

    file: str
    row: int
    status: str
    p_keep: float
    interval: tuple[float, float]
    verdict: str
    category: str
    direction: str
    outcome: str
    parameter: str
    y: int
    p_constant: float | None
    p_laplace: float
    source: str
    ess_share: float
    stale: bool
    # What the verdict was decided on, so other decision rules can be scored without a new walk.
    prob_below_base: float = float("nan")
    base_rate: float = float("nan")
    n_weighted: float = 0.0
    p_crash: float = 0.0
    exact_repeat: bool = False
    near_repeats: int = 0
    p_discounted: float = float("nan")

    def jsonl_fields(self) -> dict[str, Any]:
        """The EVALUATION.md record of this row."""
        return {
            "file": self.file,
            "row": self.row,
            "status": self.status,
            "p_keep": round(self.p_keep, 6),
            "interval": [round(self.interval[0], 6), round(self.interval[1], 6)],
            "verdict": self.verdict,
            "category": self.category,
            "direction": self.direction,
            "outcome": self.outcome,
        }


@dataclass
class LogWalk:
    """One log's walk: its predicted rows and which prior the engine used."""

    file: str
    path: str
    session_key: str
    prior: str  # "none" | "shipped" | "fold f of K" | a path
    rows: list[PredictedRow]
    unreadable_rows: int


@dataclass
class BacktestResult:
    """Every log's walk, the scores per method over all predicted rows, and the wall time."""

    logs: list[LogWalk]
    scores: dict[str, Scores]
    constant_rate: float | None
    wall_s: float
    prior_note: str

    def rows(self) -> list[PredictedRow]:
        return [row for log in self.logs for row in log.rows]

    def write_jsonl(self, path: str | Path) -> Path:
        """One EVALUATION.md JSON object per predicted row, in file then row order."""
        path = Path(path)
        try:
            with path.open("w", encoding="utf-8") as out:
                for row in self.rows():
                    out.write(json.dumps(row.jsonl_fields()) + "\n")
        except OSError as error:
            raise NrrInputError(
                f"cannot write the JSONL ({error.strerror})", path=str(path)
            ) from None
        return path

    def method_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(p, y) per method, for plots."""
        rows = self.rows()
        y = np.array([r.y for r in rows], dtype=int)
        out = {ENGINE: (np.array([r.p_keep for r in rows]), y)}
        if self.constant_rate is not None:
            out[CONSTANT] = (np.array([r.p_constant for r in rows]), y)
        out[LAPLACE] = (np.array([r.p_laplace for r in rows]), y)
        out[DISCOUNTED] = (np.array([r.p_discounted for r in rows]), y)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "scores": {name: s.as_dict() for name, s in self.scores.items()},
            "constant_rate": self.constant_rate,
            "wall_s": self.wall_s,
            "prior": self.prior_note,
            "logs": [
                {
                    "file": log.file,
                    "session_key": log.session_key,
                    "prior": log.prior,
                    "rows": len(log.rows),
                    "unreadable_rows": log.unreadable_rows,
                }
                for log in self.logs
            ],
        }


# ---------------------------------------------------------------------------------------------
# Reading a log into the walk's rows


@dataclass(frozen=True)
class WalkItem:
    """A row of the log as the walk sees it: the proposal (scrubbed parse) and the history record."""

    row: int
    status: str  # keep/discard/crash/other ("other" for reference rows)
    proposal: Any  # ParsedChange of the scrubbed description (what is predicted from)
    description: str  # scrubbed description
    config_before: dict[str, str]
    record: dict[str, Any]  # the history row once this row is past (raw parse, outcome)


def walk_items(log: Any, rules: Any = None) -> list[WalkItem]:
    """The rows of a read log in order: each row's history record is the row ingest would store
    (bank.ingest.experiment_rows, the one log-to-rows function) with its outcome and delta from
    rows up to it (backtest/prefix.py: ingest's noise band and inferred direction read the whole
    log), and its proposal is parsed from its scrubbed description under the configuration kept
    before it; nothing at row t depends on rows after t."""
    from nrr_stats.backtest.prefix import prefix_outcomes
    from nrr_stats.bank.ingest import experiment_rows
    from nrr_stats.parser import ConfigTracker, strip_result_words

    outcomes, deltas = prefix_outcomes(log)
    tracker = ConfigTracker(rules)
    items = []
    for index, (row, stored) in enumerate(zip(log.rows, experiment_rows(log, rules), strict=True)):
        config_before = dict(tracker.current)
        scrubbed = strip_result_words(row.description)
        proposal = tracker.parse(scrubbed)
        tracker.observe(tracker.parse(row.description), kept=row.status == "keep")
        record = {
            **stored,
            "outcome": outcomes[index] if stored["status"] in PREDICTED else stored["outcome"],
            "delta": None if not np.isfinite(deltas[index]) else float(deltas[index]),
            "id": row.row_number,
            "session": log.session_key,
            "log": str(log.path),
        }
        items.append(
            WalkItem(
                row=row.row_number,
                status=stored["status"],
                proposal=proposal,
                description=scrubbed,
                config_before=config_before,
                record=record,
            )
        )
    return items


def walk_log(
    path: str | Path,
    prior: StoredPosterior | None,
    options: BacktestOptions = BacktestOptions(),
    *,
    prior_label: str = "none",
    constant_rate: float | None = None,
    log: Any = None,
) -> LogWalk:
    """Predict every keep/discard/crash row of one log from the rows before it (EVALUATION.md)."""
    from nrr_stats.ingest import read_results_log

    log = log if log is not None else read_results_log(path)
    items = walk_items(log)
    predicted = _predicted_rows(path, items, prior, log, options, constant_rate)
    return LogWalk(
        file=Path(path).name,
        path=str(path),
        session_key=log.session_key,
        prior=prior_label,
        rows=predicted,
        unreadable_rows=len(log.bad_rows),
    )


def _predicted_rows(path, items, prior, log, options, constant_rate) -> list[PredictedRow]:
    """Every keep/discard/crash row predicted from the rows before it. The cell engine under
    `prior` answers each row; with `options.evidence`, P(keep), its interval and P(rate < base)
    come from the similarity-weighted evidence model instead (one vectorised pass over the
    session, row t from rows < t), as `nrr check` reports them beside the cell's fields."""
    engine = SessionEngine(prior, log.session_key, options.dynamics, options.curator_weights)
    evidence_at = _evidence_answers(path, items, options) if options.evidence else None
    history: list[dict[str, Any]] = []
    predicted: list[PredictedRow] = []
    outcomes_seen: list[int] = []
    for item in items:
        if item.status not in PREDICTED:
            continue
        cell = engine.predict(history, item.proposal)
        answer = cell if evidence_at is None else evidence_at(len(predicted), cell)
        exact, near = repeat_flags(item.proposal, item.description, item.config_before, history)
        verdict, _ = decide(
            answer, exact_repeat=exact, near_repeats=near, rule=options.decision_rule
        )
        predicted.append(
            PredictedRow(
                file=Path(path).name,
                row=item.row,
                status=item.status,
                p_keep=float(answer.p_keep),
                interval=(float(answer.interval[0]), float(answer.interval[1])),
                verdict=verdict,
                category=item.proposal.category,
                direction=item.proposal.direction,
                outcome=item.record["outcome"],
                parameter=item.proposal.parameter,
                y=int(item.status == "keep"),
                p_constant=constant_rate,
                p_laplace=running_laplace_rate(outcomes_seen),
                p_discounted=discounted_running_rate(outcomes_seen),
                source="similarity_evidence"
                if evidence_at is not None
                else getattr(answer, "source", "conjugate"),
                ess_share=float(getattr(answer, "ess_share", 1.0)),
                stale=bool(getattr(answer, "stale", False)),
                prob_below_base=float(answer.prob_below_base),
                base_rate=float(answer.base_rate),
                n_weighted=float(cell.n_weighted),
                p_crash=float(answer.p_crash),
                exact_repeat=bool(exact),
                near_repeats=int(near),
            )
        )
        outcomes_seen.append(int(item.status == "keep"))
        history.append(item.record)
    return predicted


def _evidence_answers(path, items, options) -> Callable[[int, Any], Any]:
    """Row i's evidence-model answer, compared with the cell engine's base rate and carrying its
    crash probability (the evidence model predicts no crashes)."""
    from dataclasses import replace

    from nrr_stats.backtest.evidence_rows import evidence_rows
    from nrr_stats.models.similarity_evidence import answer_at, predict_session

    params, _ = options.evidence.for_log(Path(path).name)
    prediction = predict_session(evidence_rows(items).session, params)

    def at(index: int, cell: Any) -> Any:
        answer = answer_at(prediction, index, index, float(cell.base_rate))
        return replace(answer, p_crash=float(cell.p_crash))

    return at


# ---------------------------------------------------------------------------------------------
# Several logs, priors chosen per log, scores


@dataclass(frozen=True)
class PriorChoice:
    """Which prior a log gets: the shipped one, a fold prior (it saw the log), or none."""

    posterior: StoredPosterior | None
    label: str


class PriorResolver:
    """Gives each log a prior that never saw it: the shipped prior, or the K-fold prior of the
    log's fold when the shipped prior was trained on it (fitted on demand, cached)."""

    def __init__(
        self,
        shipped: StoredPosterior | None,
        *,
        corpus_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        folds: int | None = None,
    ):
        from nrr_stats.models.population import DEFAULT_FOLDS

        self.shipped = shipped
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else None
        self.cache_dir = cache_dir
        self.folds = folds or DEFAULT_FOLDS
        self.trained_on = set(shipped.meta.get("training_session_keys", [])) if shipped else set()
        self._fold_priors: dict[int, StoredPosterior] = {}

    def for_log(self, file_name: str, session_key: str) -> PriorChoice:
        from nrr_stats.models.population import fold_assignment, fold_prior

        if self.shipped is None:
            return PriorChoice(None, "none")
        if session_key not in self.trained_on:
            return PriorChoice(self.shipped, "shipped")
        meta = self.shipped.meta
        pairs = meta.get("training_logs") or [[f, f] for f in meta.get("training_files", [])]
        assignment = fold_assignment([tuple(p) for p in pairs], self.folds)
        by_key = {key: assignment[file] for file, key in pairs}
        fold = by_key.get(session_key, assignment.get(file_name))
        if fold is None:
            from nrr_stats.models.population import fold_of

            fold = fold_of(file_name, self.folds)
        if fold not in self._fold_priors:
            corpus = self._training_paths(file_name)
            self._fold_priors[fold] = fold_prior(
                corpus, fold, folds=self.folds, assignment=assignment, cache_dir=self.cache_dir
            )
        prior = self._fold_priors[fold]
        if session_key in set(prior.meta.get("training_session_keys", [])):
            raise NrrInputError(
                f"the fold prior of {file_name} was trained on a log with the same session key;"
                " pass --no-population-prior",
                path=file_name,
            )
        return PriorChoice(prior, f"fold {fold} of {self.folds}")

    def _training_paths(self, file_name: str) -> list[Path]:
        files = self.shipped.meta.get("training_files", []) if self.shipped else []
        corpus = self.corpus_dir
        if corpus is None or not all((corpus / name).is_file() for name in files):
            raise NrrInputError(
                "the shipped prior was trained on this log, and its training corpus is not at"
                f" {corpus} to fit a held-out fold prior; pass --corpus DIR or --no-population-prior",
                path=file_name,
            )
        return [corpus / name for name in files]


def default_corpus_dir() -> Path:
    """The dev corpus beside the checkout (../shared/data/autoresearch-logs/dev)."""
    return Path(__file__).resolve().parents[2].parent / "shared/data/autoresearch-logs/dev"


def backtest_logs(
    paths: Sequence[str | Path],
    *,
    prior: StoredPosterior | None | str = "shipped",
    options: BacktestOptions = BacktestOptions(),
    corpus_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    constant_rate: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Backtest logs prequentially; `prior` is "shipped" (held-out fold priors for logs it saw),
    None (no population prior: the conjugate form), or a StoredPosterior used for every log."""
    from nrr_stats.ingest import read_results_log
    from nrr_stats.models.population import load_population_prior

    if not paths:
        raise NrrInputError("no logs to backtest")
    started = time.perf_counter()
    shipped = load_population_prior()
    if constant_rate is None and shipped is not None:
        constant_rate = shipped.meta.get("constant_keep_rate")
    if isinstance(prior, str):
        if prior != "shipped":
            raise NrrInputError(f"unknown prior {prior!r}")
        resolver = PriorResolver(
            shipped,
            corpus_dir=corpus_dir if corpus_dir is not None else default_corpus_dir(),
            cache_dir=cache_dir,
        )
        note = (
            "population prior (held-out fold priors for logs it was trained on)"
            if shipped is not None
            else "no population prior shipped: conjugate form"
        )
    else:
        resolver = None
        note = "no population prior: conjugate form" if prior is None else "given prior"
    if options.evidence is not None:
        resolver = None
        note = "similarity-weighted evidence (held-out fold parameters for logs it was fitted on)"
    walks = []
    for path in paths:
        log = read_results_log(path)
        if options.evidence is not None:
            # the cell fields beside P(keep): the shipped prior where it never saw the log
            seen = shipped is None or log.session_key in set(
                shipped.meta.get("training_session_keys", [])
            )
            cell_prior = (None if seen else shipped) if isinstance(prior, str) else prior
            choice = PriorChoice(cell_prior, options.evidence.for_log(Path(path).name)[1])
        elif resolver is not None:
            choice = resolver.for_log(Path(path).name, log.session_key)
        else:
            choice = PriorChoice(prior, "none" if prior is None else "given")
        walks.append(
            walk_log(
                path,
                choice.posterior,
                options,
                prior_label=choice.label,
                constant_rate=constant_rate,
                log=log,
            )
        )
        if progress is not None:
            progress(f"{Path(path).name}: {len(walks[-1].rows)} rows, prior {choice.label}")
    result = BacktestResult(
        logs=walks,
        scores={},
        constant_rate=constant_rate,
        wall_s=0.0,
        prior_note=note,
    )
    result.scores = score_result(result)
    result.wall_s = time.perf_counter() - started
    return result


def score_result(result: BacktestResult) -> dict[str, Scores]:
    """EVALUATION.md metrics for the engine and the baselines over the same rows."""
    rows = result.rows()
    if not rows:
        raise NrrInputError("no predicted rows: the logs hold no keep/discard/crash experiments")
    n_logs = sum(1 for log in result.logs if log.rows)
    y = [r.y for r in rows]
    scores = {ENGINE: score(ENGINE, [r.p_keep for r in rows], y, [r.verdict for r in rows], n_logs)}
    if result.constant_rate is not None:
        scores[CONSTANT] = score(CONSTANT, [result.constant_rate] * len(rows), y, None, n_logs)
    scores[LAPLACE] = score(LAPLACE, [r.p_laplace for r in rows], y, None, n_logs)
    discounted = [r.p_discounted for r in rows]
    verdicts = ["avoid" if p < DISCOUNTED_AVOID_BELOW else "proceed" for p in discounted]
    scores[DISCOUNTED] = score(DISCOUNTED, discounted, y, verdicts, n_logs)
    return scores


def summary_dict(row: PredictedRow) -> dict[str, Any]:
    """All fields of a predicted row (for --json and the ablation)."""
    out = asdict(row)
    out["interval"] = list(row.interval)
    return out
