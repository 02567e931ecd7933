"""Hostile bank addresses through `nrr ingest --bank`: one line, exit 3, no traceback, no password shown."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

SECRET = "s3cr3t-pw"
LOG = "commit\tval_bpb\tstatus\tdescription\na1\t1.0\tkeep\tbaseline\na2\t0.9\tdiscard\tincrease LR to 0.04\n"


def _nrr(*args: str) -> tuple[int, str, str]:
    from nrr_stats.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "make_bank, fault",
    [
        (lambda tmp: str(tmp), "directory"),
        (lambda tmp: _text_file(tmp), "not a database"),
        (lambda tmp: f"postgresql://agent:{SECRET}@127.0.0.1:1/bank", "cannot connect"),
        (lambda tmp: f"postgresql://agent:{SECRET}@127.0.0.1:notaport/bank", "cannot connect"),
        (lambda tmp: f"postgresql://agent:{SECRET}@[::1/bank", "cannot connect"),
        (
            lambda tmp: f"postgresql://127.0.0.1:1/bank?password={SECRET}&sslmode=bogus",
            "cannot connect",
        ),
        (lambda tmp: f"mysql://agent:{SECRET}@db/bank", "unsupported bank URL scheme"),
    ],
    ids=["directory", "text-file", "refused", "bad-port", "bad-host", "bad-option", "other-scheme"],
)
def test_a_bad_bank_address_is_one_line_and_exit_3(tmp_path: Path, make_bank, fault):
    log = tmp_path / "results.tsv"
    log.write_text(LOG, encoding="utf-8")
    bank = make_bank(tmp_path)
    code, out, err = _nrr("ingest", str(log), "--bank", bank)
    assert code == 3
    assert fault in err
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in out + err
    assert "Traceback" not in err


def _text_file(tmp: Path) -> str:
    path = tmp / "notes.db"
    path.write_text("this is not a database\n" * 100, encoding="utf-8")
    return str(path)


def test_a_text_file_named_as_bank_is_left_untouched(tmp_path: Path):
    log = tmp_path / "results.tsv"
    log.write_text(LOG, encoding="utf-8")
    bank = Path(_text_file(tmp_path))
    before = bank.read_bytes()
    assert _nrr("ingest", str(log), "--bank", str(bank))[0] == 3
    assert bank.read_bytes() == before


def test_files_beside_two_banks_never_collide_whatever_dots_their_names_hold() -> None:
    """A host address or a file name with dots once cut the stem short: two PostgreSQL banks
    on one host shared a posterior and a feature store."""
    from nrr_stats.bank.location import resolve_bank

    one = resolve_bank("postgresql://nrr@127.0.0.1:5432/postgres?options=-csearch_path%3Done")
    two = resolve_bank("postgresql://nrr@127.0.0.1:5432/postgres?options=-csearch_path%3Dtwo")
    assert one.artifact(".posterior.nc") != two.artifact(".posterior.nc")
    dotted = resolve_bank("/tmp/runs.v2.db")
    assert dotted.artifact(".posterior.nc") == Path("/tmp/runs.v2.posterior.nc")
    assert resolve_bank("/tmp/runs.v3.db").artifact(".features.npy") != dotted.artifact(
        ".features.npy"
    )
