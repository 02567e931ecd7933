"""`check_proposal`: the in-loop answer to "should I run this experiment?".

Light by design: numpy and the stored posterior only, never PyMC. Everything an agent needs is in
the returned dict (the SPEC.md JSON contract); `nrr check` prints it and exits with the verdict's code.

What a process keeps between checks of one open Bank, and what makes it read again:
- the bank's evidence sums (`BankReading`): rows past the last id read are added; a moved
  evidence revision (any update or delete of a counted row) rereads everything;
- the posterior brought up to date (`UpdatedPosterior`) and the population-prior session
  engines: refreshed by those same new rows, leaf by leaf;
- a session's rows: reread when the session is updated or the bank grows;
- the stored posterior and prior files, and the similarity store's snapshot: reread when
  their file is replaced (every refit, every commit of the store).
"""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nrr_stats.bank import Bank, open_bank
from nrr_stats.decide import DecisionRule, decide
from nrr_stats.errors import NrrInputError
from nrr_stats.models.evidence import Evidence
from nrr_stats.models.posterior import (
    UpdatedPosterior,
    cell_table,
    load_posterior,
    npz_path_for,
    predict_keep,
    update_posterior,
)
from nrr_stats.parser import ConfigTracker, ParsedChange, Rules
from nrr_stats.proposal import proposal_change, read_proposal

SIMILAR_FAILURES = 5


def _rounded(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


@dataclass
class BankReading:
    """The bank's evidence sums as of one evidence state, and the posteriors updated with them.

    Kept per open Bank: while the bank's evidence revision stands, a later check reads only the
    rows past `state`'s last id (ids commit in order, see Bank.evidence_state) and refreshes
    just their leaves, so a loop that ingests one row and checks again pays for that row,
    never for the whole bank.
    """

    state: tuple[int, int]  # Bank.evidence_state() when read: (revision, last id)
    evidence: Evidence
    updated: dict[int, tuple[Any, UpdatedPosterior]] = field(default_factory=dict)
    histories: dict[tuple, list[dict[str, Any]]] = field(default_factory=dict)
    engines: dict[tuple[int, str], tuple[Any, Any]] = field(default_factory=dict)

    def session_engine(self, prior: Any, session_key: str) -> Any:
        """The population-prior engine of one session, kept: it recomputes changed leaves only."""
        from nrr_stats.session_answer import session_engine

        entry = self.engines.get((id(prior), session_key))
        if entry is None or entry[0] is not prior:
            if len(self.engines) > 8:
                self.engines.clear()
            entry = (prior, session_engine(prior, session_key))
            self.engines[(id(prior), session_key)] = entry
        return entry[1]

    def session_rows(self, bank: Bank, session_row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The session's experiment rows (read-only), reread when the session or bank moves."""
        key = (session_row["id"], session_row["updated_at"])
        rows = self.histories.get(key)
        if rows is None:
            if len(self.histories) > 8:
                self.histories.clear()
            rows = self.histories[key] = bank.experiments(session_row["id"])
        return rows

    def updated_posterior(self, posterior: Any) -> UpdatedPosterior:
        """The posterior brought up to date with this reading (built once per posterior)."""
        entry = self.updated.get(id(posterior))
        if entry is None or entry[0] is not posterior:
            self.updated.clear()  # a refit replaced the posterior: forget the old one
            entry = (posterior, update_posterior(posterior, self.evidence))
            self.updated[id(posterior)] = entry
        return entry[1]


_READINGS: weakref.WeakKeyDictionary[Bank, BankReading] = weakref.WeakKeyDictionary()
# Loaded posteriors and priors by (path, inode, size, mtime): a refit replaces the file.
_LOADED: dict[tuple, Any] = {}


def bank_reading(bank: Bank) -> BankReading:
    """The bank's evidence sums, read whole once per open bank and then only where they grew.

    A process that opens a large bank starts from the sums saved beside it by an earlier one
    (bank/evidence_file.py) when they are of the bank's current revision.
    """
    cached = _READINGS.get(bank)
    saved = _saved_reading(bank) if cached is None else None
    with bank.snapshot():
        state = bank.evidence_state()
        if cached is not None and state == cached.state:
            return cached
        if saved is not None and saved.state[0] == state[0] and saved.state[1] <= state[1]:
            cached = saved  # as if this process had read the bank up to the saved state
        grown = cached is not None and state[0] == cached.state[0] and state[1] > cached.state[1]
        unchanged = cached is not None and state == cached.state
        rows = [] if unchanged else bank.evidence_sums(after_id=cached.state[1] if grown else 0)
    if unchanged:
        reading = cached
    elif not grown:
        reading = BankReading(state, Evidence.from_leaf_sums(rows))
        _save_large(bank, reading)
    else:
        reading = cached
        reading.histories.clear()
        leaves = reading.evidence.add_leaf_rows(rows)
        for _, updated in reading.updated.values():
            updated.refresh(leaves)
        reading.state = state
        if saved is not None and len(rows) > SAVE_AGAIN_SHARE * len(reading.evidence.leaves.index):
            _save_large(bank, reading)  # the saved sums lag far behind: bring them up to date
    _READINGS[bank] = reading
    return reading


# A process that started from saved sums saves them again once the leaves read since exceed
# this share of them.
SAVE_AGAIN_SHARE = 0.1


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


def _load_cached(path: Path, load: Any) -> Any:
    stat = os.stat(path)
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        loaded = load(path)
        # One bank (and the shipped prior) per process is the common case: keep memory flat.
        for old in [k for k in _LOADED if k[0] == str(path)]:
            del _LOADED[old]
        _LOADED[key] = loaded
    return _LOADED[key]


def pick_session(bank: Bank, session: str | int | None) -> dict[str, Any] | None:
    """The session a proposal belongs to: by id or name, else the most recently updated one."""
    if session is None:
        return bank.latest_session()
    found = bank.find_session(session)
    if found is None:
        raise NrrInputError(f"no session {session!r} in the bank", path=bank.location.display)
    return found


def answering_posterior(bank: Bank, *, use_population_prior: bool = True) -> Any:
    """The posterior answers come from: the bank's own fit, else the shipped population prior.

    None means the conjugate empirical-Bayes form (no fit and no prior, or the prior turned off).
    A fit that failed its diagnostics is stored apart and never answers.
    """
    stored = npz_path_for(bank.posterior_path)
    if stored.exists():
        try:
            return _load_cached(stored, load_posterior)
        except (NrrInputError, OSError):
            pass
    if use_population_prior:
        from nrr_stats.models.population import load_prior, population_prior_path

        path = population_prior_path()
        return _load_cached(path, load_prior) if path is not None else None
    return None


def session_tracker(
    bank: Bank, session_row: Mapping[str, Any] | None, rules: Rules | None
) -> ConfigTracker:
    """The config tracker as it stood after the session's last row (stored at ingest)."""
    state = json.loads(session_row.get("tracker_state") or "{}") if session_row else {}
    return ConfigTracker.from_state(state, rules)


def _answer_json(answer: Any) -> dict[str, Any]:
    return {
        "p_keep": _rounded(answer.p_keep),
        "interval": [_rounded(answer.interval[0]), _rounded(answer.interval[1])],
        "p_crash": _rounded(answer.p_crash),
    }


def check_proposal(
    proposal_text: str,
    *,
    bank: Bank | str | Path | None = None,
    session: str | int | None = None,
    rules: Rules | None = None,
    decision_rule: DecisionRule = DecisionRule(),
    record: bool = True,
    use_population_prior: bool = True,
) -> dict[str, Any]:
    """Answer one proposal: verdict, reason, p_keep with its 90% interval, similar failures, patterns."""
    if not proposal_text or not proposal_text.strip():
        raise NrrInputError("the proposal is empty")
    owns_bank = not isinstance(bank, Bank)
    opened = open_bank(bank) if owns_bank else bank
    try:
        return _check(
            opened, proposal_text, session, rules, decision_rule, record, use_population_prior
        )
    finally:
        if owns_bank:
            opened.close()


def _check(
    bank: Bank,
    proposal_text: str,
    session: str | int | None,
    rules: Rules | None,
    decision_rule: DecisionRule,
    record: bool,
    use_population_prior: bool,
) -> dict[str, Any]:
    reading = bank_reading(bank)
    session_row = pick_session(bank, session)
    tracker = session_tracker(bank, session_row, rules)
    config = tracker.current
    proposal = read_proposal(proposal_text)
    change = proposal_change(proposal, tracker)

    posterior = answering_posterior(bank, use_population_prior=use_population_prior)
    session_name = session_row["session_key"] if session_row else None
    history = reading.session_rows(bank, session_row) if session_row else []
    if is_population_prior(posterior):
        engine = reading.session_engine(posterior, session_name or "")
        answer, patterns = _session_engine_answer(
            posterior, session_name or "", history, change, engine
        )
    elif posterior is None:
        answer = predict_keep(
            None,
            reading.evidence,
            session_name,
            change.category,
            change.direction,
            change.parameter,
        )
        patterns = patterns_for(cell_table(None, reading.evidence, session_name), change.category)
    else:
        updated = reading.updated_posterior(posterior)
        answer = updated.answer(session_name, change.category, change.direction, change.parameter)
        patterns = patterns_for(updated.cells(session_name, [change.category]), change.category)

    similar, exact_repeat, near_repeats = similar_failures(
        bank, proposal.description, change, config, history
    )
    answer = _with_similarity_evidence(answer, history, proposal.description, change)
    verdict, reason = decide(
        answer,
        exact_repeat=exact_repeat,
        near_repeats=near_repeats,
        rule=decision_rule,
    )
    if answer.stale:
        reason += f"; the stored fit is stale ({answer.n_new} experiments since), run `nrr fit`"
    result: dict[str, Any] = {
        "verdict": verdict,
        "reason": reason,
        **_answer_json(answer),
        "category": change.category,
        "direction": change.direction,
        "parameter": change.parameter,
        "from": change.from_value,
        "to": change.to_value,
        "n": answer.n,
        "k": answer.k,
        "level": answer.level,
        "base_rate": _rounded(answer.base_rate),
        "prob_below_base": _rounded(answer.prob_below_base),
        "exact_repeat": exact_repeat,
        "similar_failures": similar,
        "patterns": patterns,
        "nk_records": applicable_nk_records(bank, change, session_row),
        "bank": {
            "url": bank.location.display,
            "sessions": bank.count_sessions(),
            "experiments": len(reading.evidence),
            "session": session_row["name"] if session_row else None,
        },
        "fit": {
            "source": answer.source,
            "fitted_at": getattr(posterior, "created_at", None) if posterior else None,
            "n_experiments": getattr(posterior, "n_experiments", None) if posterior else None,
            "n_new": answer.n_new,
            "stale": answer.stale,
            "ess_share": _rounded(answer.ess_share),
        },
    }
    if record:
        result["decision_id"] = bank.record_decision(
            proposal_text, session_row["id"] if session_row else None, result
        )
    return result


def _with_similarity_evidence(answer: Any, history, description: str, change) -> Any:
    """P(keep), its interval and the verdict's inputs from the shipped similarity-evidence model
    (models/similarity_evidence.py), as `nrr backtest` scores it; the cell answer otherwise."""
    from nrr_stats.models.similarity_evidence import (
        AnswerWithEvidence,
        evidence_answer,
        shipped_evidence,
    )

    shipped = shipped_evidence()
    if shipped is None:
        return answer
    return AnswerWithEvidence(answer, evidence_answer(shipped.params, history, description, change))


def is_population_prior(posterior: Any) -> bool:
    """True for the shipped population prior (a bank without a fit of its own)."""
    return posterior is not None and posterior.meta.get("kind") == "population_prior"


def _session_engine_answer(
    prior: Any,
    session_key: str,
    history: list[dict[str, Any]],
    change: ParsedChange,
    engine: Any = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """The backtest's engine for this session: the answer and its category's cells with data."""
    from nrr_stats.session_answer import session_answers

    directions = sorted(
        {row["direction"] for row in history if row["category"] == change.category}
        | {change.direction}
    )
    answer, cells = session_answers(
        prior, session_key, history, change, [(change.category, d) for d in directions], engine
    )
    patterns = [
        {
            "category": category,
            "direction": direction,
            "n": cell.n,
            "n_weighted": None,
            "k": cell.k,
            "mean": _rounded(cell.mean),
            "interval": [_rounded(cell.interval[0]), _rounded(cell.interval[1])],
            "prob_below_base": _rounded(cell.prob_below_base),
            "level": cell.level,
        }
        for (category, direction), cell in cells
    ]
    return answer, patterns


def patterns_for(cells: Sequence[Any], category: str) -> list[dict[str, Any]]:
    """The cell-level posteriors (count, mean, interval) of the proposal's category, as JSON."""
    return [
        {
            "category": cell.category,
            "direction": cell.direction,
            "n": cell.n,
            "n_weighted": _rounded(cell.n_weighted, 2),
            "k": cell.k,
            "mean": _rounded(cell.mean),
            "interval": [_rounded(cell.interval[0]), _rounded(cell.interval[1])],
            "prob_below_base": _rounded(cell.prob_below_base),
            "level": cell.level,
        }
        for cell in cells
        if cell.category == category
    ]


def similar_failures(
    bank: Bank,
    description: str,
    change: ParsedChange,
    config: Mapping[str, str],
    history: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], bool, int]:
    """Past failures most like the proposal, whether one is an exact repeat, and how many are near-repeats."""
    from nrr_stats.similarity.search import similar_failures_in_bank

    return similar_failures_in_bank(
        bank, description, change, config, under_current_config(history, config), k=SIMILAR_FAILURES
    )


def under_current_config(
    history: Sequence[Mapping[str, Any]], config: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The session's rows, those after its last kept row marked as run under the config in force now.

    Only a kept row moves the configuration; a discarded row's `from` value teaches the tracker a
    value without changing it, so the partial record stored with such a row must not hide a repeat.
    """
    now = json.dumps(dict(config), sort_keys=True)
    entry = _MARKED.get(id(history))
    if entry is not None and entry[0] is history and entry[1] == (len(history), now):
        return entry[2]  # the same rows under the same config as the last check: read-only
    last_keep = max((i for i, row in enumerate(history) if row["status"] == "keep"), default=-1)
    marked = [
        {**row, "config_before": now} if i > last_keep else dict(row)
        for i, row in enumerate(history)
    ]
    if len(_MARKED) > 8:
        _MARKED.clear()
    _MARKED[id(history)] = (history, (len(history), now), marked)
    return marked


# under_current_config's last answers, by the identity of the rows list it was given.
_MARKED: dict[int, tuple[Sequence, tuple[int, str], list[dict[str, Any]]]] = {}


def repeat_flags(
    change: ParsedChange,
    description: str,
    config: Mapping[str, str],
    history: Sequence[Mapping[str, Any]],
) -> tuple[bool, int]:
    """(exact repeat, near repeats of the same change) from the session's rows alone, no kernel.

    The backtest uses this: it is what `nrr check` decides on, less text-similarity near-repeats.
    """
    from nrr_stats.similarity.repeats import find_repeats

    fields = {
        "category": change.category,
        "direction": change.direction,
        "parameter": change.parameter,
        "to": change.to_value,
        "description": description,
    }
    found = find_repeats(fields, under_current_config(history, config), config)
    return found["exact_repeat"], len(found["near"])


def applicable_nk_records(
    bank: Bank, change: ParsedChange, session_row: Mapping | None
) -> list[dict]:
    """The curated NK records on this route, with their adoption history."""
    try:
        from nrr_stats.curator import applicable_records
    except ImportError:
        return []
    return applicable_records(
        bank,
        change.category,
        change.direction,
        change.parameter,
        session_id=session_row["id"] if session_row else None,
    )
