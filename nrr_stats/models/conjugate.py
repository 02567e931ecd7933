"""The conjugate form: empirical-Bayes Beta priors and Beta posteriors over count arrays.

Pure functions (arrays in, arrays out). Counts may be fractional: weighted counts enter the
Beta-Binomial through gammaln, which is the power-likelihood form of evidence weights.
Only numpy and scipy.special are imported at module level (the fast path uses this module).
"""

from __future__ import annotations

import numpy as np

from nrr_stats.models.special import betainc, betaincinv, betaln, digamma

# Weak regulariser of the empirical-Bayes fit (a MAP, not a pure ML estimate): a normal prior
# on logit(mean) and on log(concentration). It keeps a fit on zero, one or all-equal cells finite.
PRIOR_LOGIT_MEAN = (0.0, 2.0)  # (centre, sd) of logit(mean)
PRIOR_LOG_CONCENTRATION = (np.log(10.0), 1.5)  # (centre, sd) of log(alpha + beta)


def beta_binomial_logpmf(
    keeps: np.ndarray, trials: np.ndarray, alpha: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """log BetaBinomial(k | n, alpha, beta) for real-valued k <= n (gammaln form)."""
    keeps = np.asarray(keeps, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    log_choose = -np.log1p(trials) - betaln(trials - keeps + 1.0, keeps + 1.0)
    return log_choose + betaln(alpha + keeps, beta + trials - keeps) - betaln(alpha, beta)


def _negative_log_posterior(
    x: np.ndarray, keeps: np.ndarray, trials: np.ndarray
) -> tuple[float, np.ndarray]:
    logit_mean, log_concentration = x
    mean = 1.0 / (1.0 + np.exp(-logit_mean))
    concentration = np.exp(log_concentration)
    a, b = mean * concentration, (1.0 - mean) * concentration
    fails = trials - keeps
    loglik = np.sum(betaln(a + keeps, b + fails) - betaln(a, b))
    d_a = np.sum(digamma(a + keeps) - digamma(a + b + trials) - digamma(a) + digamma(a + b))
    d_b = np.sum(digamma(b + fails) - digamma(a + b + trials) - digamma(b) + digamma(a + b))
    (m0, s0), (c0, t0) = PRIOR_LOGIT_MEAN, PRIOR_LOG_CONCENTRATION
    logprior = -0.5 * ((logit_mean - m0) / s0) ** 2 - 0.5 * ((log_concentration - c0) / t0) ** 2
    d_mean = mean * (1.0 - mean)
    grad_logit = (d_a - d_b) * concentration * d_mean - (logit_mean - m0) / s0**2
    grad_logc = (d_a * a + d_b * b) - (log_concentration - c0) / t0**2
    return -(loglik + logprior), -np.array([grad_logit, grad_logc])


def _newton_minimise(fun, x: np.ndarray, bounds: np.ndarray, max_steps: int = 100) -> np.ndarray:
    """Minimise a smooth function of a few variables: Newton steps on a finite-difference Hessian
    (made positive definite), with backtracking; a box keeps the search finite."""
    value, grad = fun(x)
    step_size = 1e-5
    for _ in range(max_steps):
        hessian = np.empty((x.size, x.size))
        for i in range(x.size):
            offset = np.zeros_like(x)
            offset[i] = step_size
            hessian[:, i] = (fun(x + offset)[1] - fun(x - offset)[1]) / (2 * step_size)
        eigenvalues, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
        direction = -vectors @ ((vectors.T @ grad) / np.maximum(np.abs(eigenvalues), 1e-8))
        scale = 1.0
        while scale > 1e-10:
            candidate = np.clip(x + scale * direction, bounds[:, 0], bounds[:, 1])
            new_value, new_grad = fun(candidate)
            if new_value <= value + 1e-4 * scale * float(grad @ direction):
                break
            scale *= 0.5
        else:
            break
        converged = abs(value - new_value) <= 1e-12 * (1.0 + abs(value))
        x, value, grad = candidate, new_value, new_grad
        if converged or np.max(np.abs(grad)) < 1e-9:
            break
    return x


def fit_beta_prior(keeps: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """Empirical-Bayes Beta(alpha, beta) prior for per-cell rates, by maximising the Beta-Binomial
    marginal likelihood of all cells (plus a weak regulariser); counts may be weighted."""
    keeps = np.asarray(keeps, dtype=np.float64).ravel()
    trials = np.asarray(trials, dtype=np.float64).ravel()
    if keeps.shape != trials.shape:
        raise ValueError("keeps and trials must have the same shape")
    if np.any(trials < 0) or np.any(keeps < 0) or np.any(keeps > trials + 1e-9):
        raise ValueError("counts must satisfy 0 <= keeps <= trials")
    used = trials > 0
    keeps, trials = np.minimum(keeps[used], trials[used]), trials[used]
    pooled = (keeps.sum() + 0.5) / (trials.sum() + 1.0)
    start = np.array([np.log(pooled / (1.0 - pooled)), PRIOR_LOG_CONCENTRATION[0]])
    bounds = np.array([(-12.0, 12.0), (-6.0, 12.0)])
    logit_mean, log_concentration = _newton_minimise(
        lambda x: _negative_log_posterior(x, keeps, trials), start, bounds
    )
    mean = 1.0 / (1.0 + np.exp(-logit_mean))
    concentration = np.exp(log_concentration)
    return float(mean * concentration), float((1.0 - mean) * concentration)


def beta_posterior(
    keeps: np.ndarray, trials: np.ndarray, alpha: float | np.ndarray, beta: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior Beta parameters (a_post, b_post) of each cell's rate given its (weighted) counts."""
    keeps = np.asarray(keeps, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    return alpha + keeps, beta + np.maximum(trials - keeps, 0.0)


def posterior_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of Beta(a, b); also the posterior predictive probability of one more success."""
    return np.asarray(a, dtype=np.float64) / (np.asarray(a) + np.asarray(b))


def credible_interval(
    a: np.ndarray, b: np.ndarray, mass: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval of Beta(a, b) holding `mass` of the probability."""
    tail = (1.0 - mass) / 2.0
    return betaincinv(a, b, tail), betaincinv(a, b, 1.0 - tail)


def prob_below(a: np.ndarray, b: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """P(rate < threshold) under Beta(a, b)."""
    return betainc(a, b, np.clip(threshold, 0.0, 1.0))


def leave_one_out_posteriors(
    keeps: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's Beta posterior under a prior fitted on the other cells only, so a cell's own
    data never move its prior: a failure added to a cell can then never raise its mean."""
    keeps = np.asarray(keeps, dtype=np.float64).ravel()
    trials = np.asarray(trials, dtype=np.float64).ravel()
    a_post, b_post = np.empty_like(trials), np.empty_like(trials)
    for i in range(trials.shape[0]):
        alpha, beta = fit_beta_prior(np.delete(keeps, i), np.delete(trials, i))
        a_post[i], b_post[i] = beta_posterior(keeps[i], trials[i], alpha, beta)
    return a_post, b_post


def cell_posteriors(keeps_w: np.ndarray, trials_w: np.ndarray) -> tuple[tuple[float, float], list]:
    """The empirical-Bayes prior of all cells (the answer for a cell with no data) and each
    cell's leave-one-out posterior (its prior fitted on the other cells), as rate distributions."""
    from nrr_stats.models.rate import BetaMixture

    prior = fit_beta_prior(keeps_w, trials_w)
    a_post, b_post = leave_one_out_posteriors(keeps_w, trials_w)
    return prior, [BetaMixture.of([a], [b]) for a, b in zip(a_post, b_post, strict=True)]
