"""Any bytes at all through `nrr ingest`: an exit code in {0, 1, 2, 3} (ingest itself gives 0 or
3), never a traceback or an internal error, a bounded time, and the bank unchanged on exit 3.

Files are arbitrary bytes, or log-like bytes: a header and rows of random cells joined by
random delimiters and line ends (LF, CRLF, lone CR), with NUL, undecodable bytes, quotes,
huge numbers, non-ASCII digits, over-wide rows and an unterminated last line mixed in.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from core_helpers import bank_snapshot, run_nrr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEED = b"commit\tval_bpb\tstatus\tdescription\ns0\t1.0\tkeep\tbaseline\ns1\t0.9\tdiscard\tincrease LR\n"
MAX_SECONDS = 20.0  # per ingest of a file of at most a few KB, on a loaded machine

cells = st.one_of(
    st.sampled_from(
        [b"keep", b"discard", b"crash", b"KEEP", b"", b"-", b"N/A", b"1.0", b"0.98", b"nan"]
    ),
    st.sampled_from([str(2**63).encode(), b"9" * 400, "²".encode(), "１２".encode(), b"1e999"]),
    st.sampled_from([b'"', b'""', b'"a\tb"', b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"#"]),
    st.binary(max_size=12),
    st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
line_ends = st.sampled_from([b"\n", b"\r\n", b"\r", b"\r\r\n"])
delimiters = st.sampled_from([b"\t", b",", b"|", b";", b"  ", b" ", b"\\t"])


@st.composite
def log_like(draw) -> bytes:
    delimiter = draw(delimiters)
    header = draw(
        st.lists(
            st.sampled_from([b"commit", b"val_bpb", b"status", b"description", b"notes", b"id"]),
            min_size=1,
            max_size=6,
        )
    )
    lines = [delimiter.join(header)]
    for _ in range(draw(st.integers(0, 8))):
        width = draw(st.integers(0, 2 * len(header) + 2))
        if draw(st.integers(0, 20)) == 0:
            width = 200  # an over-wide row
        lines.append(delimiter.join(draw(cells) for _ in range(width)))
    data = b"".join(line + draw(line_ends) for line in lines)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # torn anywhere
    return data


_example = itertools.count()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.one_of(st.binary(max_size=3000), log_like()), finished=st.booleans())
def test_any_bytes_exit_cleanly_and_leave_the_bank_unchanged_on_refusal(
    tmp_path: Path, data: bytes, finished: bool
) -> None:
    number = next(_example)
    bank = tmp_path / f"bank-{number}.db"
    seed = tmp_path / f"seed-{number}.tsv"
    seed.write_bytes(SEED)
    assert run_nrr("ingest", str(seed), "--bank", str(bank)).code == 0
    before = bank_snapshot(bank)

    log = tmp_path / f"hostile-{number}.tsv"
    log.write_bytes(data)
    started = time.monotonic()
    run = run_nrr("ingest", str(log), "--bank", str(bank), *(["--finished"] if finished else []))
    elapsed = time.monotonic() - started

    assert run.code in (0, 1, 2, 3)
    assert "Traceback" not in run.out + run.err and "internal error" not in run.err, run.err
    assert elapsed < MAX_SECONDS
    if run.code == 3:
        assert len(run.err.strip().splitlines()) == 1 and str(log) in run.err
        assert bank_snapshot(bank) == before
    else:
        after = bank_snapshot(bank)
        assert set(before) <= set(after)  # the seed's session and rows are as they were
        # Again: nothing new.
        again = run_nrr(
            "ingest", str(log), "--bank", str(bank), "--json", *(["--finished"] if finished else [])
        )
        assert again.code == 0, again.err
        assert '"rows_added": 0' in again.out
