"""The model curator: an Anthropic model writes the record through one forced tool call.

The tool's input schema is the NK schema; the answer is validated, an invalid one is sent
back once with its violations, and a second invalid answer yields None (the caller stores the
offline record with the failure noted). Transport faults (429 honouring retry-after, 5xx,
timeouts, truncated or malformed bodies) back off exponentially with jitter; the SDK's own
retries are off so that every retry is ours and counted.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.curator.schema import BASE_FIELDS, DEEP_FIELDS, model_fields_schema, validate
from nrr_stats.errors import NrrInputError

# The newest Sonnet that accepts a forced tool_choice with default settings (Sonnet 5 turns
# adaptive thinking on by default, which forced tool use does not combine with).
DEFAULT_MODEL = "claude-sonnet-4-6"
MODEL_ENV = "NRR_CURATOR_MODEL"
TOOL_NAME = "record_negative_knowledge"

SYSTEM_PROMPT = """\
You are the curator of a negative-knowledge bank for an autonomous research loop. Each failed
experiment becomes one bounded, typed record that later agents read before proposing the next
experiment, and your diagnosis sets how much the failure counts as evidence against its route:
implementation failures, harness or LLM-call failures and artifact-driven outcomes count little;
a method failure of general scope that the evidence clearly contradicts counts fully. Diagnose
only what the evidence shows; where it cannot decide, say degree "inconclusive".

Vocabulary of the failure block:
- layer: implementation_failure (bug, OOM, shape, import, timeout: the idea was not really tested),
  communication_failure (the loop's own LLM call or harness channel failed),
  method_failure (the idea ran as intended and did not help).
- scope: local_failure (this attempt at this setting), regime_bound_failure (fails in this regime:
  scale, budget, current configuration), general_failure (fails across settings).
- degree: contradicted, partial, inconclusive, unstable, artifact_driven, overclaimed.
- recommended_action: retry, change_method, narrow_claim, abandon_route.
- risk (of a later agent ignoring this record): low_risk_omission, medium_risk_drift,
  high_risk_false_progress.
Caps: attempted_route and observation at most 200 characters, rationale and
recommended_alternative at most 300, synthesised_diagnosis at most 400. The recommended
alternative is one concrete next step and never one of the ruled-out routes.
Answer only by calling the tool."""


class CuratorAPIError(NrrInputError):
    """The API kept failing (or refused the request); finished records stay stored."""


@dataclass
class ModelSettings:
    """How to reach the model: name, endpoint, key, timeouts and the retry budget."""

    model: str = DEFAULT_MODEL
    api_key: str | None = None
    base_url: str | None = None
    timeout: float = 60.0
    max_attempts: int = 6  # API calls per request before giving up (the first one included)
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_tokens: int = 2000

    @property
    def source(self) -> str:
        return f"llm:{self.model}"


def settings_from_env(model: str | None = None, base_url: str | None = None) -> ModelSettings:
    """Settings from the arguments and the environment; a one-line error without ANTHROPIC_API_KEY."""
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        raise NrrInputError(
            "--llm needs ANTHROPIC_API_KEY in the environment (the offline curator needs none)"
        )
    return ModelSettings(
        model=model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL,
        api_key=key,
        base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
    )


@dataclass
class ModelAnswer:
    """A model's record (the paper's fields) or None, with the tokens and calls it took."""

    record: dict[str, Any] | None
    violations: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    retries: int = 0  # transport retries (429, 5xx, timeouts, bad bodies)
    faults: list[str] = field(default_factory=list)  # what each failed call ran into
    note: str = ""


class ModelCurator:
    """Writes records with an Anthropic model; one instance serves a whole curation run."""

    def __init__(
        self,
        settings: ModelSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        import anthropic

        from nrr_stats.secrets import register_secret

        register_secret(settings.api_key)  # an error body that echoes the key never prints it
        self.settings = settings
        self._anthropic = anthropic
        self._client = anthropic.Anthropic(
            api_key=settings.api_key,
            base_url=settings.base_url,
            max_retries=0,
            timeout=settings.timeout,
        )
        self._sleep = sleep
        self._jitter = jitter

    def curate(self, prompt: str, extra_fields: Mapping[str, Any], depth: int = 1) -> ModelAnswer:
        """Ask for one record; validate it with `extra_fields` merged in; retry once with the violations."""
        tool = {
            "name": TOOL_NAME,
            "description": f"Store one depth-{depth} negative-knowledge record for the failure described.",
            "input_schema": model_fields_schema(depth),
        }
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        answer = ModelAnswer(record=None)
        for turn in range(2):
            response = self._create(messages, tool, answer)
            tool_use = next(
                (
                    b
                    for b in response.content
                    if getattr(b, "type", "") == "tool_use" and b.name == TOOL_NAME
                ),
                None,
            )
            if tool_use is None:
                answer.violations = [
                    f"no call of the tool {TOOL_NAME} (stop reason {response.stop_reason})"
                ]
                candidate: dict[str, Any] = {}
            else:
                candidate = _paper_fields(tool_use.input)
                answer.violations = validate({**candidate, **extra_fields}, depth=depth)
                if response.stop_reason == "max_tokens":
                    answer.violations.append("the answer was cut at max_tokens")
            if not answer.violations:
                answer.record = candidate
                return answer
            if turn == 0:
                messages += _correction(response, tool_use, answer.violations)
        answer.note = (
            f"{self.settings.source} answer invalid twice: " + "; ".join(answer.violations)[:400]
        )
        return answer

    def _create(
        self, messages: list[dict[str, Any]], tool: dict[str, Any], answer: ModelAnswer
    ) -> Any:
        errors = self._anthropic
        last = ""
        for attempt in range(self.settings.max_attempts):
            retry_after: float | None = None
            try:
                answer.calls += 1
                response = self._client.messages.create(
                    model=self.settings.model,
                    max_tokens=self.settings.max_tokens,
                    system=SYSTEM_PROMPT,
                    messages=messages,
                    tools=[tool],
                    tool_choice={"type": "tool", "name": TOOL_NAME},
                )
                usage = response.usage
                answer.input_tokens += int(usage.input_tokens or 0)
                answer.output_tokens += int(usage.output_tokens or 0)
                if not isinstance(response.content, list):
                    raise ValueError("response has no content list")
                return response
            except errors.RateLimitError as error:
                last = "429 rate limited"
                retry_after = _retry_after(error.response.headers)
            except errors.APIStatusError as error:
                if error.status_code < 500 and error.status_code not in (408, 409):
                    raise CuratorAPIError(
                        f"the API refused the request ({error.status_code}): {_short(error)}"
                    ) from None
                last = f"server error {error.status_code}"
            except errors.APITimeoutError:
                last = f"timeout after {self.settings.timeout:g} s"
            except errors.APIConnectionError as error:
                last = f"connection failed ({_short(error)})"
            except (
                errors.APIResponseValidationError,
                ValueError,
                TypeError,
                AttributeError,
            ) as error:
                last = f"unreadable response body ({type(error).__name__})"
            answer.faults.append(last)
            if attempt + 1 < self.settings.max_attempts:
                answer.retries += 1
                self._sleep(self._delay(attempt, retry_after))
        raise CuratorAPIError(
            f"the API still fails after {self.settings.max_attempts} attempts (last: {last});"
            " finished records are stored, rerun to resume"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, never shorter than the server's retry-after."""
        ceiling = min(self.settings.max_delay, self.settings.base_delay * 2**attempt)
        jittered = ceiling * (0.5 + 0.5 * self._jitter())
        if retry_after is not None:
            return max(retry_after, 0.0) + self.settings.base_delay * 0.25 * self._jitter()
        return jittered


def _paper_fields(value: Any) -> dict[str, Any]:
    """The model's answer restricted to the paper's fields (nrr-stats sets its own fields)."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if k in BASE_FIELDS or k in DEEP_FIELDS}


def _correction(response: Any, tool_use: Any, violations: list[str]) -> list[dict[str, Any]]:
    listed = "\n".join(f"- {v}" for v in violations)
    text = f"The record is invalid:\n{listed}\nCall {TOOL_NAME} again with a corrected, complete record."
    if tool_use is None:
        return [
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in response.content]
                or "(no answer)",
            },
            {"role": "user", "content": text},
        ]
    return [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": tool_use.id,
                    "name": tool_use.name,
                    "input": tool_use.input,
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use.id,
                    "is_error": True,
                    "content": text,
                }
            ],
        },
    ]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            continue
    return None


def _short(error: Exception) -> str:
    from nrr_stats.secrets import redact_text

    return redact_text(" ".join(str(error).split()))[:160]


def build_prompt(
    facts: Mapping[str, Any], artifacts: Mapping[str, str], draft: Mapping[str, Any]
) -> str:
    """The user message: the experiment's facts, its artifacts and the rules' draft, as text."""
    lines = ["A failed experiment from an autonomous research loop.", ""]
    lines += [f"{name}: {value}" for name, value in facts.items() if value not in (None, "")]
    for kind, text in artifacts.items():
        lines += ["", f"<{kind}>", text, f"</{kind}>"]
    lines += [
        "",
        "A rules-based draft from the log alone (correct it where the artifacts show otherwise):",
        json.dumps(draft, ensure_ascii=False, indent=1),
    ]
    return "\n".join(lines)
