"""The parser's vocabulary as people read it: each category and direction of TAXONOMY.md with
what it covers, example phrases, and the words the rules match (`nrr taxonomy`)."""

from __future__ import annotations

from typing import Any

from nrr_stats.parser.rules import Rules, normalise

# (covers, example phrases), from docs/TAXONOMY.md.
CATEGORY_NOTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "learning_rate": (
        "any learning-rate value, per-group LRs, LR multipliers",
        ("increase LR to 0.04", "embedding LR 0.6→0.8"),
    ),
    "lr_schedule": (
        "warmup, warmdown / cooldown, decay shape, scheduler, final-LR fraction",
        ("warmdown ratio 0.5", "switch cosine to step scheduler"),
    ),
    "optimizer": (
        "optimizer choice and internals: momentum, betas, eps, NS steps, EMA / SWA",
        ("switch SGD to AdamW", "muon momentum 0.95"),
    ),
    "regularization": (
        "weight decay, dropout, label smoothing, gradient clipping, z-loss",
        ("add dropout 0.3", "weight decay 1e-4→5e-5"),
    ),
    "batch_size": (
        "batch size, gradient accumulation, tokens per step",
        ("halve batch 524K→262K",),
    ),
    "training_length": ("epochs, steps, token or time budget, early stopping", ("epochs 10→15",)),
    "model_depth": ("number of layers / blocks", ("depth 9", "add a fourth conv block")),
    "model_width": (
        "hidden / embedding dim, filters, FC size, MLP ratio, heads, head dim",
        ("double filters", "n_embd 768"),
    ),
    "attention": (
        "attention mechanism and positions: windows, GQA / MQA, RoPE, QK-norm",
        ("RoPE base 10000→50000", "sliding window SSSL"),
    ),
    "activation": ("activation function, gated activations", ("ReLU→GELU", "use SwiGLU")),
    "normalization": ("norm type and placement, norm eps", ("RMSNorm instead of LayerNorm",)),
    "initialization": ("init scale and scheme, zero-init", ("init scale 0.68x",)),
    "architecture_other": (
        "other structure: residuals, value embeddings, tying, softcap, MoE",
        ("add residual connections", "untie embeddings"),
    ),
    "data": (
        "augmentation, sequence length, data mixture or order, sampling, tokenizer, features",
        ("enable color jitter", "seq len 2048"),
    ),
    "loss": ("loss function, auxiliary losses, loss weights", ("add z-loss term", "focal loss")),
    "systems": (
        "precision, compile, kernels, tiles, threads, caches, I/O, memory or throughput",
        ("mixed precision", "torch.compile max-autotune", "tile size 64->128"),
    ),
    "multiple": ("two or more changes in different categories", ("LR 0.02 and depth 10",)),
    "other": (
        "none of the above: other domains, reverts, seeds, the baseline row",
        ("baseline", "retry with seed 2"),
    ),
}
DIRECTION_NOTES: dict[str, str] = {
    "increase": "a numeric quantity goes up (from 4 to 8, 2x, double, higher)",
    "decrease": "a numeric quantity goes down (from 8 to 4, 0.5x, halve, fewer)",
    "replace": "one discrete option swapped for another (switch, X instead of Y, X→Y)",
    "add": "a component or technique that was absent is introduced or enabled",
    "remove": "a component or technique is removed or disabled",
    "other": "unknown, mixed or not applicable (tune, retry, revert)",
}
WORDS_SHOWN = 12


def vocabulary(rules: Rules) -> dict[str, Any]:
    """Categories and directions with notes, examples and up to WORDS_SHOWN matched words each."""
    words: dict[str, list[str]] = {}
    for term in rules.terms:
        if term.is_pattern:
            continue
        shown = normalise(term.phrase)
        bucket = words.setdefault(term.category, [])
        if shown and shown not in bucket:
            bucket.append(shown)
    categories = []
    ordered = [c for c in rules.categories if c not in ("multiple", "other")]
    for name in [*ordered, "multiple", "other"]:
        covers, examples = CATEGORY_NOTES.get(name, ("added by the rules file", ()))
        categories.append(
            {
                "name": name,
                "covers": covers,
                "examples": list(examples),
                "words": words.get(name, [])[:WORDS_SHOWN],
                "user": name in rules.user_categories,
            }
        )
    directions = [
        {
            "name": name,
            "covers": note,
            "words": list(rules.direction_words.get(name, ()))[:WORDS_SHOWN],
        }
        for name, note in DIRECTION_NOTES.items()
    ]
    return {"categories": categories, "directions": directions}
