"""Secret redaction: applied to every artifact before it is stored or sent to a model.

Catches API keys (sk-..., sk-ant-...), AWS access keys, GitHub tokens, bearer tokens,
`password=...`-style assignments, credentials in URLs, private key blocks (also a block cut
by a tail, with no BEGIN or no END line), and long mixed-case base64 runs.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",
    re.DOTALL,
)
# The tail of a block whose BEGIN line was cut away.
_PRIVATE_KEY_TAIL = re.compile(r"\A.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", re.DOTALL)
_TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),
)
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}")
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)[^\n]+")
_ASSIGNMENT = re.compile(
    r"(?i)\b([A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token(?!s)|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|credential|auth)[A-Za-z0-9_\-]*[\"']?\s*[:=]\s*)(\"[^\"\n]*\"|'[^'\n]*'|[^\s,;\"']+)"
)
_URL_CREDENTIALS = re.compile(r"(://[^\s:/@]+):[^\s@/]+@")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{40,}")


def redact(text: str) -> str:
    """The text with every recognised secret replaced by [REDACTED]."""
    text = _PRIVATE_KEY_BLOCK.sub(REDACTED, text)
    text = _PRIVATE_KEY_TAIL.sub(REDACTED, text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(rf"\1:{REDACTED}@", text)
    return _BASE64_RUN.sub(_blob, text)


def _blob(match: re.Match[str]) -> str:
    """Redact a long run that looks random (mixed case and digits, few slashes): keys, not paths or hashes."""
    run = match.group(0)
    looks_random = (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and run.count("/") <= 4
        and run.count("_") <= 3
    )
    return REDACTED if looks_random else run
