"""Secrets never printed: bank passwords (URL, `?password=`, libpq `password=`) and API keys.

Every path that prints (error lines, warnings, JSON, tables) runs its text through
`redact_text`. Patterns catch the usual forms; secrets the process knows exactly (the
password of the bank it opened, the API key it was given) are registered and replaced
wherever they appear, whatever characters they hold (a space, an `@`).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MASK = "***"
_KNOWN: set[str] = set()
# Shorter strings would mask ordinary words.
_MIN_SECRET = 4

# A masked span never takes a `"` or a `\`: text that is JSON stays valid JSON.
_QUERY_PASSWORD = re.compile(r'([?&]password=)[^&#\s"\\]*', re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(
    r"""(\bpassword\s*=\s*)('(?:[^'\\"]|\\')*'?|[^\s'&"\\]+)""", re.IGNORECASE
)
_URL_USERINFO = re.compile(r'(://[^:/@\s"]*):[^\s"]*@')
_API_KEY = re.compile(r"\b(sk-ant-)[A-Za-z0-9_\-]{6,}")


def register_secret(secret: str | None) -> None:
    """Remember a secret this process holds, so that no output shows it (nor its %-encoding)."""
    if not secret or len(secret) < _MIN_SECRET:
        return
    for form in (secret, quote(secret, safe=""), unquote(secret)):
        if len(form) >= _MIN_SECRET:
            _KNOWN.add(form)


def redact_url(url: str) -> str:
    """A bank address with its password hidden: `user:password@` (the password may hold a
    space or an unescaped `@`: all up to the last `@` goes), `?password=` and `password=`."""
    text = _QUERY_PASSWORD.sub(r"\1" + MASK, url)
    text = _KEYWORD_PASSWORD.sub(r"\1" + MASK, text)
    scheme = text.find("://")
    if scheme >= 0:
        at = text.rfind("@", scheme)
        colon = text.find(":", scheme + 3)
        if at > 0 and 0 <= colon < at and "/" not in text[scheme + 3 : colon]:
            text = text[: colon + 1] + MASK + text[at:]
    return redact_text(text, patterns=False)


def redact_text(text: str, *, patterns: bool = True) -> str:
    """Any text with every known secret and every password or API key pattern masked."""
    for secret in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(secret, MASK)
    if patterns:
        text = _QUERY_PASSWORD.sub(r"\1" + MASK, text)
        text = _KEYWORD_PASSWORD.sub(r"\1" + MASK, text)
        text = _URL_USERINFO.sub(r"\1:" + MASK + "@", text)
        text = _API_KEY.sub(r"\1" + MASK, text)
    return text
