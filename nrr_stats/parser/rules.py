"""Load the parser's rules: the built-in rules.toml plus an optional user rules file (SPEC.md, Rules files)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nrr_stats.errors import NrrInputError
from nrr_stats.package_data import package_file
from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS

PARAMETER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CATEGORY_KEYS = {"words", "patterns", "parameters", "default_parameter", "heads", "quantity"}
WORD_TABLES = ("options", "results", "techniques", "ambiguous", "forms")
TOP_KEYS = {"categories", "parameters", "directions", *WORD_TABLES}
# Entries each memo of a rule set keeps (Rules.remembered) before it starts afresh.
MEMO_ENTRIES = 50_000
# Words of category "other" that say little about a log's domain.
GENERIC_OTHER_WORDS = frozenset(
    {"baseline", "seed", "random seed", "threshold", "heuristic", "prompt"}
)


@dataclass(frozen=True)
class Term:
    """One thing the matcher looks for: a phrase or regex that names a category (and maybe a parameter)."""

    category: str
    pattern: str  # the regular expression (compiled on first use: most never meet their probe)
    parameter: str = ""
    is_head: bool = False
    is_pattern: bool = False
    probe: str = ""  # a word the text must contain for the term to match (a cheap pre-check)
    phrase: str = ""  # the word or alias as the rules file writes it ("" for a pattern)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


@dataclass(frozen=True)
class Rules:
    """Loaded rules: categories with words/patterns, parameter aliases, direction, option and result words."""

    categories: tuple[str, ...]
    terms: tuple[Term, ...]
    default_parameters: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    direction_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    option_words: tuple[str, ...] = ()
    result_words: tuple[str, ...] = ()
    technique_words: tuple[str, ...] = ()
    ambiguous_words: frozenset[str] = frozenset()
    form_words: tuple[str, ...] = ()
    user_categories: tuple[str, ...] = ()
    quantities: frozenset[str] = frozenset()
    memo: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # A text's category-term mentions (parse._find_mentions), found once per text.
    mentions: dict[str, tuple] = field(default_factory=dict, compare=False, repr=False)

    def remembered(self, table: dict[str, Any], key: str, make: Callable[[], Any]) -> Any:
        """table[key] (one of this rule set's memos), made once; a table reaching MEMO_ENTRIES
        entries starts afresh, so a long ingest holds a bounded memo."""
        if key not in table:
            if len(table) >= MEMO_ENTRIES:
                table.clear()
            table[key] = make()
        return table[key]

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every category word this rule set may return."""
        return frozenset(self.categories) | {"multiple", "other"}

    def terms_meeting(self, text: str) -> list[Term]:
        """The terms whose probe occurs in `text` and every term without one, in rule order:
        `[t for t in terms if not t.probe or t.probe in text]`, searching the text once per
        distinct probe (482 of them for 830 built-in terms), not once per term."""
        return [self.terms[i] for i in self._term_probes.met(text)]

    def direction_words_meeting(self, text: str) -> list[tuple[str, str]]:
        """(direction, word) of the direction words whose first word occurs in `text`, in rule
        order (as terms_meeting finds terms)."""
        return [self._direction_items[i] for i in self._direction_probes.met(text)]

    @cached_property
    def _term_probes(self) -> _ProbeIndex:
        return _ProbeIndex.of([term.probe for term in self.terms])

    @cached_property
    def _direction_items(self) -> tuple[tuple[str, str], ...]:
        return tuple((d, word) for d, words in self.direction_words.items() for word in words)

    @cached_property
    def _direction_probes(self) -> _ProbeIndex:
        return _ProbeIndex.of([word.split(" ")[0] for _, word in self._direction_items])


@dataclass(frozen=True)
class _ProbeIndex:
    """Items (terms, direction words) by probe, a word the text must contain for the item to
    match: which items a text can meet, with one substring search per distinct probe."""

    unprobed: tuple[int, ...]  # items with no probe: always met
    by_probe: dict[str, tuple[int, ...]]  # probe -> its items' indices, ascending

    @classmethod
    def of(cls, probes: list[str]) -> _ProbeIndex:
        by_probe: dict[str, list[int]] = {}
        unprobed = []
        for i, probe in enumerate(probes):
            if probe:
                by_probe.setdefault(probe, []).append(i)
            else:
                unprobed.append(i)
        return cls(tuple(unprobed), {p: tuple(i) for p, i in by_probe.items()})

    def met(self, text: str) -> list[int]:
        """Indices, ascending, of the items whose probe occurs in `text` or that have none."""
        found = [i for probe, items in self.by_probe.items() if probe in text for i in items]
        return sorted([*self.unprobed, *found])


_SEPARATORS = str.maketrans("_-", "  ")


def normalise(text: str) -> str:
    r"""Lower-case, read "_" and "-" as spaces and collapse whitespace: the form words are matched in.

    The same string as `re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", text.lower())).strip()`
    (str.split() splits at exactly the characters `\s` matches), at a third of the cost.
    """
    return " ".join(text.lower().translate(_SEPARATORS).split())


def phrase_regex(phrase: str, plural: bool = True) -> str:
    """A regex matching a normalised phrase as whole words, its last word also in the plural."""
    words = normalise(phrase).split(" ")
    body = r"\s+".join(re.escape(word) for word in words)
    plural = "(?:s|es)?" if plural and words[-1][-1:].isalpha() else ""
    return rf"(?<![a-z0-9²]){body}{plural}(?![a-z0-9²])"


def _fail(path: str, message: str, line: int | None = None) -> NrrInputError:
    return NrrInputError(f"bad rules file: {message}", path=path, line=line)


def _read_toml(path: Path) -> dict[str, Any]:
    shown = str(path)
    if not path.exists():
        raise _fail(shown, "no such file")
    if path.is_dir():
        raise _fail(shown, "is a directory, not a TOML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise _fail(shown, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise _fail(shown, f"cannot be read ({error.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None)
        if line is None:
            found = re.search(r"line (\d+)", str(error))
            line = int(found.group(1)) if found else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise _fail(shown, f"invalid TOML: {reason}", line) from None


def _string_list(value: Any, where: str, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(path, f"{where} must be a list of strings")
    return value


def _parameter_map(value: Any, where: str, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(path, f'{where} must be a table of alias = "UPPER_SNAKE"')
    for alias, name in value.items():
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            raise _fail(
                path, f"{where}.{alias!r}: parameter name must be UPPER_SNAKE, got {name!r}"
            )
    return dict(value)


def _validate(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Check a rules document's shape; return it unchanged or raise NrrInputError naming the fault."""
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _fail(
            path, f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}"
        )
    categories = data.get("categories", {})
    if not isinstance(categories, dict):
        raise _fail(path, "[categories] must be a table of tables")
    for name, body in categories.items():
        if not CATEGORY_NAME.match(name):
            raise _fail(path, f"category name {name!r} must be lower_snake_case")
        if name == "multiple":
            raise _fail(path, "category 'multiple' is reserved")
        if not isinstance(body, dict):
            raise _fail(path, f"[categories.{name}] must be a table")
        extra = set(body) - CATEGORY_KEYS
        if extra:
            raise _fail(path, f"[categories.{name}] has unknown key(s) {sorted(extra)}")
        _string_list(body.get("words", []), f"categories.{name}.words", path)
        _string_list(body.get("heads", []), f"categories.{name}.heads", path)
        for pattern in _string_list(body.get("patterns", []), f"categories.{name}.patterns", path):
            try:
                re.compile(pattern)
            except re.error as error:
                raise _fail(
                    path, f"categories.{name}.patterns: bad regex {pattern!r} ({error})"
                ) from None
        _parameter_map(body.get("parameters", {}), f"categories.{name}.parameters", path)
        if not isinstance(body.get("quantity", False), bool):
            raise _fail(path, f"categories.{name}.quantity must be true or false")
        default = body.get("default_parameter", "")
        if default and (not isinstance(default, str) or not PARAMETER_NAME.match(default)):
            raise _fail(path, f"categories.{name}.default_parameter must be UPPER_SNAKE")
    _parameter_map(data.get("parameters", {}), "parameters", path)
    directions = data.get("directions", {})
    if not isinstance(directions, dict):
        raise _fail(path, "[directions] must be a table")
    for name, words in directions.items():
        if name not in DIRECTIONS:
            raise _fail(path, f"[directions] key {name!r} is not one of {list(DIRECTIONS)}")
        _string_list(words, f"directions.{name}", path)
    for table in WORD_TABLES:
        body = data.get(table, {})
        if not isinstance(body, dict) or set(body) - {"words"}:
            raise _fail(path, f"[{table}] must be a table with one key, words")
        _string_list(body.get("words", []), f"{table}.words", path)
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Extra rules add to the base: new categories, and more words / patterns / parameters for old ones."""
    merged: dict[str, Any] = {
        "categories": {name: dict(body) for name, body in base.get("categories", {}).items()},
        "parameters": {**base.get("parameters", {}), **extra.get("parameters", {})},
        "directions": {k: list(v) for k, v in base.get("directions", {}).items()},
        **{table: {"words": list(base.get(table, {}).get("words", []))} for table in WORD_TABLES},
    }
    for name, body in extra.get("categories", {}).items():
        target = merged["categories"].setdefault(name, {})
        for key in ("words", "patterns", "heads"):
            target[key] = list(target.get(key, [])) + list(body.get(key, []))
        target["parameters"] = {**target.get("parameters", {}), **body.get("parameters", {})}
        for key in ("default_parameter", "quantity"):
            if key in body:
                target[key] = body[key]
    for name, words in extra.get("directions", {}).items():
        merged["directions"][name] = merged["directions"].get(name, []) + list(words)
    for table in WORD_TABLES:
        merged[table]["words"] += list(extra.get(table, {}).get("words", []))
    return merged


def _build(data: dict[str, Any], user_names: set[str]) -> Rules:
    terms: list[Term] = []
    defaults: dict[str, str] = {}
    names: list[str] = [c for c in CATEGORIES if c not in ("multiple",)]
    for name, body in data.get("categories", {}).items():
        if name not in names:
            names.append(name)
        heads = {normalise(word) for word in body.get("heads", [])}
        for alias, parameter in body.get("parameters", {}).items():
            probe = normalise(alias).split(" ")[0]
            terms.append(
                Term(name, phrase_regex(alias), parameter, True, probe=probe, phrase=alias)
            )
        for word in list(body.get("words", [])) + sorted(heads):
            is_head = normalise(word) in heads or name == "other"
            probe = normalise(word).split(" ")[0]
            terms.append(Term(name, phrase_regex(word), "", is_head, probe=probe, phrase=word))
        for pattern in body.get("patterns", []):
            terms.append(Term(name, pattern, is_pattern=True))
        if body.get("default_parameter"):
            defaults[name] = body["default_parameter"]
    return Rules(
        categories=tuple(names),
        terms=tuple(terms),
        default_parameters=defaults,
        parameters={normalise(k): v for k, v in data.get("parameters", {}).items()},
        direction_words={
            k: tuple(normalise(w) for w in v) for k, v in data.get("directions", {}).items()
        },
        option_words=tuple(normalise(w) for w in data.get("options", {}).get("words", [])),
        result_words=tuple(normalise(w) for w in data.get("results", {}).get("words", [])),
        technique_words=tuple(normalise(w) for w in data.get("techniques", {}).get("words", [])),
        ambiguous_words=frozenset(normalise(w) for w in data.get("ambiguous", {}).get("words", [])),
        form_words=tuple(normalise(w) for w in data.get("forms", {}).get("words", [])),
        user_categories=tuple(sorted(user_names)),
        quantities=frozenset(
            name for name, body in data.get("categories", {}).items() if body.get("quantity")
        ),
    )


_BUILTIN: Rules | None = None


def builtin_rules_document() -> dict[str, Any]:
    """The parsed built-in rules.toml shipped in the package."""
    text = package_file("nrr_stats.parser", "rules.toml").read_text(encoding="utf-8")
    return _validate(tomllib.loads(text), "nrr_stats/parser/rules.toml")


def load_rules(extra: str | Path | None = None) -> Rules:
    """Built-in rules, plus a user's TOML rules file adding categories, words, patterns and parameters.

    A bad rules file raises NrrInputError naming the file (and the TOML line when known) and the fault.
    """
    global _BUILTIN
    if extra is None:
        if _BUILTIN is None:
            _BUILTIN = _build(builtin_rules_document(), set())
        return _BUILTIN
    path = Path(extra)
    user = _validate(_read_toml(path), str(path))
    base = builtin_rules_document()
    user_names = set(user.get("categories", {})) - set(base.get("categories", {})) - set(CATEGORIES)
    return _build(_merge(base, user), user_names)


# --- which rules file a command uses ------------------------------------------------------------
RULES_ENV = "NRR_RULES"
CONFIG_NAME = "nrr.toml"  # beside the bank: [parser] rules = "path/to/rules.toml"
EXAMPLES = ("trading", "systems")  # shipped in nrr_stats/parser/examples/


def example_rules_path(name: str) -> Path:
    """The path of a rules file shipped with the package ("trading", "systems")."""
    return package_file("nrr_stats.parser", "examples", f"{name}.toml")


def _named(value: str, base: Path | None) -> Path:
    """A rules file named in $NRR_RULES or a config file: a path (relative to the config file's
    folder), or the name of a shipped example."""
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.exists() and value in EXAMPLES:
        return example_rules_path(value)
    return path


def configured_rules_path(
    explicit: str | Path | None = None, bank: str | None = None
) -> Path | None:
    """The rules file a command uses: `--rules`, else `$NRR_RULES`, else `rules` under `[parser]`
    in `nrr.toml` beside the bank; None for the built-in rules alone."""
    if explicit is not None and str(explicit) != "":
        return _named(str(explicit), None)
    from_env = os.environ.get(RULES_ENV, "").strip()
    if from_env:
        return _named(from_env, None)
    from nrr_stats.bank.location import resolve_bank

    config = resolve_bank(bank).artifacts_stem.parent / CONFIG_NAME
    if not config.is_file():
        return None
    document = _read_toml(config)
    parser = document.get("parser", {})
    value = parser.get("rules") if isinstance(parser, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise NrrInputError(
            "bad config file: [parser] rules must name a rules file", path=str(config)
        )
    return _named(value.strip(), config.parent)


def load_configured_rules(explicit: str | Path | None = None, bank: str | None = None) -> Rules:
    """The rules of `configured_rules_path` (the built-in rules when none is named)."""
    return load_rules(configured_rules_path(explicit, bank))
