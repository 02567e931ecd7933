"""Real PyMC fits, kept tiny: recovery of a bad and a good cell, storage, and a small SBC.

One nutpie model is compiled for the whole module and reused with new counts.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.posterior import load_posterior, npz_path_for, predict_keep

pytestmark = pytest.mark.slow


def tiny_table() -> ExperimentTable:
    """Three sessions; LR increases nearly always fail, optimizer swaps mostly succeed."""
    per_session = (
        [("learning_rate", "increase", "LR", "keep")] * 1
        + [("learning_rate", "increase", "LR", "discard")] * 13
        + [("optimizer", "replace", "", "keep")] * 10
        + [("optimizer", "replace", "", "discard")] * 3
        + [("data", "add", "", "keep")] * 3
        + [("data", "add", "", "crash")] * 2
        + [("data", "add", "", "discard")] * 3
    )
    return ExperimentTable.from_records(
        {"session": s, "category": c, "direction": d, "parameter": p, "status": x}
        for s in ("s1", "s2", "s3")
        for c, d, p, x in per_session
    )


@pytest.fixture(scope="module")
def compiled():
    from nrr_stats.models.fit import build_model, compile_model, model_data

    warnings.filterwarnings("ignore", category=FutureWarning)
    return compile_model(build_model(model_data(tiny_table())))


@pytest.fixture(scope="module")
def fitted(compiled):
    from nrr_stats.models.fit import fit_hierarchy

    return fit_hierarchy(
        tiny_table(), draws=300, chains=2, tune=400, seed=1, progress=False, compiled=compiled
    )


def test_fit_separates_a_clearly_bad_cell_from_a_clearly_good_one(fitted):
    table = tiny_table()
    bad = predict_keep(fitted.posterior, table, "s1", "learning_rate", "increase", "LR")
    good = predict_keep(fitted.posterior, table, "s1", "optimizer", "replace")
    assert bad.source == good.source == "posterior"
    assert bad.interval[1] < good.interval[0]
    assert bad.p_keep < 0.2 < 0.55 < good.p_keep
    assert bad.prob_below_base > 0.8 > 0.2 > good.prob_below_base
    assert not bad.stale and bad.n_new == 0 and bad.ess_share == pytest.approx(1.0)
    crashy = predict_keep(fitted.posterior, table, "s1", "data", "add")
    assert crashy.p_crash > bad.p_crash


def test_stored_fit_round_trips_and_carries_its_metadata(fitted, tmp_path):
    import arviz as az

    from nrr_stats.models.fit import save_fit

    path = save_fit(fitted, tmp_path / "bank.posterior.nc")
    assert path.is_file() and npz_path_for(path).is_file()
    assert not list(tmp_path.glob("*.tmp"))
    loaded = load_posterior(path)
    for name, values in fitted.posterior.draws.items():
        assert np.array_equal(loaded.draws[name], values)
    assert loaded.cells == fitted.posterior.cells and loaded.sessions == fitted.posterior.sessions
    assert loaded.passed == fitted.passed
    table = tiny_table()
    query = ("s2", "data", "add", "")
    assert predict_keep(loaded, table, *query) == predict_keep(fitted.posterior, table, *query)

    attrs = az.from_netcdf(path).posterior.attrs
    assert attrs["n_experiments"] == len(table)
    assert attrs["model_version"] == loaded.meta["model_version"]
    assert bool(attrs["passed_diagnostics"]) == fitted.passed
    assert json.loads(attrs["diagnostics"])["divergences"] == fitted.diagnostics["divergences"]
    assert json.loads(attrs["sessions"]) == ["s1", "s2", "s3"]


def test_diagnostics_mark_a_short_fit_as_failed(compiled):
    from nrr_stats.models.fit import MIN_ESS, fit_hierarchy

    short = fit_hierarchy(
        tiny_table(), draws=40, chains=2, tune=60, seed=2, progress=False, compiled=compiled
    )
    assert not short.passed and short.posterior.meta["passed_diagnostics"] is False
    assert short.diagnostics["min_ess_bulk"] < MIN_ESS
    assert any("ESS" in failure for failure in short.diagnostics["failures"])


def test_small_sbc_covers_at_roughly_the_nominal_rate(compiled):
    from nrr_stats.models.calibration import run_sbc
    from nrr_stats.models.fit import model_data

    result = run_sbc(
        model_data(tiny_table()), 20, seed=7, draws=200, chains=2, tune=300, compiled=compiled
    )
    hits90 = np.concatenate([np.asarray(v) for v in result.hits90.values()])
    hits50 = np.concatenate([np.asarray(v) for v in result.hits50.values()])
    # 60 interval checks: "clearly off" means about three standard errors from nominal.
    assert hits90.mean() >= 0.78
    assert 0.3 <= hits50.mean() <= 0.7


def test_fit_command_stores_a_passing_fit_and_exits_zero(fitted, tmp_path, monkeypatch, capsys):
    from nrr_stats.bank import open_bank
    from nrr_stats.cli import main
    from nrr_stats.models import fit as fit_module

    bank_path = tmp_path / "bank.db"
    open_bank(bank_path).close()
    passing = dataclasses.replace(
        fitted, passed=True, diagnostics={**fitted.diagnostics, "failures": []}
    )
    monkeypatch.setattr(fit_module, "fit_hierarchy", lambda table, **kw: passing)
    assert main(["fit", "--bank", str(bank_path), "--no-progress"]) == 0
    with open_bank(bank_path) as bank:
        stored = bank.posterior_path
    assert load_posterior(stored).sessions == fitted.posterior.sessions
    assert "stored:" in capsys.readouterr().out


def test_fit_command_keeps_the_good_fit_and_exits_one_when_diagnostics_fail(
    fitted, tmp_path, monkeypatch, capsys
):
    from nrr_stats.bank import open_bank
    from nrr_stats.cli import main
    from nrr_stats.models import fit as fit_module
    from nrr_stats.models.posterior import failed_path_for

    bank_path = tmp_path / "bank.db"
    open_bank(bank_path).close()
    with open_bank(bank_path) as bank:
        good_path = bank.posterior_path
    good = dataclasses.replace(fitted, passed=True)
    monkeypatch.setattr(fit_module, "fit_hierarchy", lambda table, **kw: good)
    assert main(["fit", "--bank", str(bank_path), "--no-progress"]) == 0
    before = good_path.with_suffix(".npz").read_bytes()

    failures = ["bulk ESS 120 < 400 at sigma_cat"]
    bad_meta = {**fitted.posterior.meta, "passed_diagnostics": False}
    bad = dataclasses.replace(
        fitted,
        passed=False,
        diagnostics={**fitted.diagnostics, "failures": failures, "passed": False},
        posterior=dataclasses.replace(fitted.posterior, meta=bad_meta),
    )
    monkeypatch.setattr(fit_module, "fit_hierarchy", lambda table, **kw: bad)
    capsys.readouterr()
    assert main(["fit", "--bank", str(bank_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "failed its diagnostics" in err and "bulk ESS 120" in err and "nrr fit --draws" in err
    assert good_path.with_suffix(".npz").read_bytes() == before
    assert load_posterior(failed_path_for(good_path)).passed is False


def test_fit_command_input_errors_exit_three_with_one_line(tmp_path, capsys):
    from nrr_stats.bank import open_bank
    from nrr_stats.cli import main

    assert main(["fit", "--bank", str(tmp_path / "absent.db")]) == 3
    assert "no bank here yet" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    open_bank(empty).close()
    assert main(["fit", "--bank", str(empty)]) == 3
    err = capsys.readouterr().err
    assert "no keep/discard/crash experiments" in err and len(err.strip().splitlines()) == 1
    assert main(["fit", "--bank", str(empty), "--sampler", "bogus"]) == 3
    assert "unknown sampler" in capsys.readouterr().err


def test_report_of_a_fitted_bank_shows_the_stored_fit_as_an_az_summary(fitted, tmp_path):
    """`nrr report` on a bank with a stored fit: the az.summary table (r_hat, ESS) read from
    the netCDF, and the base rate the fit answers with."""
    import re

    import arviz as az
    from core_helpers import SEED_LOG, run_nrr

    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_logs
    from nrr_stats.check import Checker
    from nrr_stats.models.fit import save_fit

    bank_path = tmp_path / "bank.db"
    with open_bank(bank_path) as bank:
        ingest_logs(bank, [SEED_LOG])
        stored = save_fit(fitted, bank.posterior_path)
    out = tmp_path / "report.html"
    run = run_nrr("report", "--bank", str(bank_path), "--html", str(out))
    assert run.code == 0, run.err
    page = out.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="nrr-report-data">(.*?)</script>', page)
    data = json.loads(found.group(1))
    assert data["prior_source"] == "fit" and data["fit"]["status"] == "fit"
    table = re.search(r'<table id="fit-summary">(.*?)</table>', page).group(1)
    header = re.findall(r"<th[^>]*>(.*?)</th>", table)
    assert header[0] == "parameter" and header[-3:] == ["ess_bulk", "ess_tail", "r_hat"]
    assert {"mean", "sd", "hdi_5%", "hdi_95%"} <= set(header)
    expected = az.summary(
        az.from_netcdf(stored),
        var_names=["alpha", "sigma_sess", "nu"],
        hdi_prob=0.9,
        round_to="none",
    )
    for name in expected.index:
        row = re.search(rf'<tr><td class="text">{name}</td>(.*?)</tr>', table).group(1)
        values = dict(zip(header[1:], re.findall(r"<td>(.*?)</td>", row), strict=True))
        assert float(values["mean"]) == pytest.approx(expected.loc[name, "mean"], abs=1.5e-3)
        assert float(values["r_hat"]) == pytest.approx(expected.loc[name, "r_hat"], abs=1.5e-3)
        assert float(values["ess_bulk"]) == pytest.approx(expected.loc[name, "ess_bulk"], abs=1)
    assert "b_cell[learning_rate/increase]" in page  # the group effects, by the fit's names
    with Checker(bank_path) as checker:
        answer = checker.answer(None, "learning_rate", "increase")
    assert answer.source == "fit" and answer.base_rate == data["base_rate"]["mean"]


# -- fits that pass or say why (issue 16 item 3) -------------------------------------------------


def test_retry_settings_scale_draws_to_the_ess_shortfall_and_raise_target_accept_on_divergences():
    from nrr_stats.models.fit import Attempt, retry_settings

    base = Attempt(draws=100, tune=500, target_accept=0.9, seed=0)
    ok = {"max_rhat": 1.0, "min_ess_bulk": 1000.0, "min_ess_tail": 1000.0, "divergences": 0}
    short = retry_settings(base, {**ok, "min_ess_bulk": 300.0})  # needs 1.6x: at least 2x
    assert (short.draws, short.tune, short.target_accept, short.seed) == (200, 1000, 0.9, 1)
    assert retry_settings(base, {**ok, "min_ess_tail": 150.0}).draws == 320  # 1.2 * 400 / 150
    assert retry_settings(base, {**ok, "min_ess_tail": 12.0}).draws == 400  # capped at 4x
    assert retry_settings(base, {**ok, "max_rhat": 1.03}).draws == 200
    diverged = retry_settings(base, {**ok, "divergences": 3})
    assert diverged.target_accept == 0.95 and diverged.draws == 150
    assert retry_settings(diverged, {**ok, "divergences": 1}).target_accept == 0.99
    top = Attempt(draws=100, tune=500, target_accept=0.99, seed=0)
    assert retry_settings(top, {**ok, "divergences": 1}).target_accept == 0.99


def test_a_short_fit_names_its_failing_quantities_worst_first(compiled):
    from nrr_stats.models.fit import FREE_VARIABLES, MIN_ESS, NAMED_FAILURES, fit_hierarchy

    short = fit_hierarchy(
        tiny_table(), draws=40, chains=2, tune=60, seed=2, progress=False, compiled=compiled
    )
    failing = short.diagnostics["failing"]["ess_bulk"]
    values = [value for _, value in failing["worst"]]
    assert failing["count"] >= len(values) >= 1 and len(values) <= NAMED_FAILURES
    assert values == sorted(values) and all(v < MIN_ESS for v in values)
    assert values[0] == pytest.approx(short.diagnostics["min_ess_bulk"])
    names = [name for name, _ in failing["worst"]]
    for name in names:  # a variable, or a vector's element named by its coordinate
        base, _, label = name.partition("[")
        assert base in FREE_VARIABLES
        if label:
            values_of = short.idata.posterior[base]
            (dim,) = [d for d in values_of.dims if d not in ("chain", "draw")]
            assert label.removesuffix("]") in [str(c) for c in values_of.coords[dim].values]
    said = next(f for f in short.diagnostics["failures"] if f.startswith("bulk ESS"))
    assert names[0] in said and f"{values[0]:.0f}" in said


def test_a_failing_fit_is_retried_with_its_remedy_and_stored_where_its_outcome_belongs(
    compiled, tmp_path
):
    from nrr_stats.models.fit import fit_and_store
    from nrr_stats.models.posterior import failed_path_for

    told = []
    target = tmp_path / "bank.posterior.nc"
    result, stored = fit_and_store(
        tiny_table(),
        target,
        draws=40,
        tune=60,
        chains=2,
        seed=2,
        progress=False,
        compiled=compiled,
        retries=2,
        on_retry=lambda failed, following: told.append((failed, following)),
    )
    attempts = result.posterior.meta["attempts"]
    assert attempts[0]["draws"] == 40 and attempts[0]["failures"]  # too short to pass
    assert len(told) == len(attempts) - 1 >= 1
    for (failed, following), later in zip(told, attempts[1:], strict=True):
        assert failed.failures and following.draws == later["draws"] > failed.draws
        assert following.tune == later["tune"] > failed.tune
    published = load_posterior(stored.where)
    assert published.meta["attempts"] == attempts
    if result.passed:  # the retry passed: it answers, and no failed fit is kept
        assert stored.where == str(npz_path_for(target)) and not attempts[-1]["failures"]
        assert not npz_path_for(failed_path_for(target)).exists()
    else:  # it still fails after every retry: stored apart, never answering
        assert len(attempts) == 3 and stored.where == str(npz_path_for(failed_path_for(target)))
        assert not npz_path_for(target).exists()


def test_a_fit_that_still_fails_says_what_failed_what_it_tried_and_the_remedy(
    fitted, tmp_path, monkeypatch, capsys
):
    from nrr_stats.bank import open_bank
    from nrr_stats.cli import main
    from nrr_stats.models import fit as fit_module

    bank_path = tmp_path / "bank.db"
    open_bank(bank_path).close()
    failing = {"count": 7, "worst": [["z_sess[s2]", 1.034], ["sigma_sess", 1.021]]}
    diagnostics = {
        **fitted.diagnostics,
        "max_rhat": 1.034,
        "min_ess_bulk": 900.0,
        "min_ess_tail": 900.0,
        "divergences": 0,
        "failures": [f"R-hat > 1.01 at {fit_module._listed(failing, '.3f')}"],
        "passed": False,
    }
    bad = dataclasses.replace(
        fitted,
        passed=False,
        diagnostics=diagnostics,
        posterior=dataclasses.replace(
            fitted.posterior, meta={**fitted.posterior.meta, "passed_diagnostics": False}
        ),
    )
    asked = []
    monkeypatch.setattr(fit_module, "fit_hierarchy", lambda table, **kw: asked.append(kw) or bad)
    code = main(["fit", "--bank", str(bank_path), "--no-progress", "--draws", "300"])
    err = capsys.readouterr().err
    assert code == 1
    assert [kw["draws"] for kw in asked] == [300, 600, 1200]  # R-hat short: twice the draws
    assert err.count("retrying with") == 2
    assert "after 3 tries" in err and "z_sess[s2] 1.034, sigma_sess 1.021 (+5 more)" in err
    assert "Remedy: run `nrr fit --draws 2400 --tune 4000`" in err  # warm-up: 500, doubled


@pytest.mark.parametrize(
    "args, said",
    [
        (["--target-accept", "1.5"], "--target-accept must be in [0.5, 1)"),
        (["--retries", "-1"], "--retries must be 0 or more"),
    ],
)
def test_fit_settings_out_of_range_exit_three_with_one_line(tmp_path, capsys, args, said):
    from core_helpers import SEED_LOG

    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_log
    from nrr_stats.cli import main

    bank_path = tmp_path / "bank.db"
    with open_bank(bank_path) as bank:
        ingest_log(bank, SEED_LOG)
    assert main(["fit", "--bank", str(bank_path), *args]) == 3
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
