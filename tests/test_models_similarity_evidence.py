"""The similarity-weighted evidence model: its special cases and its one-row form."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.backtest.metrics import discounted_running_rate
from nrr_stats.models import similarity_evidence as se

CATS = ("learning_rate", "architecture", "regularization")


def _session(seed: int, n: int) -> se.SessionRows:
    rng = np.random.default_rng(seed)
    # few distinct directions so exact and near repeats occur
    base = rng.normal(size=(5, se.FEATURE_DIM if hasattr(se, "FEATURE_DIM") else 128))
    rows = base[rng.integers(0, 5, size=n)] + 0.3 * rng.normal(size=(n, base.shape[1]))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    vocabulary = [f"w{i}" for i in range(12)]
    texts = [
        " ".join(rng.choice(vocabulary, size=rng.integers(0, 6), replace=False)) for _ in range(n)
    ]
    return se.SessionRows(
        y=(rng.random(n) < 0.25).astype(float),
        categories=tuple(CATS[i] for i in rng.integers(0, 3, size=n)),
        proposal_features=rows.astype(np.float32),
        history_features=rows.astype(np.float32),
        words=se.word_sets(texts),
    )


FITTED = se.EvidenceParams(
    discount=0.85,
    prior_keeps=0.7,
    prior_trials=2.5,
    strength=4.0,
    temperature=0.08,
    kernel_discount=0.97,
    plateau=-0.2,
    cells={"learning_rate": -0.3},
    intercept=0.1,
    position=-0.1,
    fail_similarity=-0.5,
    keep_similarity=0.4,
    text_weights=tuple(np.linspace(-0.5, 0.5, 128)),
    neighbour_weight=0.6,
)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60))
def test_the_baseline_is_the_discounted_running_rate_exactly(seed: int, n: int):
    session = _session(seed, n)
    p = se.predict_session(session, se.BASELINE).p_keep
    expected = [discounted_running_rate(session.y[:t]) for t in range(n)]
    np.testing.assert_allclose(p, expected, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 60),
    features=st.sampled_from(["store", "text", "fields", "words"]),
)
def test_one_row_form_equals_the_sessions_last_row(seed: int, n: int, features: str):
    session = _session(seed, n)
    params = se.EvidenceParams(**{**FITTED.__dict__, "features": features})
    whole = se.predict_session(session, params)
    one = se.predict_next(
        session.y[:-1],
        session.categories[:-1],
        session.history_features[:-1],
        session.categories[-1],
        session.proposal_features[-1],
        params,
        session.words[:-1],
        session.words[-1],
    )
    names = ("p_keep", "alpha", "beta", "centre", "kernel_trials", "max_fail_similarity")
    for name in names + ("max_keep_similarity",):
        assert getattr(one, name)[0] == pytest.approx(getattr(whole, name)[-1], rel=1e-9, abs=1e-12)


def test_a_proposal_like_earlier_failures_ranks_below_one_like_earlier_keeps():
    n = 12
    a, b = np.eye(128, dtype=np.float32)[:2]
    rows = np.array([a if i % 2 == 0 else b for i in range(n)])
    y = np.array([0.0 if i % 2 == 0 else 1.0 for i in range(n)])  # a failed, b was kept
    cats = ("x",) * n
    like_fail = se.predict_next(y, cats, rows, "x", a, FITTED).p_keep[0]
    like_keep = se.predict_next(y, cats, rows, "x", b, FITTED).p_keep[0]
    blind = se.predict_next(y, cats, rows, "x", a, FITTED.without(kernel=True)).p_keep[0]
    assert like_fail < blind < like_keep


def test_the_neighbour_rate_saturates_on_a_long_run_of_identical_rows():
    """However many identical earlier keeps there are, the neighbour rate reads NEIGHBOUR_K of
    them: its shift after 500 such rows equals its shift after NEIGHBOUR_K of them at the same
    session rate, and it pulls toward the neighbours' outcome."""
    a = np.eye(128, dtype=np.float32)[0]
    for n in (se.NEIGHBOUR_K, 500):
        nb = se.neighbours(
            a[None, :], np.tile(a, (n, 1)), np.ones(n), np.arange(n)[::-1][None, :], "store"
        )
        keeps, trials = se.neighbour_sums(nb)
        assert trials[0] == pytest.approx(se.NEIGHBOUR_K)
        assert keeps[0] == pytest.approx(se.NEIGHBOUR_K)
    m = np.array([0.2])
    shift = se.neighbour_shift(m, keeps, trials)[0]
    q = (se.NEIGHBOUR_K + 0.2) / (se.NEIGHBOUR_K + 1)
    assert shift == pytest.approx(np.log(q / (1 - q)) - np.log(0.2 / 0.8))
    assert se.neighbour_shift(m, np.zeros(1), np.zeros(1))[0] == 0.0  # nothing similar: no shift


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 50))
def test_the_neighbour_weight_moves_each_centre_toward_its_neighbours_rate(seed: int, n: int):
    """logit c_t moves by w (logit q_t - logit m_t): toward the nearest rows' rate q_t, and not
    at all where no earlier row is similar."""
    session = _session(seed, n)
    on = se.predict_session(session, FITTED)
    off = se.predict_session(session, replace(FITTED, neighbour_weight=0.0))
    keeps, trials = se.neighbour_sums(se.session_neighbours(session, FITTED.features))
    q = (keeps + on.session_rate) / (trials + 1.0)
    moved = np.log(on.centre / (1 - on.centre)) - np.log(off.centre / (1 - off.centre))
    expected = FITTED.neighbour_weight * (
        np.log(q / (1 - q)) - np.log(on.session_rate / (1 - on.session_rate))
    )
    np.testing.assert_allclose(moved, expected, atol=1e-9)
    assert np.all(moved[trials == 0] == pytest.approx(0.0, abs=1e-12))
    assert np.all(np.sign(moved[trials > 0]) == np.sign((q - on.session_rate)[trials > 0]))


@given(
    st.lists(st.frozensets(st.sampled_from("abcdefgh"), max_size=6), min_size=1, max_size=8),
    st.lists(st.frozensets(st.sampled_from("abcdefgh"), max_size=6), max_size=8),
)
def test_word_cosines_are_set_cosines(proposals, history):
    """|A & B| / sqrt(|A| |B|), 0 with an empty set; 1 exactly for the same non-empty set."""
    s = se.word_cosines(proposals, history)
    assert s.shape == (len(proposals), len(history))
    for i, a in enumerate(proposals):
        for j, b in enumerate(history):
            expected = len(a & b) / np.sqrt(len(a) * len(b)) if a and b else 0.0
            assert s[i, j] == pytest.approx(expected, abs=1e-12)
            if a and a == b:
                assert s[i, j] == 1.0


def test_the_kernel_reads_only_the_window_and_the_nearest_rows():
    session = _session(3, se.WINDOW + 50)
    nb = se.session_neighbours(session, "store")
    assert nb.similarity.shape == (session.y.shape[0], se.TOP_K)
    assert np.all(nb.age[nb.valid] < se.WINDOW)
    assert np.all(nb.age[nb.valid] >= 0)
    assert nb.valid.sum(axis=1)[0] == 0
    assert np.all(nb.valid.sum(axis=1)[se.TOP_K :] == se.TOP_K)


@given(st.lists(st.booleans(), max_size=40))
def test_rows_since_keep_counts_back_to_the_last_earlier_keep(kept: list[bool]):
    since = se.rows_since_keep(np.array(kept, dtype=float))
    for t in range(len(kept)):
        earlier = [i for i in range(t) if kept[i]]
        assert since[t] == (t - earlier[-1] - 1 if earlier else t)


@given(
    st.lists(st.sampled_from([0.0, 1.0]), max_size=300),
    st.one_of(st.just(0.0), st.floats(1e-7, 1.0)),
)
def test_discounted_sums_follow_the_recursion(outcomes, discount):
    """Blocked closed form = s_(t+1) = g s_t + y_t (and the trials' sums with y = 1), any g."""
    from nrr_stats.models.similarity_evidence import discounted_sums

    y = np.asarray(outcomes, dtype=float)
    keeps, trials = discounted_sums(y, discount)
    k = t = 0.0
    for i, outcome in enumerate(y):
        assert keeps[i] == pytest.approx(k, rel=1e-9, abs=1e-12)
        assert trials[i] == pytest.approx(t, rel=1e-9, abs=1e-12)
        k, t = discount * k + outcome, discount * t + 1.0


def _bank(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    other = _session(seed + 1, rows)
    return other.history_features, other.y


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 50), bank_rows=st.integers(0, 80))
def test_a_zero_cross_weight_is_the_session_model_exactly(seed: int, n: int, bank_rows: int):
    """lambda = 0: every field of every row equals the model without a bank, bit for bit."""
    session = _session(seed, n)
    bank, bank_y = _bank(seed, bank_rows)
    cross = se.bank_neighbours(session.proposal_features, bank, bank_y, FITTED.features)
    params = se.EvidenceParams(**{**FITTED.__dict__, "cross_temperature": 0.07})
    alone = se.predict_session(session, params)
    with_bank = se.predict_session(session, params, cross=cross)
    for name in ("p_keep", "alpha", "beta", "kernel_trials", "kernel_keeps"):
        np.testing.assert_array_equal(getattr(with_bank, name), getattr(alone, name))


def test_bank_neighbours_are_the_most_similar_rows_ties_to_the_lower_row():
    eye = np.eye(128, dtype=np.float32)
    bank = np.array([eye[1], eye[0], eye[0], *([eye[2]] * se.CROSS_TOP_K)])
    y = np.array([1.0, 0.0, 1.0] + [1.0] * se.CROSS_TOP_K)
    nb = se.bank_neighbours(eye[0], bank, y, "store")
    assert nb.similarity.shape == (1, se.CROSS_TOP_K)
    assert list(nb.similarity[0, :2]) == [1.0, 1.0]
    assert list(nb.y[0, :2]) == [0.0, 1.0]  # rows 1 then 2: the tie goes to the lower row
    assert nb.valid.all()
    small = se.bank_neighbours(eye[0], bank[:2], y[:2], "store")
    assert small.valid[0].sum() == 2 and not small.valid[0, 2:].any()


def test_other_sessions_keeps_of_the_same_change_raise_p_keep_their_failures_lower_it():
    session = _session(5, 20)
    proposal = session.proposal_features[-1]
    same = np.repeat(proposal[None, :], 8, axis=0)
    params = se.EvidenceParams(**{**FITTED.__dict__, "cross_weight": 0.5, "cross_temperature": 0.1})
    alone = se.predict_session(session, params).p_keep[-1]
    p = {}
    for outcome in (0.0, 1.0):
        cross = se.bank_neighbours(session.proposal_features, same, np.full(8, outcome), "store")
        p[outcome] = se.predict_session(session, params, cross=cross).p_keep[-1]
    assert p[0.0] < alone < p[1.0]


def test_a_proposal_without_words_is_compared_by_the_words_of_its_parsed_change():
    """A diff or KEY=value proposal has no description: its word set is its change spoken
    ("increase learning rate 0.02"); a described proposal keeps its own words; no parameter,
    no words."""
    from types import SimpleNamespace

    change = SimpleNamespace(direction="increase", parameter="LEARNING_RATE", to_value="0.02")
    assert se.evidence_words("", change) == frozenset({"increase", "learning", "rate", "0.02"})
    assert se.evidence_words("Switch to AdamW", change) == frozenset({"switch", "to", "adamw"})
    blank = SimpleNamespace(direction="other", parameter=None, to_value=None)
    assert se.evidence_words("", blank) == frozenset()
    prose = se.word_sets(["Increase learning rate to 0.015"])
    assert se.word_cosines([se.evidence_words("", change)], prose)[0, 0] > 0.5


def test_a_history_row_without_words_is_compared_by_its_parsed_change_on_both_paths():
    """A stored row whose description has no words (a change given as a diff alone) is compared
    by the words of its parsed change, on the check path (history_word_sets, the stored row's
    fields) as on the backtest path (evidence_rows, the walk item's parse)."""
    from types import SimpleNamespace

    from nrr_stats.backtest.evidence_rows import evidence_rows
    from nrr_stats.parser import ParsedChange

    change = ParsedChange("learning_rate", "increase", "LEARNING_RATE", "0.01", "0.02")
    record = {
        "description": "",
        "category": "learning_rate",
        "direction": "increase",
        "parameter": "LEARNING_RATE",
        "from_value": "0.01",
        "to_value": "0.02",
        "status": "discard",
    }
    item = SimpleNamespace(
        status="discard", description="", proposal=change, config_before={}, record=record, row=2
    )
    spoken = frozenset({"increase", "learning", "rate", "0.02"})
    assert se.history_word_sets([record]) == (spoken,)
    assert evidence_rows([item]).session.words == (spoken,)
    described = {**record, "description": "Raise LR"}
    assert se.history_word_sets([described]) == (frozenset({"raise", "lr"}),)


def test_check_and_backtest_compare_a_logs_rows_by_the_same_word_sets():
    """For every predicted row of the seed log, the word set the backtest compares it by is the
    one the check path computes from the row ingest stores."""
    from pathlib import Path

    from nrr_stats.backtest.evidence_rows import PREDICTED, evidence_rows
    from nrr_stats.backtest.walk import walk_items
    from nrr_stats.ingest import read_results_log

    seed = Path(__file__).parent / "fixtures" / "backtest" / "seed_results.tsv"
    items = walk_items(read_results_log(seed))
    records = [item.record for item in items if item.status in PREDICTED]
    assert se.history_word_sets(records) == evidence_rows(items).session.words


def test_a_similarity_given_to_session_neighbours_is_the_one_ranked_by():
    """session_neighbours with the view's own cosines passed in is the view's; neighbour_sums
    at its defaults is NEIGHBOUR_K rows, weights cosine^1 (the CV's alternatives plug in
    here)."""
    session = _session(3, 70)

    def cosines(t0, t1, h0):
        return se.word_cosines(session.words[t0:t1], session.words[h0:t1])

    plain = se.session_neighbours(session, "words")
    given = se.session_neighbours(session, "words", cosines)
    for name in se._NB_FIELDS:
        assert np.array_equal(getattr(plain, name), getattr(given, name))
    assert np.array_equal(se.neighbour_sums(plain), se.neighbour_sums(plain, se.NEIGHBOUR_K, 1.0))
    keeps, trials = se.neighbour_sums(plain, 8, 2.0)
    assert np.all(trials >= 0) and np.all(keeps <= trials + 1e-12)
