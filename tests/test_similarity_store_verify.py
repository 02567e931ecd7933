"""A reader re-verifies after a commit only the chunks the commit changed, and still never
trusts damaged rows: a torn write under an unchanged record, a damaged changed chunk, or files
replaced under a new record are all verified whole and refused."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from test_similarity_store import assert_consistent, make_rows

from nrr_stats.similarity import FeatureStore
from nrr_stats.similarity import store as store_module

CHUNK = 8  # rows per CRC: several chunks from a few dozen rows


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CHECK_CHUNK", CHUNK)
    monkeypatch.setattr(store_module, "_VERIFIED", {})
    monkeypatch.setattr(store_module, "_VERIFIED_CRCS", {})
    monkeypatch.setattr(store_module, "_SNAPSHOTS", {})
    return tmp_path / "bank.features.npy"


class CountingZlib:
    """zlib for the store module, counting the bytes its crc32 reads."""

    def __init__(self):
        self.bytes = 0

    def crc32(self, data, value=0):
        self.bytes += memoryview(data).nbytes
        import zlib

        return zlib.crc32(data, value)


def _flip_row(path: os.PathLike, row: int) -> None:
    """Change one float of a stored row in place (the header is left alone)."""
    matrix = np.load(path, mmap_mode="r+")
    matrix[row, 0] = matrix[row, 0] + 1.0
    matrix.flush()
    del matrix


def test_after_a_commit_only_the_changed_chunks_are_read_again(paths, monkeypatch):
    rows = make_rows(80)
    writer = FeatureStore(paths)
    writer.sync(rows[:60])
    reader = FeatureStore(paths)
    assert reader.committed == 60
    counting = CountingZlib()
    monkeypatch.setattr(store_module, "zlib", counting)
    writer.sync(rows[:61])  # the writer verifies nothing new in its own process, then appends
    counting.bytes = 0
    assert reader.committed == 61
    # 61 rows = 8 chunks; the reader re-reads the last one (rows 56-60) of each file only
    data_row, key_row = store_module.FEATURE_DIM * 4, len(store_module.KEY_COLUMNS) * 8
    assert counting.bytes == 5 * (data_row + key_row)
    assert_consistent(reader, rows, 61)


def test_a_torn_write_under_the_same_record_is_refused(paths):
    rows = make_rows(60)
    FeatureStore(paths).sync(rows)
    reader = FeatureStore(paths)
    assert reader.committed == 60
    _flip_row(paths, 3)  # a writer died mid-rewrite: files changed, no new record
    assert reader.committed == 0


def test_a_damaged_changed_chunk_under_a_new_record_is_refused(paths):
    rows = make_rows(70)
    writer = FeatureStore(paths)
    writer.sync(rows[:60])
    reader = FeatureStore(paths)
    assert reader.committed == 60
    writer.sync(rows)
    _flip_row(paths, 65)  # in a chunk the commit wrote
    assert reader.committed == 0


def test_files_replaced_under_a_new_record_are_verified_whole(paths):
    rows = make_rows(70)
    writer = FeatureStore(paths)
    writer.sync(rows[:60])
    reader = FeatureStore(paths)
    assert reader.committed == 60
    writer.sync(rows)
    copy = paths.with_name("copy.npy")
    shutil.copyfile(paths, copy)
    _flip_row(copy, 2)  # an old chunk, its CRC unchanged by the commit
    os.replace(copy, paths)  # a new file (another inode) in place of the verified one
    assert reader.committed == 0
