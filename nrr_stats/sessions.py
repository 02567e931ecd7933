"""The sessions of a bank, as `nrr sessions` and the MCP server list them."""

from __future__ import annotations

from typing import Any

from nrr_stats.bank import Bank

INTERVAL_MASS = 0.90


def keep_rate_interval(keeps: int, experiments: int) -> tuple[float | None, float | None]:
    """The 90% equal-tailed interval of a keep rate from its counts (Jeffreys Beta(1/2, 1/2)
    prior); (None, None) with no experiments."""
    if experiments <= 0:
        return None, None
    from scipy.special import betaincinv

    a, b = keeps + 0.5, experiments - keeps + 0.5
    tail = (1.0 - INTERVAL_MASS) / 2
    low = 0.0 if keeps == 0 else float(betaincinv(a, b, tail))
    high = 1.0 if keeps == experiments else float(betaincinv(a, b, 1.0 - tail))
    return round(low, 4), round(high, 4)


def observed_keep_rate(keeps: int, experiments: int) -> tuple[float | None, tuple]:
    """The observed keep rate keeps / experiments (None without experiments) and its 90%
    Jeffreys interval, as `nrr sessions` lists it."""
    rate = round(keeps / experiments, 4) if experiments else None
    return rate, keep_rate_interval(keeps, experiments)


def list_sessions(bank: Bank) -> list[dict[str, Any]]:
    """Per session: id, name, path, rows stored, experiments counted (keep, discard, crash),
    keeps, keep rate with its 90% interval, crashes, last update."""
    out = []
    for row in bank.session_summaries():
        experiments, keeps = int(row["experiments"] or 0), int(row["keeps"] or 0)
        rate, (low, high) = observed_keep_rate(keeps, experiments)
        out.append(
            {
                "id": int(row["id"]),
                "name": row["name"],
                "path": row["source_path"],
                "rows": int(row["rows"] or 0),
                "experiments": experiments,
                "keeps": keeps,
                "crashes": int(row["crashes"] or 0),
                "keep_rate": rate,
                "interval": [low, high],
                "updated_at": row["updated_at"],
            }
        )
    return out
