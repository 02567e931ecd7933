"""The in-loop answer to "should I run this experiment?": `Checker` and `check_proposal`.

Light by design: numpy and the stored posterior only, never PyMC. Every answer comes from the
session's engine (models/engine.py, the engine `nrr backtest` scores) under the answering prior:
the bank's own fit, else the shipped population prior, else none (the conjugate form).

A loop holds one `Checker(bank)`; it keeps, for as long as it is open:
- the bank's evidence sums (`BankReading`): rows past the last id read are added; a moved
  evidence revision (any update or delete of a counted row) rereads everything;
- the answering prior, reloaded when a new fit is published (bank/fits.py; a PostgreSQL
  bank's newest fit is looked up at most every FIT_RECHECK_SECONDS);
- per session, its rows (reread when the session or the bank's evidence moves), its
  engine (rebuilt when the prior changes; otherwise it recomputes the leaves that moved) and
  the rows as the similarity-evidence model reads them (prepared again with the rows);
- the similarity search's state for the store's current snapshot.
`check_proposal(...)` is the one-shot form: a Checker for one answer, closed after it. `nrr
check`, the MCP server, the demo and the benchmarks all answer through `Checker.check`; what it
adds around one change's answer (several changes, `read_as`, NRR's field names) is in
answer_fields.py.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import nrr_stats.answer_fields as fields
from nrr_stats.bank import Bank, open_bank
from nrr_stats.decide import DecisionRule, decide, heed_adopted_records
from nrr_stats.errors import BankStorageError, NrrInputError
from nrr_stats.models.engine import SessionEngine, stored_evidence_weights
from nrr_stats.models.evidence import Evidence
from nrr_stats.models.posterior import CellSummary, KeepAnswer
from nrr_stats.notices import collecting, warn
from nrr_stats.parser import ConfigTracker, Rules
from nrr_stats.proposal import Proposal, proposal_change, read_proposal
from nrr_stats.similarity.repeats import under_current_config

SIMILAR_FAILURES = 5
# A proposal setting more values than this is answered on its first this many (each change is
# a check of its own, so time stays bounded); the answer warns how many were left unchecked.
MAX_CHANGES_CHECKED = 20
# Sessions whose engines a Checker keeps at once (the least recently asked is dropped).
KEPT_SESSIONS = 16
# A process that started from saved sums saves them again once the leaves read since exceed
# this share of them.
SAVE_AGAIN_SHARE = 0.1


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


@dataclass
class BankReading:
    """The bank's evidence sums as of one evidence state (Bank.evidence_state()).

    While the bank's evidence revision stands, a later read adds only the rows past `state`'s
    last id (ids commit in order), so a loop that ingests one row pays for that row only.
    """

    state: tuple[int, int]  # (revision, last id) when read
    evidence: Evidence


@dataclass
class _Session:
    """One session as a Checker keeps it: its rows, the engine updated with them."""

    key: tuple  # (session id, updated_at, evidence state) the rows were read at
    rows: list[dict[str, Any]]
    engine: SessionEngine
    marked: tuple[str, list[dict[str, Any]]] | None = None  # (config, under_current_config)
    evidence: Any = None  # the rows as the evidence model reads them (EvidenceHistory)


@dataclass(frozen=True)
class BaseRate:
    """A session's base keep rate as its answers use it (the `base_rate` of `nrr check`), with
    its 90% interval and the counted rows behind it."""

    mean: float
    interval: tuple[float, float]
    n: int  # counted experiments (keep, discard, crash)
    k: int  # keeps among them
    crashes: int
    n_weighted: float  # their evidence-weighted count (the engine's discounts)
    source: str  # "fit" | "population-prior" | "conjugate"


def base_rate_of(engine: SessionEngine) -> BaseRate:
    """The base rate of a session's engine under its last update."""
    from nrr_stats.models.rate import CONFIDENCE

    rate = engine.base_rate()
    n, k, crashes, n_weighted = engine.totals()
    return BaseRate(
        rate.mean(), rate.interval(CONFIDENCE), n, k, crashes, n_weighted, engine.source
    )


def _fit_identity(fit: Any, prior: Any) -> dict[str, Any]:
    """Which stored fit answered: its id and the sha256 of its draws (a bank's fits; None for
    files beside a SQLite bank), and the evidence state it was fitted at."""
    if fit is None:
        return {"fit_id": None, "sha256": None, "evidence_state": None}
    return {
        "fit_id": prior.meta.get("fit_id"),
        "sha256": fit.sha256,
        "evidence_state": prior.meta.get("evidence_state"),
    }


def cell_json(cell: CellSummary) -> dict[str, Any]:
    """One `patterns` entry as JSON (the README's contract), as every command prints it."""
    return {
        "category": cell.category,
        "direction": cell.direction,
        "n": cell.n,
        "k": cell.k,
        "n_weighted": _rounded(cell.n_weighted, 2),
        "mean": _rounded(cell.mean),
        "interval": [_rounded(cell.interval[0]), _rounded(cell.interval[1])],
        "prob_below_base": _rounded(cell.prob_below_base),
        "level": cell.level,
        "source": cell.source,
    }


def cell_summary(category: str, direction: str, answer: KeepAnswer) -> CellSummary:
    """A cell's pattern: the answer for a change in it that names no parameter."""
    return CellSummary(
        category=category,
        direction=direction,
        n=answer.n,
        k=answer.k,
        n_weighted=answer.n_weighted,
        mean=answer.mean,
        interval=answer.interval,
        prob_below_base=answer.prob_below_base,
        level=answer.level,
        source=answer.source,
    )


class Checker:
    """Answers proposals against one bank, keeping what a loop reuses between checks.

    Open it once per loop (`with Checker(bank) as checker:`); `bank` is an open Bank (left open
    on close) or a location (opened here, closed on close). See the module docstring for what
    it keeps and when each part is read again.
    """

    def __init__(
        self,
        bank: Bank | str | Path | None = None,
        *,
        rules: Rules | None = None,
        decision_rule: DecisionRule = DecisionRule(),
        use_population_prior: bool = True,
    ):
        self._owns_bank = not isinstance(bank, Bank)
        # Never creates a bank: a missing one is an input error saying how to make it.
        self.bank: Bank = open_bank(bank, create=False) if self._owns_bank else bank  # type: ignore[assignment]
        self.rules, self.decision_rule = rules, decision_rule
        self.use_population_prior = use_population_prior
        self._reading: BankReading | None = None
        self._prior: tuple[tuple, Any] | None = None  # (fit or file identity, loaded prior)
        self._fits: Any = None  # the bank's FitStore (bank/fits.py), made on first use
        self.fit: Any = None  # the StoredFit answers come from (None: no fit of the bank)
        self._unreadable: tuple[tuple, str] | None = None  # (fit key, why) it did not load
        self._sessions: dict[str, _Session] = {}
        self._unseen_count: tuple[Any, tuple, int] | None = None  # (prior, state, count)
        from nrr_stats.similarity.search import FailureSearch

        self._search = FailureSearch()

    def close(self) -> None:
        """Drop what is kept; close the bank when this Checker opened it."""
        self._reading, self._prior, self._sessions = None, None, {}
        self._unseen_count = None
        if self._owns_bank:
            self.bank.close()

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is kept --------------------------------------------------------------------------

    def reading(self) -> BankReading:
        """The bank's evidence sums, read whole once and then only where they grew.

        A Checker on a large bank starts from the sums saved beside it by an earlier process
        (bank/evidence_file.py) when they are of the bank's current revision.
        """
        bank, cached = self.bank, self._reading
        saved = _saved_reading(bank) if cached is None else None
        with bank.snapshot():
            state = bank.evidence_state()
            if cached is not None and state == cached.state:
                return cached
            if saved is not None and saved.state[0] == state[0] and saved.state[1] <= state[1]:
                cached = saved  # as if this process had read the bank up to the saved state
            grown = (
                cached is not None and state[0] == cached.state[0] and state[1] > cached.state[1]
            )
            unchanged = cached is not None and state == cached.state
            rows = [] if unchanged else bank.evidence_sums(after_id=cached.state[1] if grown else 0)
        if unchanged:
            reading = cached
        elif not grown:
            reading = BankReading(state, Evidence.from_leaf_sums(rows))
            _save_large(bank, reading)
        else:
            reading = cached
            reading.evidence.add_leaf_rows(rows)
            reading.state = state
            if saved is not None and len(rows) > SAVE_AGAIN_SHARE * len(
                reading.evidence.leaves.index
            ):
                _save_large(bank, reading)  # the saved sums lag far behind: bring them up to date
        self._reading = reading
        return reading

    def prior(self) -> Any:
        """The prior answers come from: the bank's own newest passing fit (bank/fits.py: in
        the bank for PostgreSQL, beside it for SQLite), else the shipped population prior
        (unless turned off), else None (the conjugate form). A fit that failed its
        diagnostics never answers. Reloaded when a new fit is published."""
        if self._fits is None:
            from nrr_stats.bank.fits import fit_store

            self._fits = fit_store(self.bank)
        try:
            fit = self._fits.newest_passing()
            if fit is not None:
                if self._unreadable is not None and self._unreadable[0] == fit.key:
                    raise NrrInputError(self._unreadable[1])  # said again, not read again
                if self._prior is None or self._prior[0] != fit.key:
                    try:
                        self._prior = (fit.key, self._fits.load(fit))
                    except (NrrInputError, OSError) as error:
                        self._unreadable = (fit.key, str(error))
                        raise
                    self.fit = fit
                return self._prior[1]
        except (NrrInputError, OSError) as error:  # an unreadable fit: fall back, and say so
            instead = "the population prior" if self.use_population_prior else "the conjugate form"
            warn(f"{error}; answering from {instead} until `nrr fit` stores a new fit")
            self._prior, self.fit = None, None
            return self._fallback_prior()
        self.fit = None
        path = None
        if self.use_population_prior:
            from nrr_stats.models.population import load_prior, population_prior_path

            path = population_prior_path()
        if path is None:
            self._prior = None
            return None
        stat = os.stat(path)
        identity = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._prior is None or self._prior[0] != identity:
            self._prior = (identity, load_prior(path))
        return self._prior[1]

    def _fallback_prior(self) -> Any:
        if not self.use_population_prior:
            return None
        from nrr_stats.models.population import load_population_prior

        return load_population_prior()

    def _session(self, session_row: Mapping[str, Any] | None) -> _Session:
        """The session's rows and its engine updated with them (both kept while they hold),
        as of the reading just taken."""
        prior = self.prior()
        state = self._reading.state
        name = session_row["session_key"] if session_row else ""
        key = (session_row["id"], session_row["updated_at"], state) if session_row else (state,)
        kept = self._sessions.pop(name, None)
        if kept is None or kept.engine.prior is not prior:
            engine = _engine(prior, name)
            kept = _Session(key=None, rows=[], engine=engine)  # type: ignore[arg-type]
        if kept.key != key:
            kept.rows = self.bank.experiments(session_row["id"]) if session_row else []
            kept.engine.update(kept.rows)
            kept.key, kept.marked, kept.evidence = key, None, None
        self._sessions[name] = kept  # the most recently asked last
        while len(self._sessions) > KEPT_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return kept

    # -- answers -------------------------------------------------------------------------------

    def answer(
        self, session: str | int | None, category: str, direction: str, parameter: str = ""
    ) -> KeepAnswer:
        """The engine's answer for a change in a session (n_new: counted bank experiments the
        answering prior did not see)."""
        self.reading()
        session_row = pick_session(self.bank, session)
        return self._answer(self._session(session_row), category, direction, parameter)

    def _answer(self, kept: _Session, category: str, direction: str, parameter: str) -> KeepAnswer:
        answer = kept.engine.answer(category, direction, parameter)
        return replace(answer, n_new=self._unseen(kept.engine.prior))

    def _unseen(self, prior: Any) -> int:
        """Counted experiments of the bank the prior did not see (all, for the shipped prior);
        for a fit on a sample of sessions, those the bank held beyond the ones it sampled from.
        Kept for the prior and reading it was counted for (every cell of a check asks)."""
        from nrr_stats.models.session_sample import experiments_offered

        reading = self._reading
        known = self._unseen_count
        if known is not None and known[0] is prior and known[1] == reading.state:
            return known[2]
        total = len(reading.evidence)
        if prior is None or "trials" not in prior.seen:
            unseen = total
        else:
            offered = experiments_offered(prior.meta)
            if offered is None:
                offered = int(round(float(prior.seen["trials"].sum())))
            unseen = max(total - offered, 0)
        self._unseen_count = (prior, reading.state, unseen)
        return unseen

    def base_rate(self, session: str | int | None = None) -> BaseRate:
        """The session's base keep rate, as its answers compare with (`nrr check`'s base_rate)."""
        self.reading()
        return base_rate_of(self._session(pick_session(self.bank, session)).engine)

    def base_rate_trajectory(
        self, session: str | int | None = None, max_points: int = 60
    ) -> list[tuple[int, BaseRate]]:
        """(rows read, base rate after them) along the session's rows, from 0 (the prior alone)
        to all of them, at most `max_points` evenly spaced positions (the last always): what
        `nrr check` would have compared a proposal with after each of those rows."""
        self.reading()
        kept = self._session(pick_session(self.bank, session))
        total = len(kept.rows)
        count = max(min(max_points, total + 1), 2)
        positions = sorted({int(round(p)) for p in np.linspace(0, total, count)})
        engine = _engine(kept.engine.prior, kept.engine.session)
        out = []
        for position in positions:
            engine.update(kept.rows[:position])
            out.append((position, base_rate_of(engine)))
        return out

    def patterns(
        self,
        session: str | int | None = None,
        categories: Sequence[str] | None = None,
        *,
        prior_cells: bool = False,
    ) -> list[CellSummary]:
        """Every cell with data in the bank (and the prior's fitted cells with `prior_cells`):
        the session's counts, the rate's mean, 90% interval and P(rate < base), as the
        session's engine answers a change in the cell that names no parameter; surest-bad
        first. `categories` keeps only those categories' cells."""
        self.reading()
        session_row = pick_session(self.bank, session)
        return self._patterns(self._session(session_row), categories, prior_cells=prior_cells)

    def _patterns(
        self,
        kept: _Session,
        categories: Sequence[str] | None,
        *,
        prior_cells: bool = False,
        also: Sequence[tuple[str, str]] = (),
    ) -> list[CellSummary]:
        cells = set(self._reading.evidence.keys("cell")) | set(also)
        prior = kept.engine.prior
        if prior_cells and prior is not None:
            cells |= set(prior.cells)
        if categories is not None:
            wanted = set(categories)
            cells = {cell for cell in cells if cell[0] in wanted}
        rows = [cell_summary(c, d, self._answer(kept, c, d, "")) for c, d in cells]
        return sorted(rows, key=lambda r: (-r.prob_below_base, r.mean, r.category, r.direction))

    def check(
        self,
        proposal_text: str,
        *,
        session: str | int | None = None,
        description: str | None = None,
        record: bool = True,
    ) -> dict[str, Any]:
        """Answer a proposal (text, `KEY = value` lines, a unified diff): verdict, reason,
        p_keep with its 90% interval, similar failures, the patterns of its category, how it
        was read, NRR's field names (the README's JSON contract), and `warnings`: what the
        answer was given despite (a file beside the bank that did not verify, a decision that
        could not be recorded), also said on stderr. A proposal changing several values is
        answered for its riskiest change, every change listed in `changes_checked`.

        `description` replaces the proposal's own description lines (NRR's `--description`);
        `record` stores the answer in the bank's decisions (its id in `decision_id`).
        """
        with collecting() as warnings:
            result = self._check(
                proposal_text, session=session, description=description, record=record
            )
            result["warnings"] = list(warnings)
        return result

    def _check(
        self,
        proposal_text: str,
        *,
        session: str | int | None,
        description: str | None,
        record: bool,
    ) -> dict[str, Any]:
        if not proposal_text or not proposal_text.strip():
            if not description:
                raise NrrInputError("the proposal is empty")
            proposal_text = ""
        text = fields.with_description(proposal_text, description)
        proposal = read_proposal(text)
        session_row = pick_session(self.bank, session)  # one lookup for every change and the record
        changes = proposal.changes
        if len(changes) <= 1:
            answer = self._answer_change(proposal, session_row)
            answer["changes_checked"] = []
        else:
            if len(changes) > MAX_CHANGES_CHECKED:
                warn(
                    f"the proposal sets {len(changes)} values: the first {MAX_CHANGES_CHECKED} "
                    "were checked, the rest were not"
                )
            answers = [
                (change, self._answer_change(read_proposal(change.text()), session_row))
                for change in changes[:MAX_CHANGES_CHECKED]
            ]
            riskiest_change, riskiest = max(
                answers,
                key=lambda pair: (fields.SEVERITY[pair[1]["verdict"]], -(pair[1]["p_keep"] or 0.0)),
            )
            answer = dict(riskiest)
            answer["reason"] = (
                f"the riskiest of {len(answers)} changes ({riskiest_change.text()}): "
                + answer["reason"]
            )
            answer["changes_checked"] = [fields.change_summary(c, a) for c, a in answers]
        answer["read_as"] = {"description": proposal.description, **proposal.read_as()}
        answer["empty_bank"] = not answer["bank"]["experiments"]
        if answer["empty_bank"]:
            answer["reason"] += f"; {fields.EMPTY_BANK_NOTE}"
        answer["recommended_alternative"] = next(
            (
                r.get("recommended_alternative")
                for r in answer["nk_records"]
                if r.get("recommended_alternative")
            ),
            None,
        )
        fields.add_nrr_fields(answer, proposal, self.bank)
        if record:
            answer["decision_id"] = _record(self.bank, text, session_row, answer)
        return answer

    def _answer_change(
        self, proposal: Proposal, session_row: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The engine's answer to a proposal read as one change (the core of `check`)."""
        bank = self.bank
        reading = self.reading()
        tracker = session_tracker(bank, session_row, self.rules)
        config = tracker.current
        change = proposal_change(proposal, tracker)
        kept = self._session(session_row)
        answer = self._answer(kept, change.category, change.direction, change.parameter)
        patterns = self._patterns(
            kept, [change.category], also=[(change.category, change.direction)]
        )
        similar, exact_repeat, near_repeats = self._similar_failures(
            kept, proposal.description, change, config
        )
        answer = _with_similarity_evidence(answer, kept, proposal.description, change)
        verdict, reason = decide(
            answer, exact_repeat=exact_repeat, near_repeats=near_repeats, rule=self.decision_rule
        )
        nk_records = applicable_nk_records(bank, change, session_row)
        verdict, reason = heed_adopted_records(
            verdict, reason, *binding_nk_records(nk_records, change)
        )
        if answer.stale:
            reason += (
                f"; the prior is stale for this session ({answer.n_new} experiments it did not see)"
            )
            if answer.source == "fit":
                reason += ", run `nrr fit`"
        prior = kept.engine.prior
        result: dict[str, Any] = {
            "verdict": verdict,
            "reason": reason,
            "p_keep": _rounded(answer.p_keep),
            "interval": [_rounded(answer.interval[0]), _rounded(answer.interval[1])],
            "p_crash": _rounded(answer.p_crash),
            "category": change.category,
            "direction": change.direction,
            "parameter": change.parameter,
            "from": change.from_value,
            "to": change.to_value,
            "n": answer.n,
            "k": answer.k,
            "n_weighted": _rounded(answer.n_weighted, 2),
            "level": answer.level,
            "base_rate": _rounded(answer.base_rate),
            "prob_below_base": _rounded(answer.prob_below_base),
            "exact_repeat": exact_repeat,
            "similar_failures": similar,
            "patterns": [cell_json(cell) for cell in patterns],
            "nk_records": nk_records,
            "bank": {
                "url": bank.location.display,
                "sessions": bank.count_sessions(),
                "experiments": len(reading.evidence),
                "session": session_row["name"] if session_row else None,
            },
            "fit": {
                "source": answer.source,
                "fitted_at": prior.meta.get("created_at") if prior is not None else None,
                "n_experiments": prior.meta.get("n_experiments") if prior is not None else None,
                **_fit_identity(self.fit if answer.source == "fit" else None, prior),
                "n_new": answer.n_new,
                "stale": answer.stale,
                "ess_share": _rounded(answer.ess_share),
            },
        }
        return result

    def _similar_failures(
        self, kept: _Session, description: str, change: Any, config: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """Past failures most like the proposal, whether one is an exact repeat, and how many
        are near-repeats (the session's rows marked with the config in force now, kept)."""
        from nrr_stats.similarity.search import similar_failures_in_bank

        now = json.dumps(dict(config), sort_keys=True)
        if kept.marked is None or kept.marked[0] != now:
            kept.marked = (now, under_current_config(kept.rows, config))
        return similar_failures_in_bank(
            self.bank,
            description,
            change,
            config,
            kept.marked[1],
            k=SIMILAR_FAILURES,
            search=self._search,
        )


def _with_similarity_evidence(answer: Any, kept: _Session, description: str, change: Any) -> Any:
    """P(keep), its interval and the verdict's inputs from the shipped similarity-evidence model
    (models/similarity_evidence.py), as `nrr backtest` scores it; the cell answer otherwise.
    The session's rows are prepared for the model once per version of them (kept.evidence)."""
    from nrr_stats.models.similarity_evidence import (
        AnswerWithEvidence,
        EvidenceHistory,
        shipped_evidence,
    )

    shipped = shipped_evidence()
    if shipped is None:
        return answer
    if kept.evidence is None or kept.evidence.params is not shipped.params:
        kept.evidence = EvidenceHistory.of(shipped.params, kept.rows)
    evidence = kept.evidence.answer(description, change, answer.base_rate)
    return AnswerWithEvidence(answer, evidence)


def _record(
    bank: Bank, proposal_text: str, session_row: Mapping[str, Any] | None, result: dict
) -> int | None:
    """Record the decision; when the bank cannot take it (locked behind a writer, full,
    read-only) the answer still stands, with a warning instead of a decision id."""
    try:
        return bank.record_decision(
            proposal_text, session_row["id"] if session_row else None, result
        )
    except BankStorageError as error:
        warn(f"the decision was not recorded: {error.one_line()}")
        return None


def check_proposal(
    proposal_text: str,
    *,
    bank: Bank | str | Path | None = None,
    session: str | int | None = None,
    description: str | None = None,
    rules: Rules | None = None,
    decision_rule: DecisionRule = DecisionRule(),
    record: bool = True,
    use_population_prior: bool = True,
) -> dict[str, Any]:
    """Answer one proposal (the one-shot form of `Checker.check`; a loop keeps a Checker)."""
    with Checker(
        bank, rules=rules, decision_rule=decision_rule, use_population_prior=use_population_prior
    ) as checker:
        return checker.check(proposal_text, session=session, description=description, record=record)


def patterns(
    bank: Bank | str | Path | None = None,
    session: str | int | None = None,
    *,
    use_population_prior: bool = True,
    prior_cells: bool = False,
) -> list[CellSummary]:
    """Every cell of the bank as the session's engine answers it (`nrr patterns`, `nrr
    suggest`, `nrr report` and the `patterns` of `nrr check` all read this)."""
    with Checker(bank, use_population_prior=use_population_prior) as checker:
        return checker.patterns(session, prior_cells=prior_cells)


def _saved_reading(bank: Bank) -> BankReading | None:
    """The sums saved beside the bank, when they are of its current evidence revision."""
    from nrr_stats.bank.evidence_file import load_evidence, saved_state

    peek = saved_state(bank.evidence_path)
    if peek is None:
        return None
    now = bank.evidence_state()
    if peek[0] != now[0] or peek[1] > now[1]:
        return None
    loaded = load_evidence(bank.evidence_path)
    return BankReading(loaded[1], loaded[0]) if loaded is not None else None


def _save_large(bank: Bank, reading: BankReading) -> None:
    """Save the sums beside a bank large enough for the file to pay (best effort)."""
    from nrr_stats.bank.evidence_file import MIN_LEAVES, save_evidence

    if len(reading.evidence.leaves.index) >= MIN_LEAVES:
        save_evidence(bank.evidence_path, reading.evidence, reading.state)


def _engine(prior: Any, session_key: str) -> SessionEngine:
    """A session's engine under a prior, with the curated evidence weights stored in the bank."""
    return SessionEngine(prior, session_key, evidence_weights=stored_evidence_weights)


def pick_session(bank: Bank, session: str | int | None) -> dict[str, Any] | None:
    """The session a proposal belongs to: by id or name, else the most recently updated one."""
    if session is None:
        return bank.latest_session()
    found = bank.find_session(session)
    if found is None:
        raise NrrInputError(f"no session {session!r} in the bank", path=bank.location.display)
    return found


def session_tracker(
    bank: Bank, session_row: Mapping[str, Any] | None, rules: Rules | None
) -> ConfigTracker:
    """The config tracker as it stood after the session's last row (stored at ingest)."""
    state = json.loads(session_row.get("tracker_state") or "{}") if session_row else {}
    return ConfigTracker.from_state(state, rules)


def applicable_nk_records(bank: Bank, change: Any, session_row: Mapping | None) -> list[dict]:
    """The curated NK records on this route, with their adoption history."""
    if not bank.has_nk_records():  # most banks: the curator's code need not even load
        return []
    from nrr_stats.curator.store import applicable_records

    return applicable_records(
        bank,
        change.category,
        change.direction,
        change.parameter,
        session_id=session_row["id"] if session_row else None,
    )


def binding_nk_records(records: list[dict], change: Any) -> tuple[list, list]:
    """(adopted, rejected) records on exactly this route that say abandon_route or change_method."""
    if not records:
        return [], []
    from nrr_stats.curator.adoption import binding_records

    return binding_records(records, change.category, change.direction, change.parameter)
