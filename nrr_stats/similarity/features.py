"""Feature rows for experiments: hashed tf-idf text n-grams joined with the parsed fields.

A row is seven blocks, each L2-normalised on its own and scaled by the square root of its
weight, then the whole row is L2-normalised. The cosine of two rows with every block present
is therefore the weighted mean of the blocks' cosines, with these weights (sum 1):

    words 0.30 | char n-grams 0.25 | category 0.15 | direction 0.10 | parameter 0.10
    | change 0.05 | outcome 0.05

Hashing is zlib.crc32 (stable across processes and machines), never Python's hash().
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS, OUTCOMES

# Text n-grams hash first into a fine space, where document frequencies are counted (so idf
# is per n-gram up to rare collisions), then fold with a random sign into a few dimensions.
FINE_BITS = 18
FINE_SIZE = 1 << FINE_BITS
CHAR_NGRAMS = (3, 4, 5)
MAX_TEXT_CHARS = 1000  # features read a description's first 1000 characters

# (name, width, weight) in row order; widths sum to 128.
BLOCKS: tuple[tuple[str, int, float], ...] = (
    ("words", 48, 0.30),
    ("chars", 36, 0.25),
    # Known categories one-hot, plus 2 signed-hashed columns for a rules file's own ones.
    ("category", len(CATEGORIES) + 2, 0.15),
    ("direction", len(DIRECTIONS), 0.10),
    ("parameter", 10, 0.10),
    ("change", 2, 0.05),
    ("outcome", len(OUTCOMES), 0.05),
)
_OFFSET = {}
_WIDTH = {}
_WEIGHT = {}
_start = 0
for _name, _width, _weight in BLOCKS:
    _OFFSET[_name], _WIDTH[_name], _WEIGHT[_name] = _start, _width, _weight
    _start += _width
FEATURE_DIM = _start

_WORD = re.compile(r"\w+(?:[.\-]\w+)*")
_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([kmbgt]?)$")
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_TRANSFORM_BATCH = 2048  # rows hashed at a time: ~16 MB of transient arrays per batch
_CACHE_LIMIT = 1 << 16  # n-grams and words whose hashes are kept (~20 MB at most)


def _fold(fine: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and sign of each fine hash id in a block of `width` columns (fixed arithmetic)."""
    fine = fine.astype(np.uint64)
    column = ((fine * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)) >> np.uint64(8)
    sign_bit = ((fine * np.uint64(0x85EBCA6B)) >> np.uint64(13)) & np.uint64(1)
    return (column % np.uint64(width)).astype(np.int64), 1.0 - 2.0 * sign_bit.astype(np.float64)


def _hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def normalise_text(description: str) -> list[str]:
    """Lower-cased NFKC words of a description (its first MAX_TEXT_CHARS characters)."""
    text = unicodedata.normalize("NFKC", description[:MAX_TEXT_CHARS]).lower()
    return _WORD.findall(text)


class _NgramHasher:
    """Fine hash ids of a description's word uni/bigrams and character 3-5-grams, memoised.

    Character n-grams are taken within each word padded by spaces (as fastText does), so they
    are cached per word; word bigrams carry what crosses word boundaries.
    """

    def __init__(self) -> None:
        self._grams: dict[str, int] = {}
        self._chars: dict[str, list[int]] = {}

    def _id(self, gram: str) -> int:
        cached = self._grams.get(gram)
        if cached is None:
            if len(self._grams) >= _CACHE_LIMIT:
                self._grams.clear()
            cached = self._grams[gram] = _hash(gram) & (FINE_SIZE - 1)
        return cached

    def _char_ids(self, word: str) -> list[int]:
        cached = self._chars.get(word)
        if cached is None:
            if len(self._chars) >= _CACHE_LIMIT:
                self._chars.clear()
            padded = " " + word + " "
            cached = self._chars[word] = [
                _hash("c " + padded[i : i + n]) & (FINE_SIZE - 1)
                for n in CHAR_NGRAMS
                for i in range(len(padded) - n + 1)
            ]
        return cached

    def ids(self, description: str) -> tuple[list[int], list[int]]:
        words = normalise_text(description)
        word_ids = [self._id("w " + w) for w in words]
        word_ids += [self._id("b " + a + " " + b) for a, b in zip(words, words[1:], strict=False)]
        char_ids = [i for w in words for i in self._char_ids(w)]
        return word_ids, char_ids


_HASHER = _NgramHasher()


def document_frequencies(descriptions: Iterable[str]) -> tuple[np.ndarray, int]:
    """Per fine n-gram id, how many descriptions contain it; and how many descriptions."""
    counts = np.zeros(FINE_SIZE, dtype=np.int64)
    n_docs = 0
    batch: list[list[int]] = []

    def count(batch: list[list[int]]) -> None:
        lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        docs = np.repeat(np.arange(len(batch), dtype=np.int64), lengths)
        grams = np.fromiter(itertools.chain.from_iterable(batch), np.int64, int(lengths.sum()))
        present = np.unique(docs * FINE_SIZE + grams) % FINE_SIZE
        counts[:] += np.bincount(present, minlength=FINE_SIZE)

    for description in descriptions:
        words, chars = _HASHER.ids(description)
        batch.append(words + chars)
        n_docs += 1
        if len(batch) >= _TRANSFORM_BATCH:
            count(batch)
            batch = []
    if batch:
        count(batch)
    return counts, n_docs


def parse_number(value: str) -> float | None:
    """A written value as a float ("0.02", "1e-4", "524K", "2M"), None when not numeric."""
    match = _NUMBER.match(value.strip().lower().replace(",", "").replace("_", ""))
    if match is None:
        return None
    number = float(match.group(1)) * _SUFFIX[match.group(2)]
    return number if math.isfinite(number) else None


def signed_log_change(from_value: str, to_value: str) -> float | None:
    """log(to/from) signed so that positive means the value went up; None when not numeric.

    A target written as a multiplier ("2x", "0.5x") with no from-value is its own ratio.
    """
    to_text = (to_value or "").strip().lower()
    start = parse_number(from_value or "")
    if start is None and to_text.endswith("x"):
        ratio = parse_number(to_text[:-1])
        return math.log(ratio) if ratio is not None and ratio > 0 else None
    end = parse_number(to_text)
    if start is None or end is None:
        return None
    if start != 0 and end != 0 and (start > 0) == (end > 0):
        return math.copysign(1.0, start) * math.log(abs(end) / abs(start))
    return float(np.sign(end - start))


@dataclass(frozen=True)
class FeatureSpace:
    """Turns descriptions + parsed fields into float32 feature rows (dim 128, L2-normalised).

    `df`/`n_docs` are the document-frequency counts the idf comes from (fit on the bank).
    """

    df: np.ndarray = field(default_factory=lambda: np.zeros(FINE_SIZE, dtype=np.int64))
    n_docs: int = 0
    dim: ClassVar[int] = FEATURE_DIM

    @classmethod
    def fit_idf(cls, descriptions: Iterable[str]) -> FeatureSpace:
        """A space whose idf comes from these descriptions (the bank's)."""
        df, n_docs = document_frequencies(descriptions)
        return cls(df=df, n_docs=n_docs)

    def __post_init__(self) -> None:
        if self.df.shape != (FINE_SIZE,):
            raise ValueError(f"df must have shape ({FINE_SIZE},), got {self.df.shape}")
        object.__setattr__(self, "_idf", None)  # computed when first asked for (1M logs)

    @property
    def idf(self) -> np.ndarray:
        """Smoothed idf per fine n-gram id: ln((1 + N) / (1 + df)) + 1."""
        if self._idf is None:
            idf = idf_weights(self.df, self.n_docs)
            idf.flags.writeable = False
            object.__setattr__(self, "_idf", idf)
        return self._idf

    def idf_of(self, fine: np.ndarray) -> np.ndarray:
        """`idf[fine]`, the same numbers, computed for those ids alone until `idf` is built
        (a transform needs a few hundred of its million entries)."""
        if self._idf is not None:
            return self._idf[fine]
        return idf_weights(self.df[fine], self.n_docs)

    def transform(
        self, descriptions: Sequence[str], fields: Sequence[Mapping[str, str]]
    ) -> np.ndarray:
        """(n, dim) float32 rows, L2-normalised (an all-empty input gives a zero row)."""
        if len(descriptions) != len(fields):
            raise ValueError(f"{len(descriptions)} descriptions but {len(fields)} field rows")
        out = np.zeros((len(descriptions), self.dim), dtype=np.float32)
        for start in range(0, len(descriptions), _TRANSFORM_BATCH):
            stop = min(start + _TRANSFORM_BATCH, len(descriptions))
            block = np.zeros((stop - start, self.dim), dtype=np.float64)
            _text_blocks(block, descriptions[start:stop], self.idf_of)
            for row, values in enumerate(fields[start:stop]):
                block[row, _FIELDS_START:] = _field_part(_field_key(values))
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            out[start:stop] = block / np.where(norms > 0, norms, 1.0)
        return out


def idf_weights(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Smoothed idf ln((1 + N) / (1 + df)) + 1; all ones before any document is counted."""
    return np.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def idf_drift(df_used: np.ndarray, n_used: int, df_now: np.ndarray, n_now: int) -> float:
    """How far today's idf has moved from the idf the rows were built with, in [0, inf).

    The mean absolute idf change over today's n-gram occurrences, relative to their mean idf.
    """
    weight = df_now.astype(np.float64)
    total = float(weight.sum())
    if total == 0.0:
        return 0.0
    now = idf_weights(df_now, n_now)
    used = idf_weights(df_used, n_used)
    return float((weight * np.abs(now - used)).sum() / (weight * now).sum())


def _text_blocks(
    block: np.ndarray, descriptions: Sequence[str], idf_of: Callable[[np.ndarray], np.ndarray]
) -> None:
    """Fill the words and chars blocks of `block` with signed-hashed sublinear tf-idf."""
    per_kind: tuple[list[list[int]], list[list[int]]] = ([], [])
    for description in descriptions:
        word_ids, char_ids = _HASHER.ids(description)
        per_kind[0].append(word_ids)
        per_kind[1].append(char_ids)
    for name, id_lists in zip(("words", "chars"), per_kind, strict=True):
        lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
        if lengths.sum() == 0:
            continue
        docs = np.repeat(np.arange(len(id_lists), dtype=np.int64), lengths)
        grams = np.fromiter(itertools.chain.from_iterable(id_lists), np.int64, int(lengths.sum()))
        keys, tf = np.unique(docs * FINE_SIZE + grams, return_counts=True)
        doc, fine = np.divmod(keys, FINE_SIZE)
        width, offset = _WIDTH[name], _OFFSET[name]
        column, sign = _fold(fine, width)
        weights = (1.0 + np.log(tf)) * idf_of(fine) * sign
        dense = np.bincount(doc * width + column, weights=weights, minlength=block.shape[0] * width)
        _place(block, dense.reshape(block.shape[0], width), offset, _WEIGHT[name])


def _place(block: np.ndarray, values: np.ndarray, offset: int, weight: float) -> None:
    """Write each row's values L2-normalised and scaled by sqrt(weight) into its block."""
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    scaled = values / np.where(norms > 0, norms, 1.0) * math.sqrt(weight)
    block[..., offset : offset + values.shape[-1]] = scaled


def _one_hot(name: str, position: int, sign: float = 1.0) -> np.ndarray:
    values = np.zeros(_WIDTH[name])
    values[position] = sign
    return values


_FIELDS_START = _OFFSET["category"]
_FIELD_KEYS = ("category", "direction", "parameter", "from", "to", "outcome")


def _field_key(fields: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(str(fields.get(key) or "") for key in _FIELD_KEYS)


@functools.lru_cache(maxsize=1 << 12)
def _field_part(key: tuple[str, ...]) -> np.ndarray:
    """The field blocks (category onwards) of a row, cached: field tuples repeat a lot (but a
    long log's from/to values are many: a bounded cache of the blocks alone, not whole rows)."""
    row = np.zeros(FEATURE_DIM)
    _field_blocks(row, dict(zip(_FIELD_KEYS, key, strict=True)))
    part = row[_FIELDS_START:].copy()
    part.flags.writeable = False
    return part


def _field_blocks(row: np.ndarray, fields: Mapping[str, str]) -> None:
    """Fill the category, direction, parameter, change and outcome blocks of one row."""
    category = (fields.get("category") or "").strip().lower()
    if category in CATEGORIES:
        _place(
            row,
            _one_hot("category", CATEGORIES.index(category)),
            _OFFSET["category"],
            _WEIGHT["category"],
        )
    elif category:
        code = _hash("category " + category)
        values = _one_hot("category", len(CATEGORIES) + code % 2, 1.0 - 2.0 * ((code >> 7) & 1))
        _place(row, values, _OFFSET["category"], _WEIGHT["category"])
    direction = (fields.get("direction") or "").strip().lower()
    if direction:
        position = (
            DIRECTIONS.index(direction) if direction in DIRECTIONS else DIRECTIONS.index("other")
        )
        _place(row, _one_hot("direction", position), _OFFSET["direction"], _WEIGHT["direction"])
    parameter = (fields.get("parameter") or "").strip().upper()
    if parameter:
        column, sign = _fold(
            np.array([_hash("parameter " + parameter) & (FINE_SIZE - 1)]), _WIDTH["parameter"]
        )
        values = _one_hot("parameter", int(column[0]), float(sign[0]))
        _place(row, values, _OFFSET["parameter"], _WEIGHT["parameter"])
    change = signed_log_change(fields.get("from") or "", fields.get("to") or "")
    if change is not None:
        angle = 2.0 * math.atan(change)  # equal changes align; large opposite changes oppose
        values = np.array([math.cos(angle), math.sin(angle)])
        _place(row, values, _OFFSET["change"], _WEIGHT["change"])
    outcome = (fields.get("outcome") or "").strip().lower()
    if outcome in OUTCOMES:
        _place(
            row,
            _one_hot("outcome", OUTCOMES.index(outcome)),
            _OFFSET["outcome"],
            _WEIGHT["outcome"],
        )
