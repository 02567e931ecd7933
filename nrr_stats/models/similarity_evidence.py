"""Similarity-weighted evidence: the proposal's keep rate from the session's discounted rate and
the earlier experiments that resemble it (models/README.md, "Similarity-weighted evidence").

For row t of a session, with earlier rows i < t (outcome y_i) and a similarity s_ti between the
proposal and row i (the shipped view, "words": the cosine of the scrubbed descriptions' word
sets; the other views: cosines of the similarity store's feature rows, similarity/features.py):

    m_t   = (a0 + sum_i g^(t-1-i) y_i) / (n0 + sum_i g^(t-1-i))          the discounted session rate
    q_t   = (sum_j w_tj y_j + m_t) / (sum_j w_tj + 1)   over the NEIGHBOUR_K most similar rows j,
            w_tj = max(s_tj, 0)                                            the neighbour rate
    c_t   = sigmoid(logit m_t + cell[category_t] + plateau * (log1p(since_t) - PLATEAU_CENTRE)
                    + position * (log1p(t) - PHASE_CENTRE) + w_fail max_fail s + w_keep max_keep s
                    + neighbour_weight * (logit q_t - logit m_t))
    K_ti  = exp((s_ti - 1) / tau) * h^(t-1-i)                              kernel weight of row i
    rate_t ~ Beta(kappa c_t + sum_i K_ti y_i,  kappa (1 - c_t) + sum_i K_ti (1 - y_i))
    P(y_t = 1 | rows < t) = E[rate_t]                                      a Beta-Bernoulli term

`since_t` counts rows since the last keep. The neighbour rate reads at most NEIGHBOUR_K rows, so
its pull is bounded however long the session (a kernel's sums grow with every near-identical
row). The shipped fit has no kernel (kappa = inf, P(keep) = c_t); the kernel stays for the CV's
ablation. An identical earlier row (s = 1, same age) counts as one kernel trial; kappa is the
prior strength in trials; the kernel weight and kappa enter the predictive mean only through
their ratio. With no kernel, no cells, no covariates and no neighbour weight, P(keep) is the
discounted session rate exactly (g = 0.9, a0 = 0.5, n0 = 2 gives EVALUATION.md's baseline), so
the model contains it.

Other sessions' rows j (a bank that never holds the proposal's own session) can add
X_tj = lambda exp((s_tj - 1) / tau_x) over the proposal's CROSS_TOP_K nearest bank rows to the
kernel's sums (`cross_sums`); lambda = 0 is the session model bit for bit. The CV did not earn it
a place, so nothing shipped passes a bank (models/README.md, "Selection").

Pure numpy: every function takes arrays of one session and returns arrays; nothing here imports
PyMC (the fit is in benchmarks/fit_similarity_evidence.py, its result in models/).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nrr_stats.models.special import logit

PLATEAU_CENTRE = 2.2  # mean log1p(rows since the last keep) over the dev corpus's predicted rows
PHASE_CENTRE = 3.95  # mean log1p(position) over the same rows
WINDOW = 400  # the kernel reads the session's last WINDOW rows (bounded latency, see README)
TOP_K = 32  # ... and of those, the TOP_K most similar to the proposal (ties: the more recent)
NEIGHBOUR_K = 5  # the neighbour rate reads the proposal's NEIGHBOUR_K most similar earlier rows
CROSS_TOP_K = 32  # the proposal's most similar rows of other sessions (ties: the lower bank row)
TEXT_COLUMNS = slice(0, 84)  # words + char n-gram blocks of similarity/features.py
FIELD_COLUMNS = slice(84, None)  # category, direction, parameter, change, outcome blocks
CLIP = 1e-4
EVIDENCE_FILE = "similarity_evidence.json"  # package data nrr_stats/models_data (models/ links)


@dataclass(frozen=True)
class EvidenceParams:
    """Population hyperparameters of the similarity-weighted evidence model."""

    discount: float = 0.9  # g: the session rate's per-row discount
    prior_keeps: float = 0.5  # a0: the session rate's prior keeps
    prior_trials: float = 2.0  # n0: the session rate's prior trials
    strength: float = float("inf")  # kappa: prior strength in trials (inf = no kernel)
    temperature: float = 0.1  # tau: kernel temperature on the cosine scale
    kernel_discount: float = 1.0  # h: per-row age discount of the kernel weights
    plateau: float = 0.0  # logit shift per unit of log1p(rows since the last keep), centred
    # the similarity the neighbours are ranked by: feature blocks "store" (all), "text",
    # "fields", or "words", the cosine of the scrubbed descriptions' word sets (word_cosines)
    features: str = "store"
    intercept: float = 0.0  # logit shift of the centre
    position: float = 0.0  # ... per unit of log1p(t), centred at PHASE_CENTRE
    fail_similarity: float = 0.0  # ... per unit of the max cosine to an earlier failure
    keep_similarity: float = 0.0  # ... per unit of the max cosine to an earlier keep
    text_weights: tuple[float, ...] = ()  # ... linear in the proposal's feature row (empty: off)
    cells: dict[str, float] = field(default_factory=dict)  # logit offset per category
    cross_weight: float = 0.0  # lambda: weight of other sessions' rows (0: the session alone)
    cross_temperature: float = 0.1  # tau_x: the cross-session kernel's temperature
    neighbour_weight: float = 0.0  # logit shift toward the NEIGHBOUR_K nearest rows' rate (0: off)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strength"] = None if not np.isfinite(self.strength) else self.strength
        out["text_weights"] = list(self.text_weights)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvidenceParams:
        data = dict(data)
        if data.get("strength") is None:
            data["strength"] = float("inf")
        data["cells"] = dict(data.get("cells") or {})
        data["text_weights"] = tuple(float(v) for v in data.get("text_weights") or ())
        return cls(**data)

    def without(self, *, kernel: bool = False, cells: bool = False) -> EvidenceParams:
        """These parameters with the kernel and/or the cell offsets switched off."""
        return replace(
            self,
            strength=float("inf") if kernel else self.strength,
            cells={} if cells else self.cells,
        )


BASELINE = EvidenceParams()  # the discounted running rate of EVALUATION.md


@dataclass(frozen=True)
class SessionRows:
    """One session in row order: outcomes, categories, and feature rows as proposal and as history.

    `proposal_features[t]` is row t's feature row as it was proposed (scrubbed description and its
    parse); `history_features[i]` is row i's feature row once it ran (the same text, the stored
    parse). Both are L2-normalised float32 (similarity/features.py).
    """

    y: np.ndarray  # (n,) 0/1
    categories: tuple[str, ...]
    proposal_features: np.ndarray  # (n, d)
    history_features: np.ndarray  # (n, d)
    words: tuple[frozenset[str], ...] | None = None  # each row's word set (the "words" view)


@dataclass(frozen=True)
class EvidencePrediction:
    """P(keep) of each row of a session from the rows before it, and its Beta posterior."""

    p_keep: np.ndarray
    alpha: np.ndarray  # the interval's Beta: p x (n0 + sum g^a + sum K)
    beta: np.ndarray  # ... and (1 - p) x the same
    centre: np.ndarray  # c_t: the session's (cell-adjusted) rate before the kernel
    session_rate: np.ndarray  # m_t: the discounted session rate
    kernel_trials: np.ndarray  # sum_i K_ti
    kernel_keeps: np.ndarray  # sum_i K_ti y_i
    max_fail_similarity: np.ndarray  # max cosine to an earlier failure (-1 when none)
    max_keep_similarity: np.ndarray  # max cosine to an earlier keep (-1 when none)


def discounted_sums(y: np.ndarray, discount: float) -> tuple[np.ndarray, np.ndarray]:
    """(sum_i g^(t-1-i) y_i, sum_i g^(t-1-i)) over i < t, for every t (a first-order filter).

    Numpy in blocks of `_BLOCK` rows (closed form inside a block, the state carried between
    blocks), so `nrr check` needs no scipy.signal; the blocks start at fixed rows, so a row's
    sums never depend on rows after it."""
    y = np.asarray(y, dtype=float)
    both = np.vstack([y, np.ones_like(y)])
    filtered = np.empty_like(both)
    g = float(discount)
    if g < 1e-4:  # g^-_BLOCK would overflow: the plain recursion
        carry = np.zeros(2)
        for t in range(both.shape[1]):
            carry = g * carry + both[:, t]
            filtered[:, t] = carry
    else:
        powers = g ** np.arange(_BLOCK + 1)
        state = np.zeros(2)
        for start in range(0, both.shape[1], _BLOCK):
            block = both[:, start : start + _BLOCK]
            width = block.shape[1]
            # f_(b+j) = g^(j+1) f_(b-1) + g^j sum_(i<=j) g^-i y_(b+i)
            inside = np.cumsum(block / powers[:width], axis=1) * powers[:width]
            filtered[:, start : start + width] = inside + np.outer(state, powers[1 : width + 1])
            state = filtered[:, start + width - 1]
    shifted = np.zeros_like(filtered)
    shifted[:, 1:] = filtered[:, :-1]
    return shifted[0], shifted[1]


_BLOCK = 64  # g^-64 stays finite for a discount of 1e-4 or more


def rows_since_keep(y: np.ndarray) -> np.ndarray:
    """For each t, the rows since the last keep before t (t when none)."""
    y = np.asarray(y)
    index = np.arange(y.shape[0])
    last = np.maximum.accumulate(np.where(y == 1, index, -1)) if y.size else index
    before = np.concatenate([[-1], last[:-1]]) if y.size else index
    return np.where(before >= 0, index - before - 1, index).astype(float)


BLOCK = 32  # proposals per block of the kernel pass (bounds memory at BLOCK x (BLOCK + WINDOW))


def session_centre(
    y: np.ndarray,
    categories,
    params: EvidenceParams,
    max_fail: np.ndarray | None = None,
    max_keep: np.ndarray | None = None,
    proposal_features: np.ndarray | None = None,
    neighbour: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, ...]:
    """(c_t, m_t, discounted trials) for every t from the rows before it: the prior's centre,
    the discounted session rate shifted on the logit scale by the cell and the covariates."""
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    keeps, trials = discounted_sums(y, params.discount)
    m = (params.prior_keeps + keeps) / (params.prior_trials + trials)
    shift = np.full(n, params.intercept)
    if params.cells:
        shift += np.array([params.cells.get(c, 0.0) for c in categories], dtype=float)
    if params.plateau:
        shift += params.plateau * (np.log1p(rows_since_keep(y)) - PLATEAU_CENTRE)
    if params.position:
        shift += params.position * (np.log1p(np.arange(n)) - PHASE_CENTRE)
    if params.fail_similarity and max_fail is not None:
        shift += params.fail_similarity * np.maximum(max_fail, 0.0)
    if params.keep_similarity and max_keep is not None:
        shift += params.keep_similarity * np.maximum(max_keep, 0.0)
    if params.text_weights and proposal_features is not None:
        rows = np.asarray(proposal_features, dtype=np.float64).reshape(n, -1)
        shift += np.sum(rows * np.asarray(params.text_weights, dtype=np.float64), axis=1)
    if params.neighbour_weight and neighbour is not None:
        shift += params.neighbour_weight * neighbour_shift(m, *neighbour)
    centre = 1.0 / (1.0 + np.exp(-(logit(m) + shift))) if np.any(shift) else m
    return centre, m, trials


def neighbour_sums(
    nb: Neighbours, k: int = NEIGHBOUR_K, power: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(sum_j w_j y_j, sum_j w_j) over each proposal's k (NEIGHBOUR_K) most similar earlier rows,
    w_j = max(cosine, 0) ** power: the evidence of the neighbour rate (k and power other than
    the defaults: the CV's alternatives)."""
    k = min(k, nb.similarity.shape[1])
    weights = np.where(nb.valid[:, :k], np.maximum(nb.similarity[:, :k], 0.0), 0.0)
    if power != 1.0:
        weights = weights**power
    return (weights * nb.y[:, :k]).sum(axis=1), weights.sum(axis=1)


def neighbour_shift(m: np.ndarray, keeps: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """logit q_t - logit m_t, where q_t = (sum w y + m_t) / (sum w + 1) is the nearest rows' rate
    shrunk toward the session rate by one trial: 0 with no similar earlier row, and bounded
    whatever the session's length (the neighbour rate saturates where a kernel's sums grow)."""
    q = (keeps + m) / (trials + 1.0)
    return logit(q) - logit(m)


def feature_view(features: np.ndarray, which: str) -> np.ndarray:
    """The feature rows restricted to a block set ("store": all, "text", "fields"),
    re-normalised, as float64."""
    rows = np.asarray(features, dtype=np.float64)
    if which == "store":
        return rows
    rows = rows.copy()
    if which == "text":
        rows[:, FIELD_COLUMNS] = 0.0
    elif which == "fields":
        rows[:, TEXT_COLUMNS] = 0.0
    else:
        raise ValueError(f"unknown feature set {which!r}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def pairwise_cosines(proposal: np.ndarray, history: np.ndarray) -> np.ndarray:
    """(m, h) dot products, each summed over the same 128 terms in the same order whatever m
    and h are (a matrix product's rounding depends on the shapes, and a prediction must not
    change by one ulp when later rows are added or removed)."""
    return np.sum(proposal[:, None, :] * history[None, :, :], axis=-1)


def nearest_earlier(s: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column index (m, k), valid (m, k)) of each proposal's TOP_K most similar earlier rows
    within the window; ties go to the more recent row. Columns are ordered oldest first."""
    earlier = (ages >= 0) & (ages < WINDOW)
    masked = np.where(earlier, s, -np.inf)[:, ::-1]  # most recent first, for the stable sort
    k = min(TOP_K, masked.shape[1])
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    index = masked.shape[1] - 1 - order
    valid = np.take_along_axis(earlier, index, axis=1)
    return index, valid


@dataclass(frozen=True)
class Neighbours:
    """Each proposal's nearest earlier rows: cosine, age, outcome, and which slots are filled."""

    similarity: np.ndarray  # (m, k)
    age: np.ndarray  # (m, k)
    y: np.ndarray  # (m, k)
    valid: np.ndarray  # (m, k) bool
    max_fail: np.ndarray  # (m,) max cosine to an earlier failure in the window (-1: none)
    max_keep: np.ndarray  # (m,) max cosine to an earlier keep in the window (-1: none)


def word_sets(texts: Sequence[str]) -> tuple[frozenset[str], ...]:
    """Each scrubbed description's set of normalised words (similarity/features.py)."""
    from nrr_stats.similarity.features import normalise_text

    return tuple(frozenset(normalise_text(text)) for text in texts)


def evidence_words(scrubbed: str, change: Any) -> frozenset[str]:
    """The word set a proposal is compared by: its scrubbed description's words, or, when it has
    none (a diff or KEY=value lines alone) and its parse names a parameter, the words of the
    parsed change ("increase learning rate 0.02" for LEARNING_RATE 0.01 -> 0.02), so such a
    proposal still meets the session's rows that describe the same change in prose."""
    words = word_sets([scrubbed])[0]
    parameter = getattr(change, "parameter", None)
    if words or not parameter:
        return words
    spoken = f"{change.direction} {parameter.replace('_', ' ')} {change.to_value or ''}"
    return word_sets([spoken])[0]


def word_cosines(proposals: Sequence[frozenset], history: Sequence[frozenset]) -> np.ndarray:
    """(m, h) cosines of word sets, |A & B| / sqrt(|A| |B|) (0 when either is empty): exact on
    the words, where the feature rows fold many n-grams into 84 signed columns, so two unrelated
    descriptions score 0 here and about +-0.1 there."""
    out = np.zeros((len(proposals), len(history)))
    sizes = np.array([len(b) for b in history], dtype=float)
    for i, a in enumerate(proposals):
        if a:
            shared = np.fromiter((len(a & b) for b in history), dtype=float, count=len(history))
            out[i] = shared / np.sqrt(len(a) * np.maximum(sizes, 1.0))
    return out


def neighbours(
    proposal: np.ndarray,
    history: np.ndarray,
    y: np.ndarray,
    ages: np.ndarray,
    features: str,
    proposal_words: Sequence[frozenset] | None = None,
    history_words: Sequence[frozenset] | None = None,
) -> Neighbours:
    """The nearest earlier rows of proposals (m, d) among history rows (h, d); `ages` (m, h) is
    each history row's age in rows (t-1-i), negative where row i is not earlier. The "words"
    view ranks by word_cosines of the word sets instead of the feature rows."""
    if features == "words":
        s = word_cosines(proposal_words, history_words)
    else:
        s = pairwise_cosines(feature_view(proposal, features), feature_view(history, features))
    return neighbours_from_cosines(s, y, ages)


def neighbours_from_cosines(s: np.ndarray, y: np.ndarray, ages: np.ndarray) -> Neighbours:
    """The nearest earlier rows given the (m, h) similarities of proposals to history rows."""
    y = np.asarray(y, dtype=float)
    m = s.shape[0]
    if s.shape[1] == 0:
        empty = np.zeros((m, 0))
        none = np.full(m, -1.0)
        return Neighbours(empty, empty, empty, empty.astype(bool), none, none.copy())
    earlier = (ages >= 0) & (ages < WINDOW)
    max_fail = np.where(earlier & (y[None, :] == 0), s, -1.0).max(axis=1)
    max_keep = np.where(earlier & (y[None, :] == 1), s, -1.0).max(axis=1)
    index, valid = nearest_earlier(s, ages)
    return Neighbours(
        similarity=np.take_along_axis(s, index, axis=1),
        age=np.take_along_axis(ages, index, axis=1).astype(float),
        y=y[index],
        valid=valid,
        max_fail=max_fail,
        max_keep=max_keep,
    )


def session_neighbours(
    session: SessionRows,
    features: str,
    cosines: Callable[[int, int, int], np.ndarray] | None = None,
) -> Neighbours:
    """Neighbours of every row of a session among the rows before it, in blocks of BLOCK rows
    (padded to TOP_K slots). `cosines(t0, t1, h0)`, when given, is the similarity of proposals
    t0..t1-1 to rows h0..t1-1 in place of the view's (the CV's alternative similarities)."""
    n = session.y.shape[0]
    parts = []
    for t0 in range(0, n, BLOCK):
        t1 = min(n, t0 + BLOCK)
        h0 = max(0, t0 - WINDOW)
        ages = np.arange(t0, t1)[:, None] - np.arange(h0, t1)[None, :] - 1
        if cosines is not None:
            parts.append(
                _pad(neighbours_from_cosines(cosines(t0, t1, h0), session.y[h0:t1], ages), TOP_K)
            )
            continue
        words = session.words if features == "words" else None
        part = neighbours(
            session.proposal_features[t0:t1],
            session.history_features[h0:t1],
            session.y[h0:t1],
            ages,
            features,
            words[t0:t1] if words else None,
            words[h0:t1] if words else None,
        )
        parts.append(_pad(part, TOP_K))
    if not parts:
        return _pad(
            neighbours(np.zeros((0, 1)), np.zeros((0, 1)), [], np.zeros((0, 0)), "store"), TOP_K
        )
    return Neighbours(*(np.concatenate([getattr(p, f) for p in parts]) for f in _NB_FIELDS))


_NB_FIELDS = ("similarity", "age", "y", "valid", "max_fail", "max_keep")


def _pad(nb: Neighbours, k: int) -> Neighbours:
    m, have = nb.similarity.shape
    if have >= k:
        return nb
    extra = k - have

    def pad(a, value):
        return np.concatenate([a, np.full((m, extra), value, dtype=a.dtype)], axis=1)

    return Neighbours(
        pad(nb.similarity, -1.0),
        pad(nb.age, 0.0),
        pad(nb.y, 0.0),
        pad(nb.valid, False),
        nb.max_fail,
        nb.max_keep,
    )


def kernel_sums(nb: Neighbours, params: EvidenceParams) -> tuple[np.ndarray, np.ndarray]:
    """(sum_i K_ti y_i, sum_i K_ti) over each proposal's neighbours."""
    m = nb.similarity.shape[0]
    if not np.isfinite(params.strength) or nb.similarity.shape[1] == 0:
        return np.zeros(m), np.zeros(m)
    weights = np.exp((np.minimum(nb.similarity, 1.0) - 1.0) / params.temperature)
    if params.kernel_discount < 1.0:
        weights = weights * params.kernel_discount**nb.age
    weights = np.where(nb.valid, weights, 0.0)
    return (weights * nb.y).sum(axis=1), weights.sum(axis=1)


def bank_neighbours(
    proposal: np.ndarray, bank: np.ndarray, bank_y: np.ndarray, features: str
) -> Neighbours:
    """Each proposal's CROSS_TOP_K most similar rows among other sessions' rows (b, d): cosine,
    outcome, filled slots (padded to CROSS_TOP_K). Ties go to the lower bank row, so the choice
    depends on the bank's rows alone, never on the proposal's session."""
    proposal = np.asarray(proposal).reshape(-1, np.asarray(bank).shape[-1])
    bank_y = np.asarray(bank_y, dtype=float)
    m, b = proposal.shape[0], bank_y.shape[0]
    k = CROSS_TOP_K
    s = pairwise_cosines(feature_view(proposal, features), feature_view(bank, features))
    index = np.argsort(-s, axis=1, kind="stable")[:, :k]
    filled = min(k, b)
    similarity = np.full((m, k), -1.0)
    y = np.zeros((m, k))
    valid = np.zeros((m, k), dtype=bool)
    similarity[:, :filled] = np.take_along_axis(s, index, axis=1)
    y[:, :filled] = bank_y[index]
    valid[:, :filled] = True
    none = np.full(m, -1.0)
    return Neighbours(similarity, np.zeros((m, k)), y, valid, none, none.copy())


def cross_sums(cross: Neighbours | None, params: EvidenceParams) -> tuple[np.ndarray, np.ndarray]:
    """(sum_j X_tj y_j, sum_j X_tj) over the proposal's nearest rows of other sessions, with
    X_tj = lambda exp((s_tj - 1) / tau_x); zeros when lambda is 0 or there is no bank."""
    if cross is None or params.cross_weight == 0.0 or cross.similarity.shape[1] == 0:
        m = 0 if cross is None else cross.similarity.shape[0]
        return np.zeros(m), np.zeros(m)
    weights = params.cross_weight * np.exp(
        (np.minimum(cross.similarity, 1.0) - 1.0) / params.cross_temperature
    )
    weights = np.where(cross.valid, weights, 0.0)
    return (weights * cross.y).sum(axis=1), weights.sum(axis=1)


def _with_cross(k_keep, k_trial, cross, params):
    """The kernel sums plus the cross-session sums: unchanged (the very arrays) when lambda is
    0, there is no bank, or there is no kernel (kappa infinite: P(keep) is the centre)."""
    if cross is None or params.cross_weight == 0.0 or not np.isfinite(params.strength):
        return k_keep, k_trial
    x_keep, x_trial = cross_sums(cross, params)
    return k_keep + x_keep, k_trial + x_trial


def _posterior(centre, m, trials, k_keep, k_trial, nb, params) -> EvidencePrediction:
    """P(keep) and the Beta the interval is read from. The prior strength and the kernel's
    weight are identified only through their ratio (module docstring), so the Beta's
    concentration is not kappa + sum K: it is the evidence the mean rests on, the session
    rate's trials n0 + sum g^a plus the kernel's trials sum K, around the predictive mean."""
    if np.isfinite(params.strength):
        p = (params.strength * centre + k_keep) / (params.strength + k_trial)
    else:
        p = centre
    total = params.prior_trials + trials + k_trial
    alpha, beta = p * total, (1.0 - p) * total
    return EvidencePrediction(p, alpha, beta, centre, m, k_trial, k_keep, nb.max_fail, nb.max_keep)


def predict_session(
    session: SessionRows,
    params: EvidenceParams,
    nb: Neighbours | None = None,
    cross: Neighbours | None = None,
) -> EvidencePrediction:
    """Every row's prediction from the rows before it (`nb`: precomputed session_neighbours;
    `cross`: each row's bank_neighbours among other sessions' rows, none when not given)."""
    y = np.asarray(session.y, dtype=float)
    nb = session_neighbours(session, params.features) if nb is None else nb
    centre, m, trials = session_centre(
        y,
        session.categories,
        params,
        nb.max_fail,
        nb.max_keep,
        session.proposal_features,
        neighbour_sums(nb),
    )
    k_keep, k_trial = kernel_sums(nb, params)
    k_keep, k_trial = _with_cross(k_keep, k_trial, cross, params)
    return _posterior(centre, m, trials, k_keep, k_trial, nb, params)


def predict_next(
    y_history: np.ndarray,
    categories_history,
    history_features: np.ndarray,
    proposal_category: str,
    proposal_feature: np.ndarray,
    params: EvidenceParams,
    history_words: Sequence[frozenset] | None = None,
    proposal_words: frozenset | None = None,
) -> EvidencePrediction:
    """The prediction for one new proposal after this history (length-1 arrays): the same
    numbers as the last row of predict_session over history + proposal, in O(n + WINDOW d).
    `categories_history` is accepted for symmetry; only the proposal's category is read. The
    word sets are read only by the "words" view (the history's may be None before the window)."""
    y = np.append(np.asarray(y_history, dtype=float), 0.0)  # the proposal's own y is never read
    n = y.shape[0]
    h0 = max(0, n - 1 - WINDOW)
    d = np.asarray(proposal_feature).shape[-1]
    history = np.asarray(history_features, dtype=np.float32).reshape(-1, d)[h0:]
    ages = (n - 2 - np.arange(h0, n - 1))[None, :]
    words = params.features == "words"
    nb = neighbours(
        np.asarray(proposal_feature, dtype=np.float32).reshape(1, d),
        history,
        y[h0:-1],
        ages,
        params.features,
        (proposal_words,) if words else None,
        tuple(history_words[h0:]) if words else None,
    )
    cats = ("",) * (n - 1) + (proposal_category,)  # only the proposal's category is read
    pad = np.full(n - 1, -1.0)
    features = np.zeros((n, d))
    features[-1] = np.asarray(proposal_feature, dtype=np.float32).reshape(d)
    keeps, weights = neighbour_sums(nb)
    zeros = np.zeros(n - 1)
    centre, m, trials = session_centre(
        y,
        cats,
        params,
        np.append(pad, nb.max_fail),
        np.append(pad, nb.max_keep),
        features,
        (np.append(zeros, keeps), np.append(zeros, weights)),
    )
    k_keep, k_trial = kernel_sums(nb, params)
    return _posterior(centre[-1:], m[-1:], trials[-1:], k_keep, k_trial, nb, params)


def log_likelihood(sessions: list[SessionRows], params: EvidenceParams) -> float:
    """Prequential log likelihood: the sum over sessions and rows of log P(y_t | rows < t)."""
    total = 0.0
    for session in sessions:
        p = np.clip(predict_session(session, params).p_keep, CLIP, 1 - CLIP)
        y = session.y
        total += float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))
    return total


@dataclass(frozen=True)
class EvidenceAnswer:
    """One row's answer in the fields decide.py and the reports read."""

    p_keep: float
    interval: tuple[float, float]  # 90% interval of the proposal's rate (see _posterior)
    prob_below_base: float  # P(rate < the session's discounted rate)
    base_rate: float  # the session's discounted rate m_t
    session_rate: float  # the same, by the name decide.py reads
    n_weighted: float  # kernel-weighted earlier experiments (sum_i K_ti)
    history_rows: int  # earlier experiments in the session
    max_fail_similarity: float
    p_crash: float = 0.0  # the evidence model does not predict crashes
    rate: Any = field(default=None, compare=False, repr=False)  # the rate's BetaMixture


def answer_at(
    prediction: EvidencePrediction, i: int, history_rows: int, base_rate: float | None = None
) -> EvidenceAnswer:
    """Row i's answer; P(keep), the interval and P(rate < base) are read from the one rate
    object (models/rate.py). `base_rate` is the base the answer compares with (the cell
    engine's session base rate, as `nrr check` reports it); the discounted session rate m_t
    when not given."""
    from nrr_stats.models.rate import BetaMixture

    session_rate = float(prediction.session_rate[i])
    rate = BetaMixture.of(
        [max(float(prediction.alpha[i]), 1e-9)],
        [max(float(prediction.beta[i]), 1e-9)],
        base=session_rate if base_rate is None else float(base_rate),
    )
    return EvidenceAnswer(
        p_keep=rate.mean(),
        interval=rate.interval(0.9),
        prob_below_base=rate.prob_below_base(),
        base_rate=rate.base_rate(),
        session_rate=session_rate,
        n_weighted=float(prediction.kernel_trials[i]),
        history_rows=history_rows,
        max_fail_similarity=float(prediction.max_fail_similarity[i]),
        rate=rate,
    )


def answer_fields(prediction: EvidencePrediction, first_row: int = 0) -> list[EvidenceAnswer]:
    """Per-row answers of a prediction (`first_row`: the history length of its first row)."""
    return [answer_at(prediction, i, first_row + i) for i in range(prediction.p_keep.shape[0])]


@dataclass(frozen=True)
class ShippedEvidence:
    """The fitted model as shipped: the parameters fitted on all dev logs, and each CV fold's
    parameters, so a dev log is walked by the fold that never saw it."""

    params: EvidenceParams
    folds: dict[int, EvidenceParams] = field(default_factory=dict)
    held_out: dict[str, int] = field(default_factory=dict)  # training log file -> its fold

    def for_log(self, file_name: str) -> tuple[EvidenceParams, str]:
        """(parameters, label) for a log: its held-out fold's when the fit saw it."""
        fold = self.held_out.get(file_name)
        if fold is not None and fold in self.folds:
            return self.folds[fold], f"evidence fold {fold} of {len(self.folds)}"
        return self.params, "evidence shipped"


def _default_path() -> Path:
    from nrr_stats.models.population import repo_models_dir

    return repo_models_dir() / EVIDENCE_FILE


def load_params(path: str | Path | None = None) -> ShippedEvidence | None:
    """The shipped fitted model (models/similarity_evidence.json), or None."""
    path = Path(path) if path is not None else _default_path()
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return ShippedEvidence(
        params=EvidenceParams.from_dict(data["params"]),
        folds={int(k): EvidenceParams.from_dict(v) for k, v in data.get("folds", {}).items()},
        held_out={str(k): int(v) for k, v in data.get("held_out", {}).items()},
    )


def evidence_features(descriptions, fields) -> np.ndarray:
    """Feature rows for the kernel: the similarity store's rows (text n-grams + parsed fields)
    with a flat idf (no corpus statistics, so a row's features depend on that row alone) and
    no outcome block (a proposal has none yet)."""
    cleaned = [{k: v for k, v in dict(f).items() if k != "outcome"} for f in fields]
    return _SPACE().transform(list(descriptions), cleaned)


class _LazySpace:
    space = None

    def __call__(self):
        if _LazySpace.space is None:
            from nrr_stats.similarity.features import FeatureSpace

            _LazySpace.space = FeatureSpace()
        return _LazySpace.space


_SPACE = _LazySpace()


def history_fields(record: Mapping[str, Any]) -> dict[str, str]:
    """The parsed fields of a history row (a bank experiment or a walk record)."""
    return {
        "category": record.get("category") or "",
        "direction": record.get("direction") or "",
        "parameter": record.get("parameter") or "",
        "from": record.get("from_value") or "",
        "to": record.get("to_value") or "",
    }


def proposal_fields(change: Any, config: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parsed fields of a proposal (a ParsedChange); a `from` value the text does not give
    is taken from the kept configuration, as `nrr check` completes it (proposal.py)."""
    from_value = change.from_value or ""
    if not from_value and change.parameter and config:
        from_value = config.get(change.parameter, "")
    return {
        "category": change.category,
        "direction": change.direction,
        "parameter": change.parameter or "",
        "from": from_value,
        "to": change.to_value or "",
    }


PREDICTED = ("keep", "discard", "crash")
_FEATURE_CACHE: dict[tuple, np.ndarray] = {}
_FEATURE_CACHE_LIMIT = 1 << 16


_KEY_FIELDS = ("id", "description", "category", "direction", "parameter", "from_value", "to_value")


def history_feature_rows(history: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Feature rows of history rows (scrubbed description + stored parse), each cached by the
    fields it is computed from."""
    from nrr_stats.parser import strip_result_words

    out = np.zeros((len(history), _SPACE().dim), dtype=np.float32)
    missing = []
    for index, row in enumerate(history):
        key = tuple(row.get(name) for name in _KEY_FIELDS)
        cached = _FEATURE_CACHE.get(key)
        if cached is None:
            missing.append((index, key, history_fields(row)))
        else:
            out[index] = cached
    if missing:
        rows = evidence_features(
            [strip_result_words(key[1] or "") for _, key, _ in missing],
            [fields for _, _, fields in missing],
        )
        if len(_FEATURE_CACHE) + len(missing) > _FEATURE_CACHE_LIMIT:
            _FEATURE_CACHE.clear()
        for (index, key, _), row in zip(missing, rows, strict=True):
            out[index] = row
            _FEATURE_CACHE[key] = row
    return out


@dataclass(frozen=True)
class EvidenceHistory:
    """A session's rows as the evidence model reads them before any proposal: the counted rows'
    outcomes, and the feature rows and word sets of the last WINDOW of them (older rows are
    never read). A Checker keeps one per version of a session's rows, so the checks of an
    unchanged session prepare it once."""

    params: EvidenceParams
    y: np.ndarray  # 1.0 for a keep, per counted row (keep, discard, crash)
    features: np.ndarray  # (rows, dim) feature rows, zeros before the window; (rows, 1) unread
    words: tuple[frozenset[str] | None, ...] | None  # per row (None before the window)

    @classmethod
    def of(cls, params: EvidenceParams, history: Sequence[Mapping[str, Any]]) -> EvidenceHistory:
        """Prepare bank experiment rows in order; only keep/discard/crash rows count (a log's
        leading reference rows are stored as `other`)."""
        rows = [row for row in history if row.get("status") in PREDICTED]
        y = np.array([row["status"] == "keep" for row in rows], dtype=float)
        start = max(0, len(rows) - WINDOW)
        if not _reads_feature_rows(params):
            features = np.zeros((len(rows), 1), dtype=np.float32)
        else:
            features = np.zeros((len(rows), _SPACE().dim), dtype=np.float32)
            features[start:] = history_feature_rows(rows[start:])
        words = None
        if params.features == "words":
            words = (None,) * start + history_word_sets(rows[start:])
        return cls(params, y, features, words)

    def answer(
        self, proposal_text: str, change: Any, base_rate: float | None = None
    ) -> EvidenceAnswer:
        """The answer for one proposal after these rows: the same numbers as the backtest's
        row for the same history."""
        from nrr_stats.parser import strip_result_words

        params = self.params
        scrubbed = strip_result_words(proposal_text)
        if not _reads_feature_rows(params):
            proposal = np.zeros(1, np.float32)
        else:
            proposal = evidence_features([scrubbed], [proposal_fields(change)])[0]
        words = evidence_words(scrubbed, change) if self.words is not None else None
        prediction = predict_next(
            self.y, (), self.features, change.category, proposal, params, self.words, words
        )
        return answer_at(prediction, 0, len(self.y), base_rate)


def _reads_feature_rows(params: EvidenceParams) -> bool:
    """Whether the model reads feature rows at all (the words view without text weights does
    not: its neighbours come from word sets, and nothing is linear in the proposal's row)."""
    return params.features != "words" or bool(params.text_weights)


def evidence_answer(
    params: EvidenceParams,
    history: Sequence[Mapping[str, Any]],
    proposal_text: str,
    change: Any,
    base_rate: float | None = None,
) -> EvidenceAnswer:
    """The answer for one proposal after a session's rows (bank experiment rows in order): the
    one-shot form of EvidenceHistory.of(params, history).answer(...)."""
    return EvidenceHistory.of(params, history).answer(proposal_text, change, base_rate)


_WORDS_CACHE: dict[tuple, frozenset[str]] = {}
_WORD_FIELDS = ("description", "direction", "parameter", "to_value")


@dataclass(frozen=True)
class _StoredChange:
    """The parsed change of a stored history row, as evidence_words reads a ParsedChange."""

    direction: str
    parameter: str | None
    to_value: str | None


def history_word_sets(history: Sequence[Mapping[str, Any]]) -> tuple[frozenset[str], ...]:
    """The word sets history rows are compared by: evidence_words of each row's scrubbed
    description and its stored parse (a diff-only row by its parsed change's words, as the
    backtest compares it), cached by those fields."""
    from nrr_stats.parser import strip_result_words

    out = []
    for row in history:
        key = tuple(row.get(name) or "" for name in _WORD_FIELDS)
        words = _WORDS_CACHE.get(key)
        if words is None:
            if len(_WORDS_CACHE) >= _FEATURE_CACHE_LIMIT:
                _WORDS_CACHE.clear()
            change = _StoredChange(key[1], key[2] or None, key[3] or None)
            words = _WORDS_CACHE[key] = evidence_words(strip_result_words(key[0]), change)
        out.append(words)
    return tuple(out)


EVIDENCE_FIELDS = frozenset(
    {
        "p_keep",
        "interval",
        "prob_below_base",
        "base_rate",
        "session_rate",
        "history_rows",
        "max_fail_similarity",
        "rate",
        "mean",
    }
)


class AnswerWithEvidence:
    """A cell answer whose P(keep), interval and verdict inputs come from the evidence model;
    every other field (counts, level, source, crash probability) is the cell answer's."""

    def __init__(self, answer: Any, evidence: EvidenceAnswer):
        self.cell_answer, self.evidence = answer, evidence

    def __getattr__(self, name: str) -> Any:
        if name == "mean":
            return self.evidence.p_keep
        if name in EVIDENCE_FIELDS:
            return getattr(self.evidence, name)
        return getattr(self.cell_answer, name)


_SHIPPED: dict[tuple, ShippedEvidence | None] = {}


def shipped_evidence(path: str | Path | None = None) -> ShippedEvidence | None:
    """load_params, read once per file version (path, size, mtime)."""
    path = Path(path) if path is not None else _default_path()
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHIPPED:
        _SHIPPED.clear()
        _SHIPPED[key] = load_params(path)
    return _SHIPPED[key]
