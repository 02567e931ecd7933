"""The parser's lazily compiled regexes answer exactly as the compiled regex would.

A LazyPattern may skip a text holding none of its `needs` literals; these laws check, for every
such pattern the parser defines, that the skip never changes an answer: on texts built from the
parser's own words (its literals included), in ASCII and not.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nrr_stats.parser.changes as changes
import nrr_stats.parser.parse as parse
import nrr_stats.parser.results as results
from nrr_stats.parser.lazy_regex import LazyPattern, lazy_compile

LAZY = {
    f"{module.__name__}.{name}": value
    for module in (changes, parse, results)
    for name, value in vars(module).items()
    if isinstance(value, LazyPattern)
}
PIECES = [
    " ",
    "  ",
    "to",
    "TO",
    "from",
    "From",
    "vs",
    "vs.",
    "versus",
    "was",
    "instead of",
    "replace",
    "Replaced",
    "swap",
    "substitute",
    "with",
    "for",
    "(",
    ")",
    "[",
    "]",
    "（",
    "）",
    "is",
    "still",
    "better",
    "best",
    "+1",
    "-2",
    "0.02",
    "3e-4",
    "64",
    "lr",
    "LR",
    "layers",
    "dim",
    "=",
    "->",
    "→",
    ",",
    ";",
    "é",
    "ſwap",
    "K",
]
WORDS = [piece for piece in PIECES if piece.strip()]
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join) | st.lists(
    st.sampled_from(WORDS), max_size=10
).map(" ".join)
# One text each pattern matches, so a `needs` missing a literal fails whatever the draws.
MATCHING = [
    "lr from 0.01 to 0.02",
    "64 to 128 layers",
    "0.02 (was 0.01)",
    "0.02 vs. 0.01",
    "64 versus 32",
    "adam instead of sgd",
    "replace relu with gelu",
    "Swapped adam for lion",
    "substitute gelu for relu",
    "softcap 30 (15 is better)",
    "momentum 0.9: 0.8 is still optimal",
    "width (+1 layer)",
    "depth 8 [was 6]",
]


def test_the_parser_defines_lazy_patterns():
    assert {"nrr_stats.parser.changes.REPLACE_WITH", "nrr_stats.parser.results.INNER_GROUP"} <= set(
        LAZY
    )


def test_each_lazy_pattern_matches_an_example():
    for name, lazy in LAZY.items():
        assert any(lazy.search(text) for text in MATCHING), name


@pytest.mark.parametrize("text", MATCHING)
def test_every_lazy_pattern_answers_as_its_regex_on_examples(text):
    test_every_lazy_pattern_answers_as_its_regex.hypothesis.inner_test(text)


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_every_lazy_pattern_answers_as_its_regex(text):
    for name, lazy in LAZY.items():
        real = re.compile(lazy.pattern, lazy.flags)
        for method in ("search", "match", "fullmatch"):
            got, want = getattr(lazy, method)(text), getattr(real, method)(text)
            assert (got and got.span()) == (want and want.span()), (name, method, text)
        assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in real.finditer(text)]
        assert lazy.findall(text) == real.findall(text)
        assert lazy.sub("#", text) == real.sub("#", text)
        assert lazy.split(text) == real.split(text)
        got, want = lazy.search(text, 1, 5), real.search(text, 1, 5)
        assert (got and got.span()) == (want and want.span())


def test_a_text_without_the_needed_words_never_compiles():
    pattern = lazy_compile(r"\bswap\s+(\w+)", re.I, needs=("swap",))
    assert pattern.search("increase lr to 0.02") is None
    assert pattern.sub("x", "increase lr") == "increase lr"
    assert list(pattern.finditer("increase lr")) == []
    assert pattern._compiled is None
    assert pattern.search("SWAP adam").group(1) == "adam"  # case-folded like the regex
    assert pattern._compiled is not None


def test_non_ascii_text_always_runs_the_regex():
    # Under re.I the long s matches "s": a substring test of the lower-cased text would miss it.
    pattern = lazy_compile(r"swap", re.I, needs=("swap",))
    assert re.search("swap", "ſwap", re.I)
    assert pattern.search("ſwap") is not None


def test_needs_must_be_ascii_literals():
    with pytest.raises(ValueError):
        lazy_compile("x", needs=("",))
    with pytest.raises(ValueError):
        lazy_compile("（", needs=("（",))


def _normalise_by_regex(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", text.lower())).strip()


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000_-aZé9İß"))
        | st.characters(),
        max_size=30,
    )
)
def test_normalise_is_the_regex_form(text):
    from nrr_stats.parser.rules import normalise

    assert normalise(text) == _normalise_by_regex(text)
