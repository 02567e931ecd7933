"""Shared helpers of the parser's class tests: parse rows in a log's order, and a software log."""

from __future__ import annotations

from nrr_stats.parser import ParsedChange, parse_log_descriptions


def walk(rows: list[tuple[str, bool]]) -> list[ParsedChange]:
    """Parse (text, kept) rows in order the way ingest does, each against the configuration kept
    before it (parse_log_descriptions)."""
    return parse_log_descriptions(
        [text for text, _ in rows], ["keep" if kept else "discard" for _, kept in rows]
    )


# The earlier rows of a software-performance log: no ML-training setting among them.
SOFTWARE_ROWS = [
    (text, True)
    for text in (
        "memoize the tokenizer lookup table",
        "inline the hot path of Router.dispatch",
        "skip schema validation for trusted payloads",
        "precompute route masks at startup",
        "replace the json encoder with orjson",
        "batch the audit log writes",
        "lazy-load plugin registry",
        "remove the double copy in the request parser",
        "intern repeated header strings",
        "use a slotted dataclass for Decision",
        "defer logging setup until first use",
        "pool the socket buffers",
        "hoist the regex compile out of the handler",
        "drop the legacy XML exporter",
        "vectorise the checksum loop",
    )
]
