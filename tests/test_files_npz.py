"""load_npz: the arrays of an .npz as written, or one DerivedFileError naming the fault."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nrr_stats.files import DerivedFileError, load_npz


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _write(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, body in members.items():
            archive.writestr(f"{name}.npy", body)
    return path


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=40),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(ARRAYS, min_size=1, max_size=3))
def test_the_arrays_read_are_the_arrays_written(tmp_path_factory, arrays) -> None:
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    np.savez(path, **{f"m{i}": a for i, a in enumerate(arrays)})  # as every writer here saves
    loaded = load_npz(path)
    assert set(loaded) == {f"m{i}" for i in range(len(arrays))}
    for i, array in enumerate(arrays):
        got = loaded[f"m{i}"]
        assert got.dtype == array.dtype and got.shape == array.shape
        assert np.array_equal(got, array, equal_nan=True)
        assert got.flags.writeable  # a caller may work on it in place
    assert set(load_npz(path, names=("m0",))) == {"m0"}


def test_a_fortran_ordered_or_deflated_array_reads_as_written(tmp_path) -> None:
    array = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    assert np.array_equal(load_npz(_write(tmp_path / "f.npz", {"f": _npy(array)}))["f"], array)
    noise = np.random.default_rng(0).normal(size=(50, 7))
    np.savez_compressed(tmp_path / "z.npz", noise=noise)
    assert np.array_equal(load_npz(tmp_path / "z.npz")["noise"], noise)


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("bad-crc", "BadZipFile"),
        ("longer than its header", "holds more than its header says"),
        ("huge shape", "declares"),
        ("objects", "Python objects"),
        ("npy version", "npy format"),
        ("inflates", "inflates past its bounds"),
        ("missing", "no absent in it"),
        ("not a zip", "BadZipFile"),
    ],
)
def test_a_faulty_npz_is_one_derived_file_error(tmp_path, fault, said) -> None:
    body = _npy(np.arange(1000, dtype=np.int64))
    path, names = tmp_path / "bad.npz", None
    if fault == "bad-crc":
        _write(path, {"a": body})
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0xFF  # inside the member's data, the directory intact
        path.write_bytes(bytes(data))
    elif fault == "longer than its header":
        _write(path, {"a": body + b"\x00" * 8})
    elif fault == "huge shape":  # the same header length, a shape far past the data
        end = body.index(b"\n")
        header = body[10:end].replace(b"(1000,)", b"(1000000000000,)")
        _write(
            path, {"a": body[:10] + header.rstrip(b" ")[: end - 10].ljust(end - 10) + body[end:]}
        )
    elif fault == "objects":
        _write(path, {"a": _npy(np.array([{"x": 1}], dtype=object))})
    elif fault == "npy version":
        _write(path, {"a": body[:6] + b"\x09\x00" + body[8:]})
    elif fault == "inflates":
        _write(path, {"a": _npy(np.zeros(1 << 20, dtype=np.uint8))}, zipfile.ZIP_DEFLATED)
    elif fault == "missing":
        _write(path, {"a": body})
        names = ("a", "absent")
    elif fault == "not a zip":
        path.write_bytes(b"\x00" * 200)
    with pytest.raises(DerivedFileError, match=said):
        load_npz(path, names=names)
