"""What a cold `nrr check` process loads: no typer application, no pydantic, not the
`scipy.special` package (its compiled ufuncs only: the same functions) nor scipy's package setup
(which loads subprocess), not numpy.ma (which np.quantile and np.unique load), not socket (the
decision queue's tag, needed only when claims are left to fold), not hashlib or secrets on
the conjugate path (nothing is hashed or given a random name), not argparse (the fast path
reads its plain arguments as argparse did), never PyMC; the fast path answers exactly as the
typer command does; and the `nrr` process, which skips the interpreter's teardown, still prints
its whole answer, runs atexit handlers and exits with the verdict."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import SEED_LOG, run_nrr


@pytest.fixture(scope="module")
def seed_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("cold") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


def loaded_by_a_cold_check(
    bank: Path, modules: tuple[str, ...], *extra: str, without_site: bool = False
) -> list[str]:
    """Which of `modules` a fresh process has loaded after one `nrr check` (main(), as `nrr`
    runs it). Without `site` the process gets its sys.path by hand: a `.pth` file may import
    modules first, which would hide a regression."""
    prelude = "import sys\n"
    if without_site:
        import nrr_stats

        paths = [str(Path(nrr_stats.__file__).parents[1]), *(p for p in sys.path if p)]
        prelude += f"sys.path[:0] = {paths!r}\n"
    argv = ["check", "Increase LR to 0.02", "--bank", str(bank), *extra]
    code = prelude + (
        "from nrr_stats.cli import main\n"
        f"code = main({argv!r})\n"
        f"loaded = sorted(m for m in {modules!r} if m in sys.modules)\n"
        "print('LOADED', repr(loaded), code)\n"
    )
    flags = ["-S"] if without_site else []
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "LOADED [" in done.stdout, done.stdout + done.stderr
    return ast.literal_eval(done.stdout.split("LOADED ", 1)[1].rsplit(" ", 1)[0])


def test_a_cold_check_loads_no_typer_pydantic_or_scipy_special(seed_bank: Path) -> None:
    heavy = ("typer", "click", "pydantic", "scipy.special", "scipy.stats", "pymc", "arviz")
    assert loaded_by_a_cold_check(seed_bank, (*heavy, "numpy.ma")) == []


def test_a_cold_check_loads_no_scipy_package_setup_subprocess_socket_or_argparse(
    seed_bank: Path,
) -> None:
    off = ("scipy", "scipy._lib", "scipy._lib._testutils", "subprocess", "socket", "argparse")
    assert loaded_by_a_cold_check(seed_bank, (*off, "gettext", "locale")) == []


def test_a_cold_conjugate_check_that_records_loads_no_hashlib_or_secrets(seed_bank: Path) -> None:
    """Nothing is hashed and no staging or claim file is named in a recorded check of a short
    proposal: hashlib (OpenSSL's ~2 ms), secrets and hmac load on first use only. (The
    population prior's novel-name draws load numpy.random, which imports secrets itself.)"""
    off = ("hashlib", "_hashlib", "secrets", "hmac", "numpy.random")
    assert loaded_by_a_cold_check(seed_bank, off, "--no-population-prior") == []


def test_a_long_proposal_is_still_cut_with_its_sha256() -> None:
    import hashlib

    from nrr_stats.bank.store import DECISION_PROPOSAL_CHARS, capped_decision

    long = "Increase LR " * (DECISION_PROPOSAL_CHARS // 6)
    text, _ = capped_decision(long, {"verdict": "proceed"})
    assert text.startswith(long[:DECISION_PROPOSAL_CHARS])
    assert text.endswith(f"sha256 {hashlib.sha256(long.encode()).hexdigest()}]")


def test_a_cold_check_loads_no_importlib_resources_or_tempfile(seed_bank: Path) -> None:
    """The shipped rules and models are read beside the package's files (importlib.resources
    brings tempfile, ~6 ms), tempfile only when a file is written."""
    off = ("importlib.resources", "importlib.resources._common", "tempfile")
    assert loaded_by_a_cold_check(seed_bank, off, without_site=True) == []


def test_the_ufuncs_are_scipy_specials_own_and_scipy_still_imports() -> None:
    code = (
        "import sys\n"
        "from nrr_stats.models import special\n"
        "assert 'scipy.special' not in sys.modules and 'scipy' not in sys.modules\n"
        "import scipy.special, scipy.stats\n"
        "assert special.betainc is scipy.special.betainc and special.digamma is scipy.special.digamma\n"
        "assert special.betaincinv is scipy.special.betaincinv and special.expit is scipy.special.expit\n"
        "print('OK', round(float(scipy.stats.beta(2, 3).ppf(0.5)), 6), special.betaln(2.0, 3.0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("OK 0.385728"), done.stdout + done.stderr


def test_scipy_imported_after_the_ufuncs_is_whole_and_answers_as_usual() -> None:
    """The compiled modules loaded under bare packages are the ones the real packages then use:
    LowLevelCallable is one class (scipy.special.ellip_normal integrates through it)."""
    probe = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import scipy, scipy.special, scipy.stats, scipy.integrate\n"
        "from scipy._lib._ccallback import LowLevelCallable\n"
        "assert LowLevelCallable is scipy.LowLevelCallable and scipy.__version__\n"
        "print(repr(scipy.special.ellip_normal(5, 8, 3, 7)), repr(scipy.stats.beta(2, 3).sf(0.3)),"
        " scipy.integrate.quad(lambda x: x * x, 0, 1)[0])\n"
    )
    after = subprocess.run(
        [sys.executable, "-c", "from nrr_stats.models import special\n" + probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    usual = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert after.returncode == 0 and usual.returncode == 0, after.stderr + usual.stderr
    assert after.stdout == usual.stdout and after.stdout.count(" ") == 2


def _run_nrr_process(args: list[str], before: str = "") -> subprocess.CompletedProcess:
    """The `nrr` console script's entry point in a process of its own."""
    code = f"import sys\n{before}from nrr_stats.cli import run\nsys.argv[0] = 'nrr'\nrun()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_the_nrr_process_prints_the_whole_answer_and_exits_with_the_verdict(
    seed_bank: Path,
) -> None:
    done = _run_nrr_process(
        ["check", "Increase LR to 0.02", "--bank", str(seed_bank)],
        before="import atexit\natexit.register(lambda: print('AT EXIT', file=sys.stderr))\n",
    )
    answer = json.loads(done.stdout)
    assert done.returncode == {"proceed": 0, "caution": 1, "avoid": 2}[answer["verdict"]]
    assert done.stderr.endswith("AT EXIT\n"), done.stderr
    missing = _run_nrr_process(["check", "x", "--bank", str(seed_bank.parent / "none.db")])
    assert missing.returncode == 3 and "no bank here yet" in missing.stderr


def test_a_check_in_process_leaves_the_garbage_collector_as_it_found_it(seed_bank: Path) -> None:
    import gc

    assert gc.isenabled()
    assert run_nrr("check", "Increase LR to 0.02", "--bank", str(seed_bank)).code in (0, 1, 2)
    assert gc.isenabled()
    gc.disable()
    try:
        run_nrr("check", "Increase LR to 0.02", "--bank", str(seed_bank))
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "args",
    [
        ["Switch to AdamW"],
        ["Increase LR to 0.02", "--brief"],
        ["Increase LR to 0.02", "--no-population-prior"],
        ["--description", "Reduce batch size to 64", "--session", "1"],
    ],
)
def test_the_fast_path_answers_as_the_typer_command(seed_bank: Path, args: list[str]) -> None:
    from nrr_stats.cli import _typer_main, main

    fast = run_nrr("check", *args, "--bank", str(seed_bank))
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        code = _typer_main(["check", *args, "--bank", str(seed_bank)])
    assert fast.code == code and main is not None
    if "--brief" in args:
        assert fast.out == out.getvalue()
    else:
        a, b = json.loads(fast.out), json.loads(out.getvalue())
        a.pop("decision_id"), b.pop("decision_id")
        assert a == b


def test_help_and_bad_options_fall_back_to_typer(seed_bank: Path) -> None:
    helped = run_nrr("check", "-h")
    assert helped.code == 0 and "--proposal-file" in helped.out and "Example" in helped.out
    bad = run_nrr("check", "x", "--bank", str(seed_bank), "--no-such-option")
    assert bad.code == 3 and "no-such-option" in bad.err


def _argparse_reading(argv: list[str]) -> dict | None:
    """What the fast path's former argparse parser made of `argv` (None: an error)."""
    import argparse

    class Strict(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            raise ValueError(message)

    parser = Strict(prog="nrr check", add_help=False, allow_abbrev=False)
    parser.add_argument("proposal", nargs="?")
    parser.add_argument("--proposal-file", "-f", type=Path)
    parser.add_argument("--description")
    parser.add_argument("--bank")
    parser.add_argument("--session")
    parser.add_argument("--rules", type=Path)
    parser.add_argument("--no-population-prior", action="store_true")
    parser.add_argument("--brief", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    try:
        return vars(parser.parse_args(argv))
    except ValueError:
        return None


def test_the_fast_path_reads_what_it_accepts_as_argparse_does() -> None:
    import itertools

    from nrr_stats.cli.fast import parse_plain

    tokens = [
        "Increase LR to 0.02", "-", "", "--bank", "b.db", "--bank=b.db", "--bank=", "-f",
        "p.txt", "--proposal-file", "--description", "--session", "1", "--rules=r.toml",
        "--brief", "--no-record", "--no-population-prior", "--brief=1", "--", "-x", "-1",
        "--ban", "-fp.txt", "-f=p.txt", "-LR = 0.01\n+LR = 0.02", "--session=-1", "a=b", "-0.5", "-.5", "-1.", "-1\n", "-- x", "-fix LR", "--b x",
        "-f p",
    ]  # fmt: skip
    accepted = 0
    for size in range(4):
        for argv in itertools.product(tokens, repeat=size):
            fast = parse_plain(list(argv))
            if fast is not None:
                accepted += 1
                assert fast == _argparse_reading(list(argv)), argv
    assert accepted > 2000
    plain = [
        ["Increase LR to 0.02", "--bank", "b.db"],
        ["-", "--bank=b.db", "--session", "loop1", "--brief"],
        ["--proposal-file", "p.diff", "--description", "Raise LR", "--no-record"],
        ["-f", "-", "--rules", "r.toml", "--no-population-prior"],
        ["--description", "Reduce batch size to 64", "--session", "1"],
    ]
    for argv in plain:
        assert parse_plain(argv) == _argparse_reading(argv) is not None, argv
