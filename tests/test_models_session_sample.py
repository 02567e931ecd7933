"""The bounded fit: at most K sessions by hash, its cost bounded, and sessions outside it
answered like any session the fit never saw (offset integrated on the session grid)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from core_helpers import write_log
from hypothesis import given
from hypothesis import strategies as st

from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.session_sample import (
    MAX_FIT_LEAVES,
    MAX_FIT_SESSIONS,
    bounded_table,
    experiments_offered,
    sample_sessions,
)

keys = st.lists(st.text(min_size=1, max_size=12), max_size=40)


@given(keys, st.integers(1, 50))
def test_the_sample_is_a_subset_of_the_asked_size_whatever_the_order(names, k):
    sample = sample_sessions(names, k)
    assert set(sample) <= set(names)
    assert len(sample) == min(k, len(set(names)))
    assert sample == sample_sessions(list(reversed(names)), k) == tuple(sorted(sample))


@given(keys, keys, st.integers(1, 20))
def test_new_sessions_only_displace_sampled_ones_never_bring_back_dropped_ones(old, new, k):
    """A bottom-K sample: a session of the old bank is sampled in the grown bank only if it was
    sampled in the old one, so refits of a growing bank keep most of their sessions."""
    before = set(sample_sessions(old, k))
    after = set(sample_sessions(old + new, k))
    assert after & set(old) <= before


leaf_counts = st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 50), max_size=30)


@given(leaf_counts, leaf_counts, st.integers(1, 30), st.integers(1, 300))
def test_the_leaf_bound_holds_and_keeps_the_bottom_k_law(old, new, k, max_leaves):
    """At most k sessions holding at most max_leaves leaves (one session always, even a large
    one: a fit needs data); growing the bank only displaces sampled sessions."""
    grown = {**new, **old}
    sample = sample_sessions(grown, k, grown, max_leaves)
    assert 1 <= len(sample) <= k or not grown
    assert len(sample) == 1 or sum(grown[s] for s in sample) <= max_leaves
    before = set(sample_sessions(old, k, old, max_leaves))
    assert set(sample) & set(old) <= before


ROWS = (  # (category, direction, parameter, status, description) per row of every session
    [("learning_rate", "increase", "LEARNING_RATE", "keep", "Increase learning rate from 0.01 to 0.1")]
    + [("learning_rate", "increase", "LEARNING_RATE", "discard", "Increase learning rate from 0.01 to 0.2")] * 13
    + [("optimizer", "replace", "OPTIMIZER", "keep", "Switch optimizer from SGD to AdamW")] * 10
    + [("optimizer", "replace", "OPTIMIZER", "discard", "Switch optimizer from SGD to Lion")] * 3
    + [("data", "add", "", "keep", "Add random crop data augmentation")] * 3
    + [("data", "add", "", "crash", "Add random crop data augmentation")] * 2
    + [("data", "add", "", "discard", "Add random crop data augmentation")] * 3
)  # fmt: skip


def per_session_rows(session: str, lr_keeps: int = 1) -> list[dict]:
    rows = [r[:4] for r in ROWS]
    lr = [i for i, r in enumerate(rows) if r[0] == "learning_rate"]
    rows = [
        (*r[:3], "keep" if i in lr[:lr_keeps] else ("discard" if i in lr else r[3]))
        for i, r in enumerate(rows)
    ]
    return [
        {"session": session, "category": c, "direction": d, "parameter": p, "status": x}
        for c, d, p, x in rows
    ]


def table_of(sessions: list[str]) -> ExperimentTable:
    return ExperimentTable.from_records(row for s in sessions for row in per_session_rows(s))


def test_bounded_table_keeps_the_sampled_sessions_rows_and_says_so():
    names = [f"log-{i}" for i in range(9)]
    table = table_of(names)
    sampled, meta = bounded_table(table, 4)
    chosen = sample_sessions(names, 4)
    assert sorted(set(sampled.session_column().tolist())) == list(chosen)
    assert len(sampled) == 4 * len(per_session_rows("x"))
    assert meta == {
        "max_sessions": 4,
        "max_leaves": MAX_FIT_LEAVES,
        "rule": meta["rule"],
        "sessions": 9,
        "sessions_fitted": 4,
        "leaves": 9 * 3,
        "leaves_fitted": 4 * 3,
        "experiments": len(table),
        "experiments_fitted": len(sampled),
    }
    by_leaves, meta = bounded_table(table, None, 7)  # 3 leaves per session: 2 sessions
    assert meta["sessions_fitted"] == 2 and meta["leaves_fitted"] == 6
    assert len(by_leaves) == 2 * len(per_session_rows("x"))
    assert experiments_offered({"session_sample": meta}) == len(table)
    assert experiments_offered({}) is None
    whole, meta = bounded_table(table, None)
    assert whole is table and meta["sessions_fitted"] == 9


def test_the_fit_default_bounds_the_sessions():
    import inspect

    from nrr_stats.models.fit import fit_hierarchy

    parameters = inspect.signature(fit_hierarchy).parameters
    assert parameters["max_sessions"].default == MAX_FIT_SESSIONS
    assert parameters["max_leaves"].default == MAX_FIT_LEAVES


@pytest.mark.slow
def test_the_compiled_models_size_does_not_grow_with_the_sessions():
    """Free variables and likelihood terms (leaves) of the model the sampler runs stay fixed
    as the bank's sessions grow from 4 to 64 (each session with the same structure)."""
    from nrr_stats.models.fit import build_model, model_data

    warnings.filterwarnings("ignore", category=FutureWarning)
    sizes = []
    for n_sessions in (4, 16, 64):
        sampled, _ = bounded_table(table_of([f"s{i}" for i in range(n_sessions)]), 4)
        data = model_data(sampled)
        model = build_model(data)
        free = sum(int(np.prod(v.shape)) for v in model.initial_point().values())
        sizes.append((free, len(data.keeps_w), len(data.crashes_w), len(data.sessions)))
    assert sizes[0] == sizes[1] == sizes[2]
    assert sizes[0][3] == 4 and sizes[0][1] == 4 * 3  # 4 sessions x 3 leaves


def write_logs(folder) -> list:
    """Six logs (sessions) of the same rows, each with its own baseline row."""
    logs = []
    for i in range(6):
        lines = [f"b{i:06d}\t0.9\t1.0\tkeep\tbaseline run {i}"]
        for j, (*_, status, text) in enumerate(ROWS):
            metric = "0.0" if status == "crash" else f"{0.9 - 0.001 * j:.4f}"
            lines.append(f"c{i}{j:05d}\t{metric}\t1.0\t{status}\t{text}")
        logs.append(write_log(folder / f"log-{i}.tsv", lines))
    return logs


@pytest.fixture(scope="module")
def bounded_fit(tmp_path_factory):
    """A SQLite bank of six sessions and a fit on three of them."""
    from nrr_stats import ingest_log, open_bank
    from nrr_stats.models.fit import fit_hierarchy

    warnings.filterwarnings("ignore", category=FutureWarning)
    folder = tmp_path_factory.mktemp("bounded")
    with open_bank(folder / "bank.db") as bank:
        logs = write_logs(folder)
        for log in logs:
            ingest_log(bank, log)
        table = bank.experiment_table()
    names = sorted(set(table.session_column().tolist()))
    assert len(names) == 6 and len(table) == 6 * len(ROWS)
    result = fit_hierarchy(
        table, draws=150, chains=2, tune=300, seed=3, progress=False, max_sessions=3
    )
    return folder / "bank.db", logs, names, table, result


@pytest.mark.slow
def test_the_fit_stores_only_the_sample_and_records_it(bounded_fit):
    _, _, names, table, result = bounded_fit
    sample = sample_sessions(names, 3)
    posterior = result.posterior
    assert posterior.sessions == sample
    assert posterior.draws["u_sess"].shape == (posterior.n_draws, 3)
    assert set(posterior.seen["session"].tolist()) == set(sample)
    meta = posterior.meta["session_sample"]
    assert (meta["sessions"], meta["sessions_fitted"], meta["max_sessions"]) == (6, 3, 3)
    assert meta["experiments"] == len(table)
    assert posterior.meta["n_experiments"] == meta["experiments_fitted"] == len(table) // 2


@pytest.mark.slow
def test_a_session_outside_the_sample_is_answered_from_its_own_rows_by_both_integrations(
    bounded_fit,
):
    """A session the fit left out gets the new-session answer: its offset integrated per draw
    on the session grid (what `nrr check` reads) agrees with the Gauss-Hermite quadrature of
    `posterior.UpdatedPosterior`, and its own rows move the answer."""
    from nrr_stats.models.engine import Dynamics, SessionEngine
    from nrr_stats.models.posterior import predict_keep

    _, _, names, table, result = bounded_fit
    sample = sample_sessions(names, 3)
    outside = next(name for name in names if name not in sample)
    posterior = result.posterior
    assert outside not in posterior.sessions
    answers = {}
    # The session's own rows (like the sampled ones), and a variant whose LR increases were
    # kept 10 times of 14: each answered with only the sampled sessions besides it.
    for lr_keeps in (1, 10):
        rows = per_session_rows(outside, lr_keeps=lr_keeps)
        engine = SessionEngine(posterior, outside, dynamics=Dynamics())
        engine.update(rows)
        grid = engine.answer("learning_rate", "increase", "LEARNING_RATE")
        quadrature = predict_keep(
            posterior,
            _with_rows(table, sample, rows),
            outside,
            "learning_rate",
            "increase",
            "LEARNING_RATE",
        )
        assert grid.source == "fit" and quadrature.source == "posterior"
        assert grid.p_keep == pytest.approx(quadrature.p_keep, abs=0.01)
        assert grid.interval == pytest.approx(quadrature.interval, abs=0.02)
        answers[lr_keeps] = grid
    # Rows like the fitted sessions' leave the draws' weights even; its own rows move it.
    assert answers[1].ess_share > 0.5 and not answers[1].stale
    assert answers[1].p_keep < 0.2 < 0.4 < answers[10].p_keep


def _with_rows(table: ExperimentTable, sample: tuple[str, ...], rows: list[dict]):
    kept = table.select(np.isin(table.session_column(), list(sample)))
    records = [
        {
            "session": kept.session_names[s],
            "category": c,
            "direction": d,
            "parameter": p,
            "status": "keep" if k else ("crash" if x else "discard"),
        }
        for s, c, d, p, k, x in zip(
            kept.session,
            kept.category,
            kept.direction,
            kept.parameter,
            kept.kept,
            kept.crashed,
            strict=True,
        )
    ]
    return ExperimentTable.from_records(records + rows)


@pytest.mark.slow
def test_a_check_in_a_session_outside_the_sample_answers_from_the_fit(bounded_fit):
    """Through the Checker on the bank: the stored bounded fit answers a session it left out
    (source "fit", its own rows counted, nothing called new), as the engine does directly."""
    from nrr_stats import Checker
    from nrr_stats.models.engine import SessionEngine, stored_evidence_weights
    from nrr_stats.models.fit import save_fit

    bank_path, logs, names, _, result = bounded_fit
    with Checker(bank_path) as checker:
        save_fit(result, checker.bank.posterior_path)
        sample = sample_sessions(names, 3)
        by_key = {row["session_key"]: row for row in checker.bank.sessions()}
        outside = next(name for name in names if name not in sample)
        log = next(log for log in logs if str(log) == by_key[outside]["source_path"])
        answer = checker.check("Increase learning rate from 0.01 to 0.3", session=str(log))
        cell = checker.answer(str(log), "learning_rate", "increase", "LEARNING_RATE")
        history = checker.bank.experiments(by_key[outside]["id"])
    assert answer["fit"]["source"] == "fit" and answer["fit"]["n_new"] == 0
    assert answer["n"] == 14 and answer["level"] == "parameter"
    engine = SessionEngine(result.posterior, outside, evidence_weights=stored_evidence_weights)
    engine.update(history)
    direct = engine.answer("learning_rate", "increase", "LEARNING_RATE")
    assert cell.p_keep == pytest.approx(direct.p_keep, rel=1e-6)
    assert cell.p_keep < 0.2 and not cell.stale


@pytest.mark.slow
def test_nrr_fit_says_when_it_fitted_a_sample(bounded_fit, monkeypatch, capsys):
    from nrr_stats.cli import main
    from nrr_stats.models import fit as fit_module

    bank_path, _, _, _, result = bounded_fit
    monkeypatch.setattr(fit_module, "fit_hierarchy", lambda table, **kw: result)
    main(["fit", "--bank", str(bank_path), "--no-progress"])
    out = capsys.readouterr().out
    assert f"sampled 3 of 6 sessions by hash ({3 * len(ROWS)} experiments)" in out
