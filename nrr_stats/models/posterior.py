"""The fast answer path: keep-rate answers from stored posterior draws, with numpy only.

This module never imports PyMC, PyTensor, ArviZ or xarray: `nrr check` uses it. It reads the
compact `.npz` written beside the netCDF posterior at fit time. Evidence that arrived after the
fit updates each draw in closed form (the leaf rate given a draw is a Beta) and reweights draws
by the Beta-Binomial likelihood of the new counts (importance weights). Without a stored
posterior it answers from the conjugate form (empirical-Bayes Beta per cell).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import betainc, betaincinv, betaln, digamma, expit

from nrr_stats.errors import NrrInputError
from nrr_stats.models import conjugate
from nrr_stats.models.data import ExperimentTable, GroupCounts, cell_counts

MODEL_VERSION = "hier-bb-1"
CONFIDENCE = 0.9
# Below this effective-sample-size share of the importance weights the fit is called stale.
STALE_ESS_SHARE = 0.3

KEEP_DRAWS = ("alpha", "sigma_cat", "sigma_cell", "sigma_param", "sigma_sess", "nu")
KEEP_EFFECTS = ("a_cat", "b_cell", "e_param", "u_sess")
CRASH_DRAWS = ("crash_alpha", "crash_sigma_cat", "crash_sigma_sess", "crash_nu")
CRASH_EFFECTS = ("crash_a_cat", "crash_u_sess")
SEEN_COLUMNS = ("session", "category", "direction", "parameter")
SEEN_COUNTS = ("keeps_w", "crashes_w", "trials_w", "trials")


@dataclass(frozen=True)
class KeepAnswer:
    """The engine's answer for one proposal: keep probability, its interval, and where it came from."""

    p_keep: float  # posterior predictive probability that the experiment is kept
    mean: float  # posterior mean of the rate (equals p_keep for one Bernoulli trial)
    interval: tuple[float, float]  # 90% credible interval of the rate
    p_crash: float
    prob_below_base: float  # P(rate < the session's base rate)
    n: int  # raw experiments in the queried group (all sessions)
    k: int  # raw keeps among them
    n_weighted: float  # their evidence-weighted count
    level: str  # "parameter" | "cell" | "category" | "global": most specific level with data
    source: str  # "posterior" | "conjugate"
    stale: bool
    ess_share: float
    n_new: int  # experiments in the table that the fit did not see
    base_rate: float = float("nan")  # the session's base keep rate (posterior mean)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["interval"] = list(self.interval)
        return out


@dataclass(frozen=True)
class CellSummary:
    """One (category, direction) cell for `nrr patterns`."""

    category: str
    direction: str
    n: int
    k: int
    n_weighted: float
    mean: float
    interval: tuple[float, float]
    prob_below_base: float
    level: str
    source: str

    def to_dict(self) -> dict:
        out = asdict(self)
        out["interval"] = list(self.interval)
        return out


@dataclass(frozen=True)
class StoredPosterior:
    """Posterior draws of the hierarchy (flattened over chains), its level coding and metadata.

    `seen` holds the leaf counts the fit was given, so later evidence can be told apart.
    """

    draws: dict[str, np.ndarray]
    categories: tuple[str, ...]
    cells: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str, str], ...]
    sessions: tuple[str, ...]
    seen: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_draws(self) -> int:
        return int(self.draws["alpha"].shape[0])

    @property
    def passed(self) -> bool:
        return bool(self.meta.get("passed_diagnostics", False))

    def to_npz_arrays(self) -> dict[str, np.ndarray]:
        """Flat, pickle-free arrays for np.savez."""
        arrays: dict[str, np.ndarray] = {f"draw__{k}": np.asarray(v) for k, v in self.draws.items()}
        arrays["coding__categories"] = _str_array(self.categories)
        arrays["coding__cell_category"] = _str_array([c for c, _ in self.cells])
        arrays["coding__cell_direction"] = _str_array([d for _, d in self.cells])
        for i, name in enumerate(("category", "direction", "parameter")):
            arrays[f"coding__param_{name}"] = _str_array([p[i] for p in self.parameters])
        arrays["coding__sessions"] = _str_array(self.sessions)
        for name, values in self.seen.items():
            arrays[f"seen__{name}"] = (
                _str_array(list(values)) if name in SEEN_COLUMNS else np.asarray(values)
            )
        arrays["meta"] = np.array(json.dumps(self.meta))
        return arrays


def _str_array(values) -> np.ndarray:
    values = [str(v) for v in values]
    return np.array(values, dtype=f"<U{max([len(v) for v in values] + [1])}")


def npz_path_for(path: Path) -> Path:
    """The compact draws file written beside a `.posterior.nc` file."""
    path = Path(path)
    return path.with_suffix(".npz") if path.suffix == ".nc" else path


def failed_path_for(path: Path) -> Path:
    """Where a fit that failed its diagnostics is stored: beside the good one, never over it."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".nc") + ".failed.nc")


def load_posterior(path: str | Path) -> StoredPosterior:
    """Read stored draws (the `.npz` beside a `.posterior.nc`) without ArviZ or xarray."""
    source = npz_path_for(Path(path))
    if not source.is_file():
        raise NrrInputError("no stored posterior here; run `nrr fit`", path=str(source))
    try:
        with np.load(source, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(str(arrays["meta"]))
        draws = {k.removeprefix("draw__"): v for k, v in arrays.items() if k.startswith("draw__")}
        cells = tuple(
            zip(
                arrays["coding__cell_category"].tolist(),
                arrays["coding__cell_direction"].tolist(),
                strict=True,
            )
        )
        parameters = tuple(
            zip(
                arrays["coding__param_category"].tolist(),
                arrays["coding__param_direction"].tolist(),
                arrays["coding__param_parameter"].tolist(),
                strict=True,
            )
        )
        seen = {k.removeprefix("seen__"): v for k, v in arrays.items() if k.startswith("seen__")}
        missing = [n for n in KEEP_DRAWS + KEEP_EFFECTS if n not in draws]
        if missing:
            raise KeyError(", ".join(missing))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise NrrInputError(
            f"stored posterior is unreadable ({error}); run `nrr fit` again", path=str(source)
        ) from None
    return StoredPosterior(
        draws=draws,
        categories=tuple(arrays["coding__categories"].tolist()),
        cells=cells,
        parameters=parameters,
        sessions=tuple(arrays["coding__sessions"].tolist()),
        seen=seen,
        meta=meta,
        path=source,
    )


# ---------------------------------------------------------------------------------------------
# Posterior path


def _standard_normal(key: str, size: int) -> np.ndarray:
    """Standard normals fixed by a name, so a novel group's draws never depend on other data."""
    return np.random.default_rng(zlib.crc32(key.encode("utf-8"))).standard_normal(size)


class _Effects:
    """Per-draw effect columns for any names: fitted columns, or N(0, sigma) draws for novel names."""

    def __init__(
        self,
        matrix: np.ndarray,
        names: list,
        sigma: np.ndarray,
        tag: str,
        fixed: dict | None = None,
    ):
        self.matrix, self.sigma, self.tag = matrix, sigma, tag
        self.index = {name: i for i, name in enumerate(names)}
        self.extra: dict = dict(fixed or {})

    def column(self, name) -> np.ndarray:
        i = self.index.get(name)
        if i is not None:
            return self.matrix[:, i]
        if name not in self.extra:
            key = f"{self.tag}:" + "\x1f".join(name if isinstance(name, tuple) else (name,))
            self.extra[name] = self.sigma * _standard_normal(key, self.sigma.shape[0])
        return self.extra[name]

    def columns(self, names: list) -> np.ndarray:
        if not names:
            return np.zeros((self.sigma.shape[0], 0))
        return np.stack([self.column(name) for name in names], axis=1)


@dataclass
class _Updated:
    """The stored posterior brought up to date with a table: weights and per-leaf counts."""

    draws: dict[str, np.ndarray]  # the stored draws, or (new session) draws x quadrature nodes
    keep_weights: np.ndarray
    crash_weights: np.ndarray
    ess_share: float
    stale: bool
    n_new: int
    leaf_counts: GroupCounts
    leaf_index: dict[tuple[str, str, str, str], int]
    cat: _Effects
    cell: _Effects
    param: _Effects
    sess: _Effects
    crash_cat: _Effects
    crash_sess: _Effects

    def effects(self) -> dict[str, _Effects]:
        return {
            "cat": self.cat,
            "cell": self.cell,
            "param": self.param,
            "sess": self.sess,
            "crash_cat": self.crash_cat,
            "crash_sess": self.crash_sess,
        }


def _ess_share(weights: np.ndarray) -> float:
    return float(1.0 / np.sum(weights**2) / weights.shape[0])


def _normalise(log_weights: np.ndarray) -> np.ndarray:
    weights = np.exp(log_weights - np.max(log_weights))
    return weights / weights.sum()


def _beta_binomial_kernel(a, b, keeps, trials) -> np.ndarray:
    """log BetaBinomial up to the binomial coefficient, which cancels in importance weights."""
    return betaln(a + keeps, b + trials - keeps) - betaln(a, b)


# A session the fit never saw has its offset integrated out per draw by adaptive Gauss-Hermite
# quadrature (nodes around each draw's mode), so its own rows do not exhaust the draws.
NEW_SESSION_DRAWS = 500
NEW_SESSION_NODES = 7


def _session_quadrature(
    eta0: np.ndarray, nu: np.ndarray, keeps: np.ndarray, trials: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (D, Q) of a new session's offset u and log weights approximating, per draw,
    the integral over u of N(u; 0, sigma) * prod_leaf BetaBinomial(k | n, m(eta0 + u) nu).

    eta0 (D, L) is each of the session's leaves' logit mean without u; nu and sigma are (D,).
    """
    nu = nu[:, None]
    u = np.zeros(eta0.shape[0])
    info = 1.0 / sigma**2
    for _ in range(30):
        m = expit(eta0 + u[:, None])
        a, b = m * nu, (1.0 - m) * nu
        slope = m * (1.0 - m)
        score = (
            nu * (digamma(a + keeps) - digamma(a) - digamma(b + trials - keeps) + digamma(b))
        ) * slope
        # Expected information of a Beta-Binomial in the logit of its mean (Fisher scoring).
        info = (trials * slope * (1.0 + nu) / (nu + trials)).sum(axis=1) + 1.0 / sigma**2
        step = np.clip((score.sum(axis=1) - u / sigma**2) / info, -1.0, 1.0)
        u = u + step
        if np.max(np.abs(step)) < 1e-4:
            break
    scale = 1.0 / np.sqrt(info)
    x, w = np.polynomial.hermite_e.hermegauss(NEW_SESSION_NODES)
    nodes = u[:, None] + scale[:, None] * x[None, :]
    m = expit(eta0[:, None, :] + nodes[:, :, None])
    loglik = _beta_binomial_kernel(m * nu[:, None], (1.0 - m) * nu[:, None], keeps, trials).sum(
        axis=2
    )
    log_prior = -0.5 * (nodes / sigma[:, None]) ** 2 - np.log(sigma)[:, None]
    log_weights = loglik + log_prior + np.log(scale)[:, None] + np.log(w) + 0.5 * x**2
    return nodes, log_weights


def _update(
    posterior: StoredPosterior, table: ExperimentTable, focus: str | None = None
) -> _Updated:
    """Bring the stored draws up to date with the table: importance weights for evidence the fit
    did not see, and (when `focus` names a session the fit never saw) its offset integrated out."""
    d = posterior.draws
    now = cell_counts(table, "leaf")
    seen = posterior.seen
    seen_index = {
        key: i
        for i, key in enumerate(
            zip(*(seen[c].tolist() for c in SEEN_COLUMNS), strict=True)
            if len(seen["session"])
            else []
        )
    }
    now_keys = now.key_tuples()
    n_leaves = len(now_keys)
    seen_kw, seen_cw, seen_nw, seen_n = (np.zeros(n_leaves) for _ in range(4))
    matched = np.zeros(len(seen_index), dtype=bool)
    for j, key in enumerate(now_keys):
        i = seen_index.get(key)
        if i is not None:
            matched[i] = True
            seen_kw[j], seen_cw[j] = seen["keeps_w"][i], seen["crashes_w"][i]
            seen_nw[j], seen_n[j] = seen["trials_w"][i], seen["trials"][i]
    new_kw, new_cw, new_nw = now.keeps_w - seen_kw, now.crashes_w - seen_cw, now.trials_w - seen_nw
    tolerance = 1e-9
    # The table may be a view (some sessions only); within the sessions it holds, the fit saw
    # evidence the table no longer has (rows removed, weights lowered): the importance update
    # cannot take evidence away, so the answer is marked stale.
    table_sessions = set(table.session_names[i] for i in np.unique(table.session))
    unmatched = [i for i in np.flatnonzero(~matched) if seen["session"][i] in table_sessions]
    inconsistent = (
        bool(unmatched)
        or bool(np.any(new_nw < -tolerance))
        or bool(np.any(new_kw < -tolerance))
        or bool(np.any(new_cw < -tolerance))
    )
    new_kw, new_cw, new_nw = (np.maximum(x, 0.0) for x in (new_kw, new_cw, new_nw))
    n_new = int(np.maximum(now.trials - seen_n, 0).sum())

    focus_is_new = focus is not None and focus not in posterior.sessions
    n_base = posterior.n_draws
    if focus_is_new:
        n_base = min(posterior.n_draws, NEW_SESSION_DRAWS)
        thin = np.linspace(0, posterior.n_draws - 1, n_base).astype(int)
        d = {name: values[thin] for name, values in d.items()}

    def effects_for(draws: dict, fixed_sess=None, fixed_crash_sess=None) -> dict[str, _Effects]:
        return {
            "cat": _Effects(draws["a_cat"], list(posterior.categories), draws["sigma_cat"], "cat"),
            "cell": _Effects(draws["b_cell"], list(posterior.cells), draws["sigma_cell"], "cell"),
            "param": _Effects(
                draws["e_param"], list(posterior.parameters), draws["sigma_param"], "param"
            ),
            "sess": _Effects(
                draws["u_sess"], list(posterior.sessions), draws["sigma_sess"], "sess", fixed_sess
            ),
            "crash_cat": _Effects(
                draws["crash_a_cat"],
                list(posterior.categories),
                draws["crash_sigma_cat"],
                "crash_cat",
            ),
            "crash_sess": _Effects(
                draws["crash_u_sess"],
                list(posterior.sessions),
                draws["crash_sigma_sess"],
                "crash_sess",
                fixed_crash_sess,
            ),
        }

    fresh = np.flatnonzero(new_nw > tolerance)
    keep_log_w = np.zeros(n_base)
    crash_log_w = np.zeros(n_base)
    if focus_is_new:
        # Integrate the new session's offsets (keep and crash) over quadrature nodes per draw;
        # the draws become draws x nodes, weighted by the session's own rows.
        zero = {focus: np.zeros(n_base)}
        base_effects = effects_for(d, zero, zero)
        mine = [j for j in fresh if now_keys[j][0] == focus]
        keys = [now_keys[j] for j in mine]
        eta0 = _leaf_eta(d, base_effects, keys)
        nodes, keep_nodes_w = _session_quadrature(
            eta0, d["nu"], new_kw[mine], new_nw[mine], d["sigma_sess"]
        )
        cats = sorted({now_keys[j][1] for j in mine})
        c_k = np.array([sum(new_cw[j] for j in mine if now_keys[j][1] == c) for c in cats])
        c_n = np.array([sum(new_nw[j] for j in mine if now_keys[j][1] == c) for c in cats])
        c_eta0 = _crash_eta(d, base_effects, [(focus, c) for c in cats])
        crash_nodes, crash_nodes_w = _session_quadrature(
            c_eta0, d["crash_nu"], c_k, c_n, d["crash_sigma_sess"]
        )
        n_nodes = nodes.shape[1]
        d = {name: np.repeat(values, n_nodes, axis=0) for name, values in d.items()}
        keep_log_w, crash_log_w = keep_nodes_w.ravel(), crash_nodes_w.ravel()
        fresh = np.array([j for j in fresh if now_keys[j][0] != focus], dtype=np.int64)
        effects = effects_for(d, {focus: nodes.ravel()}, {focus: crash_nodes.ravel()})
    else:
        effects = effects_for(d)

    if fresh.size:
        keys = [now_keys[j] for j in fresh]
        eta = _leaf_eta(d, effects, keys)
        m, nu = expit(eta), d["nu"][:, None]
        a0 = m * nu + seen_kw[fresh]
        b0 = (1.0 - m) * nu + seen_nw[fresh] - seen_kw[fresh]
        keep_log_w = keep_log_w + _beta_binomial_kernel(a0, b0, new_kw[fresh], new_nw[fresh]).sum(
            axis=1
        )
        # Crash leaves are (session, category): sum the fresh counts per pair.
        pairs: dict[tuple[str, str], list[int]] = {}
        for j in fresh:
            pairs.setdefault((now_keys[j][0], now_keys[j][1]), []).append(j)
        crash_keys = list(pairs)
        seen_pairs = _seen_crash_pairs(seen)
        c_seen = np.array([seen_pairs.get(p, (0.0, 0.0)) for p in crash_keys]).reshape(-1, 2)
        c_new = np.array(
            [(new_cw[pairs[p]].sum(), new_nw[pairs[p]].sum()) for p in crash_keys]
        ).reshape(-1, 2)
        mc = expit(_crash_eta(d, effects, crash_keys))
        nu_c = d["crash_nu"][:, None]
        a0 = mc * nu_c + c_seen[:, 0]
        b0 = (1.0 - mc) * nu_c + c_seen[:, 1] - c_seen[:, 0]
        crash_log_w = crash_log_w + _beta_binomial_kernel(a0, b0, c_new[:, 0], c_new[:, 1]).sum(
            axis=1
        )
    keep_weights, crash_weights = _normalise(keep_log_w), _normalise(crash_log_w)
    # ESS over the fit's draws (quadrature nodes of one draw count as one draw).
    ess = min(
        _ess_share(keep_weights.reshape(n_base, -1).sum(axis=1)),
        _ess_share(crash_weights.reshape(n_base, -1).sum(axis=1)),
    )
    return _Updated(
        draws=d,
        keep_weights=keep_weights,
        crash_weights=crash_weights,
        ess_share=ess,
        stale=inconsistent or ess < STALE_ESS_SHARE,
        n_new=n_new,
        leaf_counts=now,
        leaf_index={key: j for j, key in enumerate(now_keys)},
        **effects,
    )


def _seen_crash_pairs(seen: dict[str, np.ndarray]) -> dict[tuple[str, str], tuple[float, float]]:
    pairs: dict[tuple[str, str], list[float]] = {}
    for s, c, cw, nw in zip(
        seen["session"].tolist(),
        seen["category"].tolist(),
        seen["crashes_w"],
        seen["trials_w"],
        strict=True,
    ):
        total = pairs.setdefault((s, c), [0.0, 0.0])
        total[0] += float(cw)
        total[1] += float(nw)
    return {key: (v[0], v[1]) for key, v in pairs.items()}


def _leaf_eta(draws: dict, effects: dict, keys: list[tuple[str, str, str, str]]) -> np.ndarray:
    """Logit mean rate per draw (rows) and leaf (columns); "" parameter adds no parameter effect."""
    named = [(c, d, p) for _, c, d, p in keys]
    param = effects["param"].columns([k for k in named if k[2]])
    param_full = np.zeros((draws["alpha"].shape[0], len(keys)))
    param_full[:, [i for i, k in enumerate(named) if k[2]]] = param
    return (
        draws["alpha"][:, None]
        + effects["cat"].columns([c for _, c, _, _ in keys])
        + effects["cell"].columns([(c, d) for _, c, d, _ in keys])
        + param_full
        + effects["sess"].columns([s for s, _, _, _ in keys])
    )


def _crash_eta(draws: dict, effects: dict, keys: list[tuple[str, str]]) -> np.ndarray:
    return (
        draws["crash_alpha"][:, None]
        + effects["crash_cat"].columns([c for _, c in keys])
        + effects["crash_sess"].columns([s for s, _ in keys])
    )


def _mixture_quantiles(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray, quantiles: tuple[float, ...]
) -> list[float]:
    """Quantiles of the mixture sum_i w_i Beta(a_i, b_i), by safeguarded Newton steps."""
    log_norm = betaln(a, b)
    mean = float(np.sum(weights * a / (a + b)))
    second = float(np.sum(weights * a * (a + 1.0) / ((a + b) * (a + b + 1.0))))
    var = max(second - mean**2, 1e-12)
    concentration = max(mean * (1.0 - mean) / var - 1.0, 1e-3)
    results = []
    for q in quantiles:
        x = float(betaincinv(mean * concentration, (1.0 - mean) * concentration, q))
        low, high = 0.0, 1.0
        for _ in range(40):
            x = min(max(x, 1e-12), 1.0 - 1e-12)
            gap = float(np.sum(weights * betainc(a, b, x))) - q
            if abs(gap) < 1e-7:
                break
            if gap > 0:
                high = x
            else:
                low = x
            density = float(
                np.sum(
                    weights * np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm)
                )
            )
            step = x - gap / density if density > 0 else -1.0
            x = step if low < step < high else 0.5 * (low + high)
        results.append(x)
    return results


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles) -> list[float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) - 0.5 * weights[order]
    return [float(np.interp(q, cumulative, values[order])) for q in quantiles]


def _level(table_counts: dict[str, set], posterior: StoredPosterior | None, c, d, p) -> str:
    known_params = set(posterior.parameters) if posterior else set()
    known_cells = set(posterior.cells) if posterior else set()
    known_cats = set(posterior.categories) if posterior else set()
    if p and ((c, d, p) in table_counts["parameter"] or (c, d, p) in known_params):
        return "parameter"
    if (c, d) in table_counts["cell"] or (c, d) in known_cells:
        return "cell"
    if c in table_counts["category"] or c in known_cats:
        return "category"
    return "global"


def _observed_groups(table: ExperimentTable) -> dict[str, set]:
    return {
        "parameter": set(
            zip(
                table.category.tolist(),
                table.direction.tolist(),
                table.parameter.tolist(),
                strict=True,
            )
        ),
        "cell": set(zip(table.category.tolist(), table.direction.tolist(), strict=True)),
        "category": set(table.category.tolist()),
    }


def _query_counts(table: ExperimentTable, c: str, d: str, p: str) -> tuple[int, int, float]:
    mask = (table.category == c) & (table.direction == d)
    if p:
        mask &= table.parameter == p
    return int(mask.sum()), int(table.kept[mask].sum()), float(table.weight[mask].sum())


def predict_keep(
    posterior: StoredPosterior | None,
    table: ExperimentTable,
    session: str,
    category: str,
    direction: str,
    parameter: str = "",
) -> KeepAnswer:
    """Answer one proposal (session, category, direction, parameter) from the stored draws updated
    with the table's newer evidence, or from the conjugate form when there is no posterior."""
    parameter = parameter or ""
    if posterior is None:
        return _conjugate_answer(table, session, category, direction, parameter)
    updated = _update(posterior, table, focus=session)
    d = updated.draws
    w = updated.keep_weights
    key = (session, category, direction, parameter)
    counts = updated.leaf_counts
    index = updated.leaf_index.get(key)
    kw = float(counts.keeps_w[index]) if index is not None else 0.0
    nw = float(counts.trials_w[index]) if index is not None else 0.0
    m = expit(_leaf_eta(d, updated.effects(), [key])[:, 0])
    a = m * d["nu"] + kw
    b = (1.0 - m) * d["nu"] + nw - kw
    mean = float(np.sum(w * a / (a + b)))
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = _mixture_quantiles(a, b, w, (tail, 1.0 - tail))
    base = expit(d["alpha"] + updated.sess.column(session))
    below = float(np.sum(w * betainc(a, b, base)))
    base_rate = float(np.sum(w * base))

    crash_key = [(session, category)]
    mask = (table.session_column() == session) & (table.category == category)
    cw, cn = float((table.weight * table.crashed)[mask].sum()), float(table.weight[mask].sum())
    mc = expit(_crash_eta(d, updated.effects(), crash_key)[:, 0])
    ac = mc * d["crash_nu"] + cw
    bc = (1.0 - mc) * d["crash_nu"] + cn - cw
    p_crash = float(np.sum(updated.crash_weights * ac / (ac + bc)))

    n, k, n_weighted = _query_counts(table, category, direction, parameter)
    return KeepAnswer(
        p_keep=mean,
        mean=mean,
        interval=(low, high),
        p_crash=p_crash,
        prob_below_base=below,
        n=n,
        k=k,
        n_weighted=n_weighted,
        level=_level(_observed_groups(table), posterior, category, direction, parameter),
        source="posterior",
        stale=updated.stale,
        ess_share=updated.ess_share,
        n_new=updated.n_new,
        base_rate=base_rate,
    )


def cell_table(
    posterior: StoredPosterior | None, table: ExperimentTable, session: str | None = None
) -> list[CellSummary]:
    """Every (category, direction) cell with data: counts, mean rate, 90% interval and
    P(rate < base rate), sorted with the cells the engine is surest are bad first.

    With a posterior the cell rate is expit(alpha + a_cat + b_cell + u_session) per draw (the
    mean rate of the cell's changes; u = 0 without a session) and the base rate expit(alpha + u).
    """
    if posterior is None:
        return _conjugate_cells(table, session)
    updated = _update(posterior, table, focus=session)
    d = updated.draws
    w = updated.keep_weights
    cells = sorted(set(posterior.cells) | _observed_groups(table)["cell"])
    counts = cell_counts(table, "cell")
    count_index = {key: i for i, key in enumerate(counts.key_tuples())}
    u = updated.sess.column(session) if session is not None else np.zeros(d["alpha"].shape[0])
    rows = []
    for c, dr in cells:
        effect = updated.cat.column(c) + updated.cell.column((c, dr))
        rate = expit(d["alpha"] + effect + u)
        tail = (1.0 - CONFIDENCE) / 2.0
        low, high = _weighted_quantiles(rate, w, (tail, 1.0 - tail))
        i = count_index.get((c, dr))
        rows.append(
            CellSummary(
                category=c,
                direction=dr,
                n=int(counts.trials[i]) if i is not None else 0,
                k=int(counts.keeps[i]) if i is not None else 0,
                n_weighted=float(counts.trials_w[i]) if i is not None else 0.0,
                mean=float(np.sum(w * rate)),
                interval=(low, high),
                prob_below_base=float(np.sum(w * (effect < 0.0))),
                level="cell" if i is not None or (c, dr) in posterior.cells else "category",
                source="posterior",
            )
        )
    return _sorted_cells(rows)


def _sorted_cells(rows: list[CellSummary]) -> list[CellSummary]:
    return sorted(rows, key=lambda r: (-r.prob_below_base, r.mean, r.category, r.direction))


# ---------------------------------------------------------------------------------------------
# Conjugate path (no stored posterior)


def _session_base_rate(table: ExperimentTable, session: str | None) -> float:
    """The session's keep rate (empirical-Bayes posterior mean over sessions); pooled without one."""
    counts = cell_counts(table, "session")
    alpha, beta = conjugate.fit_beta_prior(counts.keeps_w, counts.trials_w)
    names = counts.keys.get("session", np.array([], dtype=object)).tolist()
    if session is not None and session in names:
        i = names.index(session)
        return float((alpha + counts.keeps_w[i]) / (alpha + beta + counts.trials_w[i]))
    return float(alpha / (alpha + beta))


def _conjugate_level_posteriors(
    table: ExperimentTable, level: str, numerator: str = "keeps_w"
) -> tuple[GroupCounts, tuple[float, float], np.ndarray, np.ndarray]:
    """Per group at `level`: leave-one-out empirical-Bayes posteriors, and the all-group prior."""
    counts = cell_counts(table, level)
    successes = getattr(counts, numerator)
    if len(table) == 0:
        prior = conjugate.fit_beta_prior([], [])
        return counts, prior, np.zeros(0), np.zeros(0)
    prior = conjugate.fit_beta_prior(successes, counts.trials_w)
    a, b = conjugate.leave_one_out_posteriors(successes, counts.trials_w)
    return counts, prior, a, b


def _conjugate_group(
    table: ExperimentTable, level: str, key: tuple[str, ...], numerator: str = "keeps_w"
) -> tuple[float, float, bool]:
    """Beta posterior (a, b) of one group under a prior fitted on the other groups of its level;
    the prior of all groups when the group has no data (third value False)."""
    counts = cell_counts(table, level)
    successes = getattr(counts, numerator)
    index = {k: i for i, k in enumerate(counts.key_tuples())}.get(key) if len(table) else None
    if index is None:
        alpha, beta = conjugate.fit_beta_prior(successes, counts.trials_w)
        return alpha, beta, False
    alpha, beta = conjugate.fit_beta_prior(
        np.delete(successes, index), np.delete(counts.trials_w, index)
    )
    a, b = conjugate.beta_posterior(successes[index], counts.trials_w[index], alpha, beta)
    return float(a), float(b), True


def _conjugate_answer(
    table: ExperimentTable, session: str, category: str, direction: str, parameter: str
) -> KeepAnswer:
    """Conjugate form: one empirical-Bayes level over (category, direction) cells; a cell's prior
    comes from the other cells, and a cell without data gets the prior of all ("global")."""
    a, b, has_data = _conjugate_group(table, "cell", (category, direction))
    ac, bc, _ = _conjugate_group(table, "category", (category,), "crashes_w")
    low, high = conjugate.credible_interval(a, b, CONFIDENCE)
    mean = float(conjugate.posterior_mean(a, b))
    n, k, n_weighted = _query_counts(table, category, direction, "")
    base_rate = _session_base_rate(table, session)
    return KeepAnswer(
        p_keep=mean,
        mean=mean,
        interval=(float(low), float(high)),
        p_crash=float(ac / (ac + bc)),
        prob_below_base=float(conjugate.prob_below(a, b, base_rate)),
        n=n,
        k=k,
        n_weighted=n_weighted,
        level="cell" if has_data else "global",
        source="conjugate",
        stale=False,
        ess_share=1.0,
        n_new=len(table),
        base_rate=base_rate,
    )


def _conjugate_cells(table: ExperimentTable, session: str | None) -> list[CellSummary]:
    cells, _, a, b = _conjugate_level_posteriors(table, "cell")
    base = _session_base_rate(table, session)
    low, high = conjugate.credible_interval(a, b, CONFIDENCE)
    below = conjugate.prob_below(a, b, base)
    rows = [
        CellSummary(
            category=c,
            direction=d,
            n=int(cells.trials[i]),
            k=int(cells.keeps[i]),
            n_weighted=float(cells.trials_w[i]),
            mean=float(a[i] / (a[i] + b[i])),
            interval=(float(low[i]), float(high[i])),
            prob_below_base=float(below[i]),
            level="cell",
            source="conjugate",
        )
        for i, (c, d) in enumerate(cells.key_tuples())
    ]
    return _sorted_cells(rows)
