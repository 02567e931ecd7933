"""FeatureSpace: unit rows, stable hashing across processes, documented block weights, idf."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nrr_stats.similarity import FEATURE_DIM, FeatureSpace, similar_experiments, top_k
from nrr_stats.similarity.features import BLOCKS, normalise_text, parse_number, signed_log_change
from nrr_stats.taxonomy import CATEGORIES

DESCRIPTIONS = [
    "increase LR to 0.02",
    "switch optimizer from SGD to AdamW",
    "add residual connections",
    "reduce batch size from 128 to 64",
    "use mixed precision training (bf16)",
    "add dropout 0.3",
    "depth 8 -> 12",
    "warmdown ratio 0.5",
]
FULL_FIELDS = {
    "category": "learning_rate",
    "direction": "increase",
    "parameter": "LEARNING_RATE",
    "from": "0.01",
    "to": "0.02",
    "outcome": "regression",
}


def test_blocks_fill_the_dimension_and_weights_sum_to_one():
    assert sum(width for _, width, _ in BLOCKS) == FEATURE_DIM == FeatureSpace().dim == 128
    assert math.isclose(sum(weight for _, _, weight in BLOCKS), 1.0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=12))
def test_rows_are_float32_unit_or_zero(texts):
    space = FeatureSpace.fit_idf(texts)
    rows = space.transform(texts, [{}] * len(texts))
    assert rows.dtype == np.float32 and rows.shape == (len(texts), FEATURE_DIM)
    norms = np.linalg.norm(rows, axis=1)
    for text, norm in zip(texts, norms, strict=True):
        expected = 1.0 if normalise_text(text) else 0.0
        assert norm == pytest.approx(expected, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcdefgh xyz0123.", min_size=1, max_size=40), min_size=2, max_size=15
    )
)
def test_a_description_is_its_own_nearest_neighbour(texts):
    keys = [tuple(normalise_text(t)) for t in texts]
    assume(all(keys))
    unique = list(dict.fromkeys(keys))
    texts = [" ".join(key) for key in unique]
    space = FeatureSpace.fit_idf(texts)
    matrix = space.transform(texts, [{}] * len(texts))
    indices, scores = top_k(matrix, matrix, 1)
    np.testing.assert_array_equal(indices[:, 0], np.arange(len(texts)))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_transform_is_identical_in_other_processes():
    """Stable hashing: another interpreter with another hash seed gives the same bytes."""
    script = (
        "import json, sys; from nrr_stats.similarity import FeatureSpace\n"
        "d = json.loads(sys.argv[1]); f = json.loads(sys.argv[2])\n"
        "s = FeatureSpace.fit_idf(d)\n"
        "sys.stdout.write(s.transform(d, [f] * len(d)).tobytes().hex())\n"
    )
    here = FeatureSpace.fit_idf(DESCRIPTIONS).transform(
        DESCRIPTIONS, [FULL_FIELDS] * len(DESCRIPTIONS)
    )
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script, json.dumps(DESCRIPTIONS), json.dumps(FULL_FIELDS)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        assert bytes.fromhex(out) == here.tobytes()


@pytest.mark.parametrize(
    ("field", "other_value", "weight"),
    [
        ("category", "optimizer", 0.15),
        ("direction", "decrease", 0.10),
        ("outcome", "marginal", 0.05),
    ],
)
def test_a_disagreeing_one_hot_block_costs_exactly_its_weight(field, other_value, weight):
    """With every block present, the cosine is the weighted mean of the block cosines."""
    space = FeatureSpace.fit_idf(DESCRIPTIONS)
    changed = dict(FULL_FIELDS, **{field: other_value})
    a, b = space.transform(["increase LR to 0.02"] * 2, [FULL_FIELDS, changed])
    assert float(a @ b) == pytest.approx(1.0 - weight, abs=1e-6)


def test_fields_pull_the_same_cell_closer():
    space = FeatureSpace.fit_idf(DESCRIPTIONS)
    lr = dict(FULL_FIELDS, outcome="")
    rows = space.transform(
        ["raise LR to 0.03", "raise dropout to 0.03"],
        [dict(lr, to="0.03"), dict(lr, category="regularization", parameter="DROPOUT", to="0.03")],
    )
    found = similar_experiments(space, rows, "increase LR to 0.02", lr, 2)
    assert [index for index, _ in found] == [0, 1]
    assert all(-1.0 <= score <= 1.0 for _, score in found)


def test_rare_words_weigh_more_than_common_ones():
    corpus = ["tune lr a", "tune lr b", "tune lr c", "tune depth"]
    space = FeatureSpace.fit_idf(corpus)
    rows = space.transform(["tune lr", "tune depth", "lr depth"], [{}] * 3)
    # "lr depth" shares the rare word "depth" with row 1 and the common "lr" with row 0.
    assert rows[2] @ rows[1] > rows[2] @ rows[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.02", 0.02),
        ("1e-4", 1e-4),
        ("524K", 524e3),
        ("2M", 2e6),
        ("-3", -3.0),
        ("relu", None),
        ("", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@given(st.floats(1e-6, 1e6), st.floats(1e-6, 1e6))
def test_signed_log_change_is_antisymmetric_and_signed(a, b):
    forward = signed_log_change(repr(a), repr(b))
    backward = signed_log_change(repr(b), repr(a))
    assert forward == pytest.approx(-backward, abs=1e-9)
    assert np.sign(forward) == np.sign(b - a) or math.isclose(a, b)


def test_signed_log_change_cases():
    assert signed_log_change("", "2x") == pytest.approx(math.log(2))
    assert signed_log_change("-4", "-2") == pytest.approx(math.log(2))  # -4 -> -2 goes up
    assert signed_log_change("0", "5") == 1.0
    assert signed_log_change("relu", "gelu") is None


def test_lone_surrogates_and_user_categories_are_features_too():
    space = FeatureSpace.fit_idf(["bad \udcff bytes"])
    rows = space.transform(
        ["bad \udcff bytes", "bad \udcff bytes"],
        [{"category": "trading_signal"}, {"category": "trading_signal"}],
    )
    assert float(rows[0] @ rows[1]) == pytest.approx(1.0, abs=1e-6)
    start = sum(width for name, width, _ in BLOCKS[: [b[0] for b in BLOCKS].index("category")])
    user_columns = rows[0][start + len(CATEGORIES) : start + len(CATEGORIES) + 2]
    assert np.count_nonzero(user_columns) == 1  # a rules file's category gets a hashed column


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="descriptions"):
        FeatureSpace().transform(["a", "b"], [{}])
