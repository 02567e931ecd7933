"""Read values as written ("524K", "2^13", "1e-3", "0.6x", "4-way", "(0.9, 0.98)") and compare them."""

from __future__ import annotations

import math
import re

SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
NUMBER = re.compile(
    r"^[(\[]?\s*(?P<sign>[-+]?)(?P<num>\d+(?:[.,]\d+)*(?:\.\d*)?|\.\d+)"
    r"(?:e(?P<exp>[-+]?\d+))?(?:(?:\^|\*\*)(?P<pow>\d+))?\s*(?P<suffix>[kmbgt](?![a-z]))?"
)
TUPLE_SPLIT = re.compile(r"[/,]\s*")
# Small counts written as words ("from four documents to eight"), read as their numbers.
_COUNTS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
NUMBER_WORDS = {word: index + 1 for index, word in enumerate((*_COUNTS, "eleven", "twelve"))}
_NUMBER_WORD = re.compile(r"^(" + "|".join(NUMBER_WORDS) + r")\b(?![-'])")


def to_number(value: str) -> float | None:
    """The number a written value stands for, or None when it is not numeric."""
    text = value.strip().lower().replace("×", "x")
    if not text or len(text) > 40:
        return None
    text = text.lstrip("x")  # "x2" multiplier
    spelled = _NUMBER_WORD.match(text)
    if spelled:
        text = str(NUMBER_WORDS[spelled.group(1)]) + text[spelled.end() :]
    match = NUMBER.match(text)
    if not match:
        return None
    rest = text[match.end() :].strip(" )]")
    if rest and not re.fullmatch(r"(x|%|-?way|[a-z]{1,12}|/\w+)", rest):
        return None
    digits = match.group("num")
    digits = (
        digits.replace(",", "")
        if re.fullmatch(r"\d{1,3}(,\d{3})+", digits)
        else digits.replace(",", ".")
    )
    try:
        number = float(digits)
        if match.group("pow"):
            number = number ** int(match.group("pow"))
        if match.group("exp"):
            number *= 10.0 ** int(match.group("exp"))
    except (ValueError, OverflowError):
        return None
    if match.group("suffix"):
        number *= SUFFIXES[match.group("suffix")]
    if match.group("sign") == "-":
        number = -number
    return number if math.isfinite(number) else None


SHAPE = re.compile(r"\d+(?:\s?[x×]\s?\d+)+")


def to_numbers(value: str) -> list[float] | None:
    """All numbers of a tuple-like value "(0.8, 0.95)", "64/64/32" or a shape "3x3"; None when any
    part is not numeric."""
    if SHAPE.fullmatch(value.strip()):
        return [float(part) for part in re.split(r"\s?[x×]\s?", value.strip())]
    parts = [part for part in TUPLE_SPLIT.split(value.strip().strip("()[]")) if part.strip()]
    if not parts:
        return None
    numbers = [to_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    return [n for n in numbers if n is not None]


def compare(before: str, after: str) -> str:
    """Which way a value moved: increase, decrease, replace (non-numeric) or other (equal or mixed)."""
    old, new = to_numbers(before), to_numbers(after)
    if old is None or new is None:
        if to_number(before) is None and to_number(after) is None:
            return "replace" if before.strip().lower() != after.strip().lower() else "other"
        return "other"
    if len(old) != len(new):
        old, new = [old[0]], [new[0]]
    ups = sum(b > a for a, b in zip(old, new, strict=True))
    downs = sum(b < a for a, b in zip(old, new, strict=True))
    if ups and not downs:
        return "increase"
    if downs and not ups:
        return "decrease"
    return "other"


def multiplier(value: str) -> float | None:
    """The factor of a relative value such as "2x", "0.5x", "x2", "*2" or "/2"; None for an absolute
    value."""
    text = value.strip().lower().replace("×", "x")
    operator = re.fullmatch(r"([*/])\s?(\d+(?:\.\d+)?)", text)
    if operator:
        factor = float(operator.group(2))
        if operator.group(1) == "*":
            return factor
        return 1 / factor if factor else None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s?x|x\s?(\d+(?:\.\d+)?)", text)
    if not match:
        return None
    return float(match.group(1) or match.group(2))
