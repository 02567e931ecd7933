"""The engine `nrr backtest` runs by default: the configuration the dev ablation supports.

benchmarks/ablation.md holds the evidence: among the session-dynamics candidates, evidence
discounted by 0.7 per configuration move (keep) plus a plateau term of 0.3 on the session
offset's prior centre had the lowest log loss over all dev rows; nested cross-validation across
folds (each fold's choice made on the other folds) is what the ablation's figures report.
"""

from __future__ import annotations

from nrr_stats.backtest.walk import BacktestOptions, Dynamics

DEFAULT_DYNAMICS = Dynamics(keep_discount=0.7, plateau=0.3)


def default_options(
    *, dynamics: bool = True, curator_weights: bool = True, evidence: bool = True
) -> BacktestOptions:
    """The full engine's options; each switch turns one ablated part off. With the shipped
    similarity-evidence model (models/similarity_evidence.json) it gives P(keep) and the
    verdict; `evidence=False` (or no shipped model) walks the cell engine instead."""
    from nrr_stats.backtest.curation import OfflineCuratorWeights, curator_available
    from nrr_stats.models.similarity_evidence import load_params

    curator = OfflineCuratorWeights() if curator_weights and curator_available() else None
    return BacktestOptions(
        dynamics=DEFAULT_DYNAMICS if dynamics else Dynamics(),
        curator_weights=curator,
        evidence=load_params() if evidence else None,
    )
