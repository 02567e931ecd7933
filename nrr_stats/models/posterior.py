"""The fast answer path: keep-rate answers from stored posterior draws, with numpy only.

This module never imports PyMC, PyTensor, ArviZ or xarray: `nrr check` uses it. It reads the
compact `.npz` written beside the netCDF posterior at fit time. Evidence that arrived after the
fit updates each draw in closed form (the leaf rate given a draw is a Beta) and reweights draws
by the Beta-Binomial likelihood of the new counts (importance weights). Without a stored
posterior it answers from the conjugate form (empirical-Bayes Beta per cell).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from nrr_stats.errors import NrrInputError
from nrr_stats.models import conjugate
from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.evidence import Evidence, as_evidence
from nrr_stats.models.rate import CONFIDENCE, BetaMixture
from nrr_stats.models.special import betaln, digamma, expit

MODEL_VERSION = "hier-bb-1"
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
    """The engine's answer for one proposal: keep probability, its interval, and where it came from.

    `interval` and `prob_below_base` are read from `rate` when first asked for (each costs a
    few Beta CDF passes over the mixture's components): a check whose P(keep) and interval
    come from the similarity-evidence model never reads the cell answer's own."""

    p_keep: float  # posterior predictive probability that the experiment is kept
    mean: float  # posterior mean of the rate (equals p_keep for one Bernoulli trial)
    p_crash: float
    n: int  # raw experiments in the queried group (all sessions)
    k: int  # raw keeps among them
    n_weighted: float  # their evidence-weighted count
    level: str  # "parameter" | "cell" | "category" | "global": most specific level with data
    source: str  # "posterior" | "conjugate"
    stale: bool
    ess_share: float
    n_new: int  # experiments in the table that the fit did not see
    base_rate: float = float("nan")  # the session's base keep rate (posterior mean)
    rate: BetaMixture | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, rate: BetaMixture, **counts) -> KeepAnswer:
        """The answer whose p_keep, interval, P(rate < base) and base rate are read from `rate`
        (the one place they come from); `counts` are the other fields."""
        return cls(
            p_keep=rate.mean(), mean=rate.mean(), base_rate=rate.base_rate(), rate=rate, **counts
        )

    @property
    def interval(self) -> tuple[float, float]:
        """The 90% credible interval of the rate (rate.interval, computed once per rate)."""
        return self.rate.interval(CONFIDENCE)

    @property
    def prob_below_base(self) -> float:
        """P(rate < the session's base rate) (rate.prob_below_base, computed once per rate)."""
        return self.rate.prob_below_base()

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "rate"}
        out["interval"] = list(self.interval)
        out["prob_below_base"] = self.prob_below_base
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

    @cached_property
    def column_index(self) -> dict[str, dict]:
        """Column of each name in the effect matrices, per level (categories, cells, ...)."""
        levels = ("categories", "cells", "parameters", "sessions")
        return {level: {n: i for i, n in enumerate(getattr(self, level))} for level in levels}

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
    """The compact draws file of a `.posterior.nc` path: the published unit of a fit, which
    names its netCDF (`x.posterior.<fit id>.nc`, see `netcdf_path_for`)."""
    path = Path(path)
    if path.suffix != ".nc":
        return path
    return path.with_name(_FIT_ID.sub("", path.name).removesuffix(".nc") + ".npz")


# A fit's netCDF carries its fit id in its name: `bank.posterior.<16 hex>.nc`.
_FIT_ID = re.compile(r"\.[0-9a-f]{16}(?=\.nc$)")


def netcdf_path_for(path: Path, *, verify: bool = True) -> Path | None:
    """The ArviZ netCDF of the fit published at `path` (its .npz names it, with its sha256),
    or None when the npz names none (a fit stored by an older nrr-stats: `x.posterior.nc`).
    With `verify` the file must exist and match its hash, so an .npz is never paired with
    another fit's .nc."""
    from nrr_stats.files import load_npz

    source = npz_path_for(Path(path))
    meta = json.loads(str(load_npz(source, names=("meta",))["meta"]))
    name = meta.get("netcdf")
    if not name:
        return None
    netcdf = source.with_name(name)
    if verify and meta.get("netcdf_sha256") != file_sha256(netcdf):
        raise NrrInputError(
            "the fit's netCDF is missing or is not the one its draws were stored with",
            path=str(netcdf),
        )
    return netcdf


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file's bytes (None when it cannot be read)."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def failed_path_for(path: Path) -> Path:
    """Where a fit that failed its diagnostics is stored: beside the good one, never over it."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".nc") + ".failed.nc")


def load_posterior(path: str | Path) -> StoredPosterior:
    """Read stored draws (the `.npz` beside a `.posterior.nc`) without ArviZ or xarray."""
    source = npz_path_for(Path(path))
    if not source.is_file():
        raise NrrInputError("no stored posterior here; run `nrr fit`", path=str(source))
    from nrr_stats.files import DerivedFileError, load_npz

    try:
        arrays = load_npz(source)  # bounded, CRC-checked: a crafted or torn file is refused
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
        _check_shapes(draws, arrays, len(cells), len(parameters))
    except (OSError, ValueError, KeyError, TypeError, DerivedFileError) as error:
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


def _check_shapes(draws: dict, arrays: dict, n_cells: int, n_parameters: int) -> None:
    """Draws of one length, and effect matrices as wide as their level coding."""
    n_draws = int(np.asarray(draws["alpha"]).shape[0]) if np.ndim(draws["alpha"]) else -1
    widths = {
        "a_cat": len(arrays["coding__categories"]),
        "b_cell": n_cells,
        "e_param": n_parameters,
        "u_sess": len(arrays["coding__sessions"]),
        "crash_a_cat": len(arrays["coding__categories"]),
        "crash_u_sess": len(arrays["coding__sessions"]),
    }
    for name, values in draws.items():
        shape = np.shape(values)
        want = (n_draws, widths[name]) if name in widths else (n_draws,)
        if n_draws < 1 or shape != want or not np.issubdtype(np.asarray(values).dtype, np.number):
            raise ValueError(f"draws {name} of shape {shape}, not {want}")


def standard_normal(key: str, size: int) -> np.ndarray:
    """Standard normals fixed by a name, so a novel group's draws never depend on other data."""
    return np.random.default_rng(zlib.crc32(key.encode("utf-8"))).standard_normal(size)


class EffectColumns:
    """Per-draw effect columns for any names: fitted columns, or N(0, sigma) draws for novel names.

    `rows` picks (thins) the stored draws and `repeat` repeats each picked draw (quadrature
    nodes), column by column, so the stored matrix is never copied whole; `sigma` is already
    per output row.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        names: list | dict,
        sigma: np.ndarray,
        tag: str,
        fixed: dict | None = None,
        rows: np.ndarray | None = None,
        repeat: int = 1,
    ):
        self.matrix, self.sigma, self.tag = matrix, sigma, tag
        self.index = names if isinstance(names, dict) else {n: i for i, n in enumerate(names)}
        self.extra: dict = dict(fixed or {})
        self.rows, self.repeat = rows, repeat

    def column(self, name) -> np.ndarray:
        if name in self.extra:
            return self.extra[name]
        i = self.index.get(name)
        if i is not None:
            column = self.matrix[:, i] if self.rows is None else self.matrix[self.rows, i]
            column = np.repeat(column, self.repeat) if self.repeat > 1 else column
        else:
            key = f"{self.tag}:" + "\x1f".join(name if isinstance(name, tuple) else (name,))
            column = self.sigma * standard_normal(key, self.sigma.shape[0])
        self.extra[name] = column
        return column

    def columns(self, names: list) -> np.ndarray:
        if not names:
            return np.zeros((self.sigma.shape[0], 0))
        return np.stack([self.column(name) for name in names], axis=1)


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


def _seen_crash_pairs(seen: dict[str, np.ndarray]) -> dict[tuple[str, str], tuple[float, float]]:
    """Weighted (crashes, trials) the fit saw per crash leaf (session, category)."""
    index: dict[tuple[str, str], int] = {}
    pairs = zip(seen["session"].tolist(), seen["category"].tolist(), strict=True)
    codes = np.fromiter(
        (index.setdefault(pair, len(index)) for pair in pairs), np.int64, len(seen["session"])
    )
    crashes = np.bincount(codes, weights=seen["crashes_w"], minlength=len(index))
    trials = np.bincount(codes, weights=seen["trials_w"], minlength=len(index))
    return {pair: (float(crashes[i]), float(trials[i])) for pair, i in index.items()}


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


# ---------------------------------------------------------------------------------------------
# The stored posterior brought up to date with the evidence

# Leaves whose new evidence is below this (weighted trials) count as unchanged.
TOLERANCE = 1e-9
# Leaves per batch when many leaves' importance terms are computed at once: bounds memory.
TERM_BATCH = 2048


def _effects_for(
    posterior: StoredPosterior,
    draws: dict,
    fixed_sess=None,
    fixed_crash_sess=None,
    rows: np.ndarray | None = None,
    repeat: int = 1,
) -> dict[str, EffectColumns]:
    """Effect columns over `draws` (the scalar draws per output row); the effect matrices are
    the stored ones, picked by `rows` and repeated `repeat` times (see EffectColumns)."""
    stored, index = posterior.draws, posterior.column_index

    def effects(matrix: str, names: str, sigma: str, tag: str, fixed=None) -> EffectColumns:
        return EffectColumns(stored[matrix], index[names], draws[sigma], tag, fixed, rows, repeat)

    return {
        "cat": effects("a_cat", "categories", "sigma_cat", "cat"),
        "cell": effects("b_cell", "cells", "sigma_cell", "cell"),
        "param": effects("e_param", "parameters", "sigma_param", "param"),
        "sess": effects("u_sess", "sessions", "sigma_sess", "sess", fixed_sess),
        "crash_cat": effects("crash_a_cat", "categories", "crash_sigma_cat", "crash_cat"),
        "crash_sess": effects(
            "crash_u_sess", "sessions", "crash_sigma_sess", "crash_sess", fixed_crash_sess
        ),
    }


def _log_weights(
    eta: Callable[[list], np.ndarray], nu: np.ndarray, keys: list, seen: np.ndarray, new: np.ndarray
) -> np.ndarray:
    """Sum over leaves of log BetaBinomial(new successes | new trials) given what the fit saw,
    one value per draw: `eta(keys)` is each leaf's logit mean per draw, `nu` its concentration,
    seen and new are (L, 2) weighted (successes, trials). Batched so memory stays bounded."""
    total = np.zeros(nu.shape[0])
    nu = nu[:, None]
    for start in range(0, len(keys), TERM_BATCH):
        part = slice(start, start + TERM_BATCH)
        m = expit(eta(keys[part]))
        a0 = m * nu + seen[part, 0]
        b0 = (1.0 - m) * nu + seen[part, 1] - seen[part, 0]
        total += _beta_binomial_kernel(a0, b0, new[part, 0], new[part, 1]).sum(axis=1)
    return total


@dataclass
class _View:
    """Draws, effects and importance weights from which one session's answers are read."""

    draws: dict[str, np.ndarray]  # the stored draws, or (new session) draws x quadrature nodes
    effects: dict[str, EffectColumns]
    keep_weights: np.ndarray
    crash_weights: np.ndarray
    ess_share: float
    stale: bool


class UpdatedPosterior:
    """A stored posterior brought up to date with the evidence, read like a frozen distribution.

    Evidence the fit did not see reweights the draws (importance weights, kept as per-draw log
    sums); `refresh(leaves)` takes in leaves that changed since, at the cost of those leaves
    alone, so a loop that ingests a row and checks again never recomputes the whole bank. A
    session the fit never saw has its offset integrated out per draw when it is asked about.
    """

    def __init__(self, posterior: StoredPosterior, evidence: Evidence):
        self.posterior, self.evidence = posterior, evidence
        seen = posterior.seen
        seen_keys = (
            list(zip(*(seen[c].tolist() for c in SEEN_COLUMNS), strict=True))
            if len(seen["session"])
            else []
        )
        self._seen_index = {key: i for i, key in enumerate(seen_keys)}
        self._seen = np.column_stack(
            [seen[name] for name in SEEN_COUNTS] if seen_keys else [np.zeros(0)] * 4
        ).reshape(-1, 4)
        self._seen_pairs = _seen_crash_pairs(seen)
        self._seen_sessions = seen["session"]
        self._matched = np.zeros(len(seen_keys), dtype=bool)  # seen leaves the evidence has
        self._effects = _effects_for(posterior, posterior.draws)
        n_draws = posterior.n_draws
        self._keep_log_w, self._crash_log_w = np.zeros(n_draws), np.zeros(n_draws)
        self._fresh: dict[tuple, np.ndarray] = {}  # leaf -> new weighted (keeps, crashes, trials)
        self._fresh_in_pair: dict[tuple[str, str], set] = {}
        self._pair_new: dict[tuple[str, str], tuple[float, float]] = {}
        self._negative: set = set()
        self._new_trials: dict[tuple, float] = {}
        self.n_new = 0
        self._views: dict[str | None, _View] = {}
        self._answers: dict[tuple, KeepAnswer] = {}  # by query, until the next refresh
        self.version = -1
        self.refresh(evidence.keys("leaf"))

    # -- taking in evidence -------------------------------------------------------------------

    def refresh(self, leaves: Sequence[tuple[str, str, str, str]]) -> None:
        """Take in the evidence's current sums of these leaves (added or changed since).

        Vectorised over the leaves; only those with new evidence (or tracked before) are
        visited one by one, so the first refresh of a whole bank the fit saw costs little.
        """
        keys = list(dict.fromkeys(leaves))
        self._views.clear()
        self._answers.clear()
        self.version = self.evidence.version
        if not keys:
            return
        index = self.evidence.leaves.index
        rows = np.fromiter((index.get(key, -1) for key in keys), np.int64, len(keys))
        now = np.zeros((len(keys), 6))
        now[rows >= 0] = self.evidence.leaves.sums[rows[rows >= 0]]
        seen_rows = np.fromiter(
            (self._seen_index.get(key, -1) for key in keys), np.int64, len(keys)
        )
        known = seen_rows >= 0
        seen = np.zeros((len(keys), 4))
        seen[known] = self._seen[seen_rows[known]]
        self._matched[seen_rows[known & (now[:, 5] > 0)]] = True
        new = now[:, :3] - seen[:, :3]
        new_trials = np.maximum(now[:, 5] - seen[:, 3], 0.0)
        negative = np.any(new < -TOLERANCE, axis=1)
        new = np.maximum(new, 0.0)
        interesting = negative | (new_trials > 0) | (new[:, 2] > TOLERANCE)
        if self._fresh or self._new_trials or self._negative:
            tracked = self._fresh.keys() | self._new_trials.keys() | self._negative
            interesting |= np.fromiter((key in tracked for key in keys), bool, len(keys))
        visit = np.flatnonzero(interesting)
        keys = [keys[j] for j in visit]
        new, new_trials, negative = new[visit], new_trials[visit], negative[visit]

        old = [key for key in keys if key in self._fresh]
        if old:
            self._keep_log_w -= self._leaf_terms(old)
        pairs = {(key[0], key[1]) for key in keys}
        old_pairs = [pair for pair in pairs if pair in self._pair_new]
        if old_pairs:
            self._crash_log_w -= self._pair_terms(old_pairs)
        for j, key in enumerate(keys):
            self.n_new += int(new_trials[j]) - int(self._new_trials.pop(key, 0))
            if new_trials[j]:
                self._new_trials[key] = new_trials[j]
            (self._negative.add if negative[j] else self._negative.discard)(key)
            members = self._fresh_in_pair.setdefault((key[0], key[1]), set())
            if new[j, 2] > TOLERANCE:
                self._fresh[key] = new[j]
                members.add(key)
            else:
                self._fresh.pop(key, None)
                members.discard(key)
        fresh = [key for key in keys if key in self._fresh]
        if fresh:
            self._keep_log_w += self._leaf_terms(fresh)
        for pair in pairs:
            members = self._fresh_in_pair[pair]
            if members:
                self._pair_new[pair] = (
                    sum(float(self._fresh[m][1]) for m in members),
                    sum(float(self._fresh[m][2]) for m in members),
                )
            else:
                self._pair_new.pop(pair, None)
                del self._fresh_in_pair[pair]
        new_pairs = [pair for pair in pairs if pair in self._pair_new]
        if new_pairs:
            self._crash_log_w += self._pair_terms(new_pairs)

    def _leaf_terms(self, keys: list, draws: dict | None = None, effects=None) -> np.ndarray:
        seen = np.array([self._seen_of(key)[[0, 2]] for key in keys]).reshape(-1, 2)
        new = np.array([self._fresh[key][[0, 2]] for key in keys]).reshape(-1, 2)
        draws, effects = draws or self.posterior.draws, effects or self._effects
        return _log_weights(lambda k: _leaf_eta(draws, effects, k), draws["nu"], keys, seen, new)

    def _pair_terms(self, pairs: list, draws: dict | None = None, effects=None) -> np.ndarray:
        seen = np.array([self._seen_pairs.get(pair, (0.0, 0.0)) for pair in pairs]).reshape(-1, 2)
        new = np.array([self._pair_new[pair] for pair in pairs]).reshape(-1, 2)
        draws, effects = draws or self.posterior.draws, effects or self._effects
        return _log_weights(
            lambda k: _crash_eta(draws, effects, k), draws["crash_nu"], pairs, seen, new
        )

    def _seen_of(self, key: tuple) -> np.ndarray:
        i = self._seen_index.get(key)
        return self._seen[i] if i is not None else np.zeros(4)

    def _inconsistent(self) -> bool:
        """The fit saw evidence the bank no longer has (rows gone, weights lowered): importance
        weights cannot take evidence away, so answers are marked stale."""
        unmatched = set(self._seen_sessions[~self._matched].tolist())
        return bool(self._negative) or any(
            self.evidence.has("session", (session,)) for session in unmatched
        )

    # -- views --------------------------------------------------------------------------------

    def _view(self, session: str | None) -> _View:
        if self.version != self.evidence.version:
            raise RuntimeError("the evidence changed since the last refresh; call refresh()")
        if session is not None and session not in self.posterior.sessions:
            key: str | None = session
        else:
            key = None
        if key not in self._views:
            self._views[key] = self._new_session_view(key) if key else self._fitted_view()
        return self._views[key]

    def _fitted_view(self) -> _View:
        keep, crash = _normalise(self._keep_log_w), _normalise(self._crash_log_w)
        ess = min(_ess_share(keep), _ess_share(crash))
        return _View(
            draws=self.posterior.draws,
            effects=self._effects,
            keep_weights=keep,
            crash_weights=crash,
            ess_share=ess,
            stale=self._inconsistent() or ess < STALE_ESS_SHARE,
        )

    def _new_session_view(self, focus: str) -> _View:
        """Draws x quadrature nodes over the new session's offsets (keep and crash), weighted
        by its own rows and by every other leaf's new evidence."""
        posterior = self.posterior
        n_base = min(posterior.n_draws, NEW_SESSION_DRAWS)
        thin = np.linspace(0, posterior.n_draws - 1, n_base).astype(int)
        d = {
            name: values[thin]
            for name, values in posterior.draws.items()
            if name not in KEEP_EFFECTS + CRASH_EFFECTS
        }
        zero = {focus: np.zeros(n_base)}
        base_effects = _effects_for(posterior, d, zero, zero, rows=thin)
        mine = [key for key in self._fresh_in_pair_keys(focus)]
        new = np.array([self._fresh[key] for key in mine]).reshape(-1, 3)
        nodes, keep_nodes_w = _session_quadrature(
            _leaf_eta(d, base_effects, mine), d["nu"], new[:, 0], new[:, 2], d["sigma_sess"]
        )
        cats = sorted({key[1] for key in mine})
        c_new = np.array([new[[k[1] == c for k in mine]][:, 1:].sum(axis=0) for c in cats]).reshape(
            -1, 2
        )
        crash_nodes, crash_nodes_w = _session_quadrature(
            _crash_eta(d, base_effects, [(focus, c) for c in cats]),
            d["crash_nu"],
            c_new[:, 0],
            c_new[:, 1],
            d["crash_sigma_sess"],
        )
        n_nodes = nodes.shape[1]
        d = {name: np.repeat(values, n_nodes, axis=0) for name, values in d.items()}
        effects = _effects_for(
            posterior,
            d,
            {focus: nodes.ravel()},
            {focus: crash_nodes.ravel()},
            rows=thin,
            repeat=n_nodes,
        )
        keep_log_w, crash_log_w = keep_nodes_w.ravel(), crash_nodes_w.ravel()
        others = [key for key in self._fresh if key[0] != focus]
        if others:
            keep_log_w = keep_log_w + self._leaf_terms(others, d, effects)
            pairs = [pair for pair in self._pair_new if pair[0] != focus]
            crash_log_w = crash_log_w + self._pair_terms(pairs, d, effects)
        keep, crash = _normalise(keep_log_w), _normalise(crash_log_w)
        # ESS over the fit's draws (quadrature nodes of one draw count as one draw).
        ess = min(
            _ess_share(keep.reshape(n_base, -1).sum(axis=1)),
            _ess_share(crash.reshape(n_base, -1).sum(axis=1)),
        )
        return _View(d, effects, keep, crash, ess, self._inconsistent() or ess < STALE_ESS_SHARE)

    def _fresh_in_pair_keys(self, session: str) -> list[tuple]:
        return sorted(
            key
            for (s, _), members in self._fresh_in_pair.items()
            if s == session
            for key in members
        )

    # -- answers ------------------------------------------------------------------------------

    def answer(
        self, session: str, category: str, direction: str, parameter: str = ""
    ) -> KeepAnswer:
        """One proposal's keep probability, 90% interval, P(crash) and P(rate < base rate)
        (kept until the next refresh: a loop often asks about the same change again)."""
        query = (session, category, direction, parameter or "")
        view = self._view(session)  # also refuses evidence changed without a refresh
        if query not in self._answers:
            self._answers[query] = self._answer(view, *query)
        return self._answers[query]

    def _answer(
        self, view: _View, session: str, category: str, direction: str, parameter: str
    ) -> KeepAnswer:
        evidence = self.evidence
        d, w = view.draws, view.keep_weights
        key = (session, category, direction, parameter)
        leaf = evidence.sums("leaf", key)
        kw, nw = float(leaf[0]), float(leaf[2])
        m = expit(_leaf_eta(d, view.effects, [key])[:, 0])
        a = m * d["nu"] + kw
        b = (1.0 - m) * d["nu"] + nw - kw
        base = expit(d["alpha"] + view.effects["sess"].column(session))
        rate = BetaMixture.of(a, b, w, base)

        crash_sums = evidence.sums("session_category", (session, category))
        cw, cn = float(crash_sums[1]), float(crash_sums[2])
        mc = expit(_crash_eta(d, view.effects, [(session, category)])[:, 0])
        ac = mc * d["crash_nu"] + cw
        bc = (1.0 - mc) * d["crash_nu"] + cn - cw

        n, k, n_weighted = _query_counts(evidence, category, direction, parameter)
        return KeepAnswer.of(
            rate,
            p_crash=float(np.sum(view.crash_weights * ac / (ac + bc))),
            n=n,
            k=k,
            n_weighted=n_weighted,
            level=_level(evidence, self.posterior, category, direction, parameter),
            source="posterior",
            stale=view.stale,
            ess_share=view.ess_share,
            n_new=self.n_new,
        )


def update_posterior(
    posterior: StoredPosterior, evidence: ExperimentTable | Evidence
) -> UpdatedPosterior:
    """The stored posterior brought up to date with a table's (or the bank's) evidence."""
    return UpdatedPosterior(posterior, as_evidence(evidence))


def _level(evidence: Evidence, posterior: StoredPosterior | None, c, d, p) -> str:
    """The most specific level with data (in the evidence or the fit) for a query."""
    if p and (
        evidence.has("parameter", (c, d, p)) or (posterior and (c, d, p) in posterior.parameters)
    ):
        return "parameter"
    if evidence.has("cell", (c, d)) or (posterior and (c, d) in posterior.cells):
        return "cell"
    if evidence.has("category", (c,)) or (posterior and c in posterior.categories):
        return "category"
    return "global"


def _query_counts(evidence: Evidence, c: str, d: str, p: str) -> tuple[int, int, float]:
    """(experiments, keeps, weighted experiments) of the queried group across sessions."""
    sums = evidence.sums("parameter", (c, d, p)) if p else evidence.sums("cell", (c, d))
    return int(round(sums[5])), int(round(sums[3])), float(sums[2])


def predict_keep(
    posterior: StoredPosterior | None,
    table: ExperimentTable | Evidence,
    session: str,
    category: str,
    direction: str,
    parameter: str = "",
) -> KeepAnswer:
    """Answer one proposal (session, category, direction, parameter) from the stored draws updated
    with the table's newer evidence, or from the conjugate form when there is no posterior."""
    evidence = as_evidence(table)
    if posterior is None:
        return _conjugate_answer(evidence, session, category, direction, parameter or "")
    return update_posterior(posterior, evidence).answer(session, category, direction, parameter)


# ---------------------------------------------------------------------------------------------
# Conjugate path (no stored posterior)


def _session_base_rate(evidence: Evidence, session: str | None) -> float:
    """The session's keep rate (empirical-Bayes posterior mean over sessions); pooled without one."""
    a, b = session_base_beta(evidence, session)
    return float(a / (a + b))


def session_base_beta(evidence: Evidence, session: str | None) -> tuple[float, float]:
    """The Beta(a, b) of the session's keep rate (empirical Bayes over sessions); the pooled
    prior when the session has no evidence."""
    counts = evidence.counts("session")
    alpha, beta = evidence.derived(
        ("beta prior", "session"),
        lambda: conjugate.fit_beta_prior(counts.keeps_w, counts.trials_w),
    )
    sums = evidence.sums("session", (session,)) if session is not None else None
    if sums is not None and evidence.has("session", (session,)):
        return float(alpha + sums[0]), float(beta + sums[2] - sums[0])
    return float(alpha), float(beta)


def _conjugate_group(
    evidence: Evidence, level: str, key: tuple[str, ...], numerator: str = "keeps_w"
) -> tuple[float, float, bool]:
    """Beta posterior (a, b) of one group under a prior fitted on the other groups of its level;
    the prior of all groups when the group has no data (third value False)."""
    counts = evidence.counts(level)
    successes = getattr(counts, numerator)
    index = counts.key_tuples().index(key) if evidence.has(level, key) else None
    if index is None:
        alpha, beta = evidence.derived(
            ("beta prior", level, numerator),
            lambda: conjugate.fit_beta_prior(successes, counts.trials_w),
        )
        return alpha, beta, False
    # The prior from the other groups only (kept per group until the evidence changes).
    alpha, beta = evidence.derived(
        ("beta prior", level, numerator, key),
        lambda: conjugate.fit_beta_prior(
            np.delete(successes, index), np.delete(counts.trials_w, index)
        ),
    )
    a, b = conjugate.beta_posterior(successes[index], counts.trials_w[index], alpha, beta)
    return float(a), float(b), True


def _conjugate_answer(
    evidence: Evidence, session: str, category: str, direction: str, parameter: str
) -> KeepAnswer:
    """Conjugate form: one empirical-Bayes level over (category, direction) cells; a cell's prior
    comes from the other cells, and a cell without data gets the prior of all ("global")."""
    a, b, has_data = _conjugate_group(evidence, "cell", (category, direction))
    ac, bc, _ = _conjugate_group(evidence, "category", (category,), "crashes_w")
    n, k, n_weighted = _query_counts(evidence, category, direction, "")
    rate = BetaMixture.of([a], [b], base=_session_base_rate(evidence, session))
    return KeepAnswer.of(
        rate,
        p_crash=float(ac / (ac + bc)),
        n=n,
        k=k,
        n_weighted=n_weighted,
        level="cell" if has_data else "global",
        source="conjugate",
        stale=False,
        ess_share=1.0,
        n_new=len(evidence),
    )
