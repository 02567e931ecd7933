"""The closed vocabulary of TAXONOMY.md: categories, directions, statuses and outcomes."""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "learning_rate",
    "lr_schedule",
    "optimizer",
    "regularization",
    "batch_size",
    "training_length",
    "model_depth",
    "model_width",
    "attention",
    "activation",
    "normalization",
    "initialization",
    "architecture_other",
    "data",
    "loss",
    "systems",
    "multiple",
    "other",
)

DIRECTIONS: tuple[str, ...] = ("increase", "decrease", "replace", "add", "remove", "other")

# Status of a row after synonym mapping; "other" rows (baseline, running, ...) are kept
# for row numbering and history but are never predicted or counted.
STATUSES: tuple[str, ...] = ("keep", "discard", "crash", "other")

OUTCOMES: tuple[str, ...] = (
    "improvement",
    "marginal",
    "no_improvement",
    "regression",
    "crash_code",
    "crash_infra",
)
