"""`nrr report`: its numbers are the engine's (patterns, base rate), prior-only cells are marked,
every text from the bank is escaped. The fitted-bank report is in test_models_fit.py (its fit)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from core_helpers import SEED_LOG, run_nrr, write_log
from hypothesis import given
from hypothesis import strategies as st

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_logs
from nrr_stats.check import Checker, cell_json, check_proposal, patterns
from nrr_stats.models.rate import WeightedPoints
from nrr_stats.sessions import list_sessions

HOSTILE = '</script><img src=x onerror=alert(1)> $x^$ & "q"'
HOSTILE_NAME = '<script>alert("name")</script>$'


@pytest.fixture(scope="module")
def two_session_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed log, and a small second log under a hostile name with a hostile description;
    one recorded decision with a hostile proposal."""
    folder = tmp_path_factory.mktemp("report")
    path = folder / "bank.db"
    other = write_log(
        folder / "results.tsv",
        [
            "b1\t1.000\t44.0\tkeep\tbaseline",
            "b2\t0.990\t44.0\tkeep\tincrease LR to 0.04",
            f"b3\t1.010\t44.0\tdiscard\t{HOSTILE}",
            "b4\t0.000\t0.0\tcrash\tdouble model width",
            "b5\t0.995\t44.0\tdiscard\tincrease LR to 0.08",
            "b6\t0.999\t44.0\tdiscard\tadd dropout 0.1",
        ],
    )
    with open_bank(path) as bank:
        ingest_logs(bank, [SEED_LOG])
        ingest_logs(bank, [other], session_name=HOSTILE_NAME)
        check_proposal(f"increase LR to 0.1 {HOSTILE}", bank=bank, record=True)
    return path


class _Rows(HTMLParser):
    """The cell rows of the report's table: (class, category, direction, [cell texts])."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and "data-category" in attributes:
            self.rows.append(
                (attributes["class"], attributes["data-category"], attributes["data-direction"], [])
            )
        elif tag == "td" and self.rows and self._cell is None:
            self._cell = []
        elif tag == "tr":
            self.rows.append(("", "", "", []))  # a header or category row: ends the last

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1][3].append("".join(self._cell))
            self._cell = None


def report(bank: Path, tmp_path: Path, *args: str) -> tuple[str, dict]:
    out = tmp_path / "report.html"
    run = run_nrr("report", "--bank", str(bank), "--html", str(out), *args)
    assert run.code == 0, run.err
    page = out.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="nrr-report-data">(.*?)</script>', page)
    return page, json.loads(found.group(1))


def table_rows(page: str) -> dict[tuple[str, str], tuple[str, list[str]]]:
    parser = _Rows()
    parser.feed(page)
    return {(c, d): (kind, cells) for kind, c, d, cells in parser.rows if c}


@pytest.mark.parametrize("prior", [True, False], ids=["population-prior", "conjugate"])
@pytest.mark.parametrize("session", ["1", "2"])
def test_report_numbers_are_the_engines_patterns(two_session_bank, tmp_path, prior, session):
    args = ["--session", session, "--all"] + ([] if prior else ["--no-population-prior"])
    page, data = report(two_session_bank, tmp_path, *args)
    engine = patterns(
        two_session_bank, session=session, use_population_prior=prior, prior_cells=True
    )
    expected = {(c.category, c.direction): cell_json(c) for c in engine}
    shown = {(c["category"], c["direction"]): c for c in data["cells"]}
    assert shown.keys() == expected.keys() and len(data["cells"]) == len(engine)
    for key, cell in shown.items():
        assert {k: v for k, v in cell.items() if k != "prior_only"} == expected[key]
    rows = table_rows(page)
    assert rows.keys() == expected.keys()
    for key, (_, texts) in rows.items():
        cell = next(c for c in engine if (c.category, c.direction) == key)
        low, high = cell.interval
        assert texts[1] == str(cell.n) and texts[2] == str(cell.k)
        assert texts[4] == f"{cell.mean:.3f}" and texts[5] == f"[{low:.3f}, {high:.3f}]"
    # Grouped by category: each category's rows are contiguous in the table and the JSON.
    order = [c["category"] for c in data["cells"]]
    assert order == sorted(order)


def test_prior_only_cells_are_the_ones_without_rows_in_the_session(two_session_bank, tmp_path):
    page, data = report(two_session_bank, tmp_path, "--session", "2", "--all")
    with open_bank(two_session_bank) as bank:
        rows = bank.experiments(2)
    counted = {
        (r["category"], r["direction"]) for r in rows if r["status"] in ("keep", "discard", "crash")
    }
    marks = {(c["category"], c["direction"]): c["prior_only"] for c in data["cells"]}
    assert set(marks.values()) == {True, False}  # both kinds occur
    for key, alone in marks.items():
        assert alone == (key not in counted)
    for key, (kind, texts) in table_rows(page).items():
        assert (kind == "prior-only") == marks[key] and texts[-1] == (
            "prior only" if marks[key] else "data"
        )
    said = re.search(r"(\d+) of (\d+) cells\s+have no rows in this session", page)
    assert said and int(said.group(1)) == sum(marks.values())


@pytest.mark.parametrize("prior", [True, False], ids=["population-prior", "conjugate"])
def test_base_rate_is_the_one_check_compares_with(two_session_bank, tmp_path, prior):
    args = ["--session", "1"] + ([] if prior else ["--no-population-prior"])
    page, data = report(two_session_bank, tmp_path, *args)
    base = data["base_rate"]
    with Checker(two_session_bank, use_population_prior=prior) as checker:
        answered = checker.check("increase LR to 0.1", session="1", record=False)
        for category, direction in [("learning_rate", "increase"), ("optimizer", "replace")]:
            assert checker.answer("1", category, direction).base_rate == base["mean"]
    assert answered["base_rate"] == round(base["mean"], 4)
    assert base["interval"][0] < base["mean"] < base["interval"][1]
    with open_bank(two_session_bank) as bank:
        statuses = [r["status"] for r in bank.experiments(1)]
    assert base["n"] == sum(s in ("keep", "discard", "crash") for s in statuses)
    assert base["k"] == statuses.count("keep") and base["crashes"] == statuses.count("crash")
    assert f"Base rate <b>{base['mean']:.3f}</b>" in page
    # The trajectory runs from the prior alone to every row, ending at the base rate.
    trajectory = data["trajectory"]
    assert trajectory[0]["rows"] == 0 and trajectory[0]["observed_n"] == 0
    assert trajectory[-1]["rows"] == len(statuses)
    assert [p["rows"] for p in trajectory] == sorted({p["rows"] for p in trajectory})
    assert trajectory[-1]["base_mean"] == pytest.approx(base["mean"], abs=1e-9)
    listed = next(s for s in list_sessions(open_bank(two_session_bank)) if s["id"] == 1)
    assert data["observed"]["rate"] == listed["keep_rate"]
    assert data["observed"]["interval"] == listed["interval"]


def test_hostile_texts_from_the_bank_are_escaped(two_session_bank, tmp_path):
    page, data = report(two_session_bank, tmp_path, "--session", "2")
    body = page.split('<script type="application/json"', 1)[0]
    assert "<script" not in page.replace('<script type="application/json"', "")
    assert "<img src=x" not in page and HOSTILE not in page and HOSTILE_NAME not in page
    assert html.escape(HOSTILE_NAME) in body  # the session's name, shown escaped
    assert html.escape(HOSTILE[:60]) in body  # the recorded proposal
    assert page.count("</script>") == 1
    assert data["session"]["name"] == HOSTILE_NAME  # the embedded JSON holds it intact


def test_a_bank_without_a_fit_says_so(two_session_bank, tmp_path):
    page, data = report(two_session_bank, tmp_path)
    assert data["fit"]["status"] == "none" and 'id="no-fit"' in page
    assert "population prior" in page and 'id="fit-summary"' not in page


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    st.data(),
)
def test_weighted_points_read_their_quantiles_and_mean(values, draw):
    weights = draw.draw(st.lists(st.floats(0.01, 10.0), min_size=len(values), max_size=len(values)))
    rate = WeightedPoints.of(np.array(values), np.array(weights))
    w = np.array(weights) / np.sum(weights)
    assert rate.mean() == pytest.approx(float(np.sum(w * np.array(values))), abs=1e-12)
    for q in (0.05, 0.5, 0.95):
        x = rate.ppf(q)
        below = float(np.sum(w[np.array(values) < x]))
        assert below < q + 1e-9 <= float(np.sum(w[np.array(values) <= x])) + 2e-9
        assert rate.cdf(x) == pytest.approx(float(np.sum(w[np.array(values) <= x])), abs=1e-9)
    low, high = rate.interval(0.9)
    assert low <= high and low == rate.ppf(0.05) and high == rate.ppf(0.95)


def test_an_unreadable_stored_fit_is_said_and_the_rest_is_shown(tmp_path):
    bank_path = tmp_path / "bank.db"
    with open_bank(bank_path) as bank:
        ingest_logs(bank, [SEED_LOG])
        bank.posterior_path.write_bytes(b"not a netCDF file")
    page, data = report(bank_path, tmp_path)
    assert data["fit"]["error"] and "cannot be read" in page
    assert 'id="fit-summary"' not in page and data["cells"] and data["base_rate"]
