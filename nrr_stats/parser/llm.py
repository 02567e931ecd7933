"""The optional model-based parser: an Anthropic model classifies the descriptions the rules
leave at category `other`, through one forced tool call whose schema allows only the
vocabulary's words (TAXONOMY.md plus the rules file's categories).

Offline rules stay the default and the fallback: an unusable answer, or an API that keeps
failing, leaves the rules' parse. Each description is asked once per model; the answers are
cached in the bank (`Bank.cached_parses` / `Bank.store_parses`), so a re-ingest or a reparse
costs no calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.curator.llm import ModelSettings
from nrr_stats.parser.parse import ParsedChange
from nrr_stats.parser.rules import PARAMETER_NAME, Rules
from nrr_stats.parser.values import compare
from nrr_stats.taxonomy import DIRECTIONS

TOOL_NAME = "classify_change"
SYSTEM_PROMPT = """\
You classify one experiment description from an autonomous research loop's results log into a
closed vocabulary (TAXONOMY.md). Choose the category by the thing changed, not the motive; a
change in two categories is "multiple"; reverts, seeds, re-runs, the baseline and changes outside
every category are "other". Direction: increase / decrease for a numeric quantity, replace for
one option swapped for another, add / remove for a component introduced or taken away, other when
unknown or mixed. parameter is an UPPER_SNAKE name when the text names one, else "". from and to
are values as written, "" when absent. Ignore words that report the result. Answer only by
calling the tool."""
MAX_CHARS = 2000


def tool_schema(rules: Rules) -> dict[str, Any]:
    """The tool's input schema: enums of the rules' vocabulary, UPPER_SNAKE parameter."""
    return {
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": sorted(rules.vocabulary)},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "parameter": {"type": "string", "pattern": "^([A-Z][A-Z0-9_]*)?$"},
            "from": {"type": "string"},
            "to": {"type": "string"},
        },
        "required": ["category", "direction", "parameter", "from", "to"],
        "additionalProperties": False,
    }


def description_key(model: str, text: str) -> str:
    """The cache key of one description under one model."""
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()


def _answer(value: Any, rules: Rules) -> dict[str, str] | None:
    """The tool input as the five fields, or None when it breaks the vocabulary."""
    if not isinstance(value, Mapping):
        return None
    fields = {k: value.get(k, "") for k in ("category", "direction", "parameter", "from", "to")}
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    if fields["category"] not in rules.vocabulary or fields["direction"] not in DIRECTIONS:
        return None
    if fields["parameter"] and not PARAMETER_NAME.match(fields["parameter"]):
        return None
    return {k: v[:200] for k, v in fields.items()}


@dataclass
class ModelParser:
    """Asks a model for the descriptions the rules leave at `other`; one instance per run."""

    settings: ModelSettings
    rules: Rules
    cache: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> fields
    fresh: dict[str, dict[str, str]] = field(default_factory=dict)  # answers not yet stored
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(
                api_key=self.settings.api_key,
                base_url=self.settings.base_url,
                max_retries=2,
                timeout=self.settings.timeout,
            )
        return self._client

    def ask(self, text: str) -> dict[str, str] | None:
        """The model's fields for one description (cached), or None when it gave none usable."""
        text = text[:MAX_CHARS]
        key = description_key(self.settings.model, text)
        if key in self.cache:
            return self.cache[key] or None
        import anthropic

        self.calls += 1
        try:
            response = self.client().messages.create(
                model=self.settings.model,
                max_tokens=300,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": f"Description: {text}"}],
                tools=[
                    {
                        "name": TOOL_NAME,
                        "description": "Record the description's category, direction and values.",
                        "input_schema": tool_schema(self.rules),
                    }
                ],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        except anthropic.APIError as error:
            self.failures.append(type(error).__name__)
            return None  # not cached: a later run asks again
        usage = getattr(response, "usage", None)
        self.input_tokens += int(getattr(usage, "input_tokens", 0) or 0)
        self.output_tokens += int(getattr(usage, "output_tokens", 0) or 0)
        block = next(
            (
                b
                for b in getattr(response, "content", None) or []
                if getattr(b, "type", "") == "tool_use" and getattr(b, "name", "") == TOOL_NAME
            ),
            None,
        )
        fields = _answer(getattr(block, "input", None), self.rules) if block else None
        self.cache[key] = self.fresh[key] = fields or {}  # an unusable answer is not asked again
        return fields

    def fallback(self, text: str, parsed: ParsedChange, config: Mapping[str, str]) -> ParsedChange:
        """The rules' parse, or the model's when the rules said `other` and the model names more."""
        if parsed.category != "other" or not text.strip():
            return parsed
        fields = self.ask(text)
        if not fields or fields["category"] == "other":
            return parsed
        direction, before = fields["direction"], fields["from"]
        known = config.get(fields["parameter"]) if fields["parameter"] else None
        if known and fields["to"] and not before:
            before = known
            if direction == "other":
                direction = compare(known, fields["to"])
        return ParsedChange(
            fields["category"],
            direction,
            fields["parameter"],
            before,
            fields["to"],
            settings=parsed.settings,
        )
