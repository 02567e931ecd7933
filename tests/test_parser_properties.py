"""Laws of the description parser, checked on generated text: total, closed vocabulary, blind to results."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.parser import (
    ConfigTracker,
    load_rules,
    parse,
    parse_description,
    parse_log_descriptions,
)
from nrr_stats.parser import rules as rules_module
from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS

FIXTURES = Path(__file__).parent / "fixtures" / "labels"
PROPOSALS = [
    line.split("\t")[2]
    for line in (FIXTURES / "dev-sample.tsv").read_text(encoding="utf-8").splitlines()[1:]
] + [
    line.split("\t")[-1]
    for line in (FIXTURES / "seed-results.tsv").read_text(encoding="utf-8").splitlines()[1:]
]
RESULT_SUFFIXES = [
    " (OOM)",
    " — new best",
    " worse",
    " (worse)",
    "; worse than baseline",
    ", new best!",
    " - regression",
    " (no effect)",
    " — slower",
    " (-28.3% vs 1e-3)",
    " val_bpb 0.993",
    ": worse, fewer dims better",
    " (crash)",
    " -- NaN at step 117",
]
WORDS = st.sampled_from(
    [
        "LR",
        "lr",
        "depth",
        "->",
        "→",
        "to",
        "from",
        "0.04",
        "2x",
        "=",
        "(",
        ")",
        "[",
        "]",
        "increase",
        "add",
        "remove",
        "switch",
        "GELU",
        "warmup",
        "batch",
        ",",
        ";",
        "—",
        "and",
        "+",
        "with",
        ":",
        ".",
        "x",
        "1e-3",
        "524K",
        "baseline",
        "worse",
        "%",
        "_",
    ]
)
TEXT = st.one_of(st.text(max_size=300), st.lists(WORDS, max_size=40).map(" ".join))


def in_vocabulary(parsed) -> bool:
    fields = {k: v for k, v in parsed.as_dict().items() if k != "parts"}
    return (
        parsed.category in CATEGORIES
        and parsed.direction in DIRECTIONS
        and all(isinstance(value, str) for value in fields.values())
        and (parsed.category == "multiple") == bool(parsed.parts)
        and all(in_vocabulary(part) and part.category != "multiple" for part in parsed.parts)
    )


@settings(max_examples=250, deadline=None)
@given(TEXT)
def test_any_text_parses_to_vocabulary_words(text: str) -> None:
    parsed = parse_description(text)
    assert in_vocabulary(parsed)
    assert parsed.parameter == "" or parsed.parameter.replace("_", "").isalnum()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.text(min_size=1, max_size=200), st.integers(min_value=100, max_value=600))
def test_huge_descriptions_parse_to_vocabulary_words(chunk: str, repeats: int) -> None:
    text = (chunk * repeats)[:100_000] + "\x00\x1b\u2028 increase LR 0.1->0.2"
    assert in_vocabulary(parse_description(text))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(PROPOSALS), st.sampled_from(RESULT_SUFFIXES), st.sampled_from(RESULT_SUFFIXES)
)
def test_result_words_never_change_the_parse(proposal: str, first: str, second: str) -> None:
    assert parse_description(proposal + first) == parse_description(proposal)
    assert parse_description(proposal + first + second) == parse_description(proposal)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PROPOSALS), st.sampled_from(["keep", "discard", "crash"])),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=11),
)
def test_row_parse_ignores_later_rows(rows: list[tuple[str, str]], cut: int) -> None:
    texts, statuses = [t for t, _ in rows], [s for _, s in rows]
    full = parse_log_descriptions(texts, statuses)
    prefix = parse_log_descriptions(texts[: cut + 1], statuses[: cut + 1])
    assert full[: cut + 1] == prefix


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40), st.sampled_from(PROPOSALS))
def test_tracker_never_raises_and_keeps_string_values(text: str, proposal: str) -> None:
    tracker = ConfigTracker()
    for row in (proposal, text):
        parsed = tracker.parse(row)
        tracker.observe(parsed, kept=True)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tracker.current.items())


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.from_regex(r"[a-z]{4,10}", fullmatch=True),
    st.sampled_from(["raise", "add", "remove", "lower"]),
)
def test_a_user_category_is_returned_for_its_words(tmp_path_factory, word: str, verb: str) -> None:
    path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_text(f'[categories.custom_thing]\nwords = ["{word} knob"]\n', encoding="utf-8")
    rules = load_rules(path)
    parsed = parse_description(f"{verb} the {word} knob", rules=rules)
    assert parsed.category == "custom_thing"
    assert parse_description(f"{word} knob to 3 (worse)", rules=rules).category == "custom_thing"


RULES = load_rules()
PROBES = sorted({term.probe for term in RULES.terms if term.probe}, key=lambda p: (len(p), p))
# Text made of probes, pieces of probes and whitespace of several kinds (a probe holds none),
# run together or apart.
PROBE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(PROBES),
        st.sampled_from(PROBES[-10:]),  # the longest
        st.sampled_from(PROBES).map(lambda probe: probe[1:]),
        st.sampled_from([" ", "  ", "\t", "\n", "\xa0", "\u2028", "\u3000", "", "x", "1"]),
        st.text(max_size=8),
    ),
    max_size=60,
).map("".join)


DIRECTION_WORDS = [word for words in RULES.direction_words.values() for word in words]
DIRECTION_TEXT = st.lists(
    st.one_of(
        st.sampled_from(DIRECTION_WORDS),
        st.sampled_from(PROBES),
        st.sampled_from([" ", "\t", "\xa0", "", "_", "x"]),
        st.text(max_size=6),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, PROBE_TEXT, PROBE_TEXT.map(lambda text: text * 20)))
def test_terms_meeting_a_text_are_those_whose_probe_it_contains(text: str) -> None:
    brute_force = [term for term in RULES.terms if not term.probe or term.probe in text]
    assert RULES.terms_meeting(text) == brute_force


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, DIRECTION_TEXT, DIRECTION_TEXT.map(lambda text: text * 20)))
def test_direction_words_meeting_a_text_are_those_whose_first_word_it_contains(text) -> None:
    brute_force = [
        (direction, word)
        for direction, words in RULES.direction_words.items()
        for word in words
        if word.split(" ")[0] in text
    ]
    assert RULES.direction_words_meeting(text) == brute_force


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(TEXT, PROBE_TEXT), min_size=1, max_size=6))
def test_mentions_kept_per_text_are_the_search_done_again(texts: list[str]) -> None:
    rules = load_rules()
    for text in texts + texts:  # each text asked twice: the second answer is the kept one
        found = parse._find_mentions(text, rules)
        assert found == parse._search_mentions(text, rules)
        found.clear()  # a caller's list is its own
    assert set(texts) <= set(rules.mentions)


def test_the_mentions_kept_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(rules_module, "MEMO_ENTRIES", 3)
    rules = load_rules()
    for i in range(10):
        parse._find_mentions(f"increase lr to 0.0{i}", rules)
        assert len(rules.mentions) <= 3
    assert parse._find_mentions("increase lr to 0.09", rules) == parse._search_mentions(
        "increase lr to 0.09", rules
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=st.characters(max_codepoint=127))))
def test_lower_case_keeps_every_span(text: str) -> None:
    lowered = parse._lower_keep_length(text)
    assert lowered == "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    assert len(lowered) == len(text)
