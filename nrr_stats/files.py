"""Files beside the bank: created exclusively, never through a symlink, published atomically,
with the mode the umask gives, read back with bounds, and their stale staging cleaned.

Anyone who can write the bank's directory can plant a symlink where nrr writes; so staging
files are created with O_EXCL | O_NOFOLLOW (a planted link makes creation fail, it is never
followed), locks are opened with O_NOFOLLOW, and a file is published by one rename. A writer
holds an flock on its staging file (or directory) while it writes: a later writer removes
staging whose lock it can take, since its owner is gone (a killed `nrr fit`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

STAGING_SUFFIX = ".tmp"


class DerivedFileError(ValueError):
    """A file beside the bank that does not verify: truncated, corrupted, crafted or foreign."""


def file_mode() -> int:
    """The mode a new file gets under this process's umask (what open() would give)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def open_lock(path: Path) -> int:
    """A file descriptor to flock on; a symlink at `path` is refused, never followed."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, file_mode())
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OSError(
                errno.ELOOP, "refusing a lock file that is a symlink", str(path)
            ) from None
        raise


class LockWaitTimeout(OSError):
    """A lock beside the bank was not free within the wait allowed (it names what it waited on)."""


@contextlib.contextmanager
def locked(path: Path, *, timeout: float | None = None, what: str = "the lock") -> Iterator[None]:
    """Hold an exclusive flock on the lock file at `path` (see open_lock).

    With `timeout`, wait at most that many seconds, then raise LockWaitTimeout naming `what`
    and the file; without it, wait until the lock is free.
    """
    fd = open_lock(path)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + max(float(timeout), 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockWaitTimeout(
                            errno.EAGAIN,
                            f"gave up after {timeout:g} s waiting for {what}"
                            " (another process holds it)",
                            str(path),
                        ) from None
                    time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def create_exclusive(path: Path) -> int:
    """Create `path` for writing, failing on anything already there (a planted symlink
    included). The caller removes a stale file first (see remove_stale)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, file_mode())


def staging_path(target: Path) -> Path:
    """A fresh, unguessable staging name beside `target` (same directory: one rename publishes)."""
    import secrets  # on first use: it loads hmac and hashlib (~2 ms), which a cold check skips

    return target.with_name(f".{target.name}.{secrets.token_hex(8)}{STAGING_SUFFIX}")


@contextlib.contextmanager
def published(target: Path) -> Iterator[int]:
    """Write a file whole, then publish it at `target` with one rename.

    Yields a descriptor of an exclusively created staging file (flocked while written, so a
    concurrent writer's cleanup leaves it alone); on success it is fsynced and renamed over
    `target`, on any failure removed. Stale staging of `target` is cleaned first.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    staging = staging_path(target)
    fd = create_exclusive(staging)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
        os.fsync(fd)
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):
            staging.unlink()
        raise
    finally:
        os.close(fd)
    fsync_directory(target.parent)


def stale_candidates(target: Path) -> list[Path]:
    """Staging left beside `target` by any writer of it, this version's or an older one's."""
    directory, name = target.parent, target.name
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        base = entry.name
        ours = base.startswith(f".{name}.") and base.endswith((STAGING_SUFFIX, ".staging"))
        older = base.startswith(name) and base.endswith(STAGING_SUFFIX) and base != name
        if ours or older:
            found.append(entry)
    return found


def remove_stale(target: Path) -> int:
    """Remove staging beside `target` whose writer is gone (its flock can be taken); a
    symlink there is removed itself, never followed. Returns how many were removed."""
    removed = 0
    for entry in stale_candidates(target):
        if entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live writer holds it
            continue
        try:
            if entry.is_dir():
                import shutil  # (and bz2, lzma): only for a stale staging folder

                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading .npz files with bounds ------------------------------------------------------------

# A member may not declare more than this many uncompressed bytes per stored byte.
_MAX_INFLATION = 64


def load_npz(path: Path, *, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (only `names`, when given), read without pickle and within bounds.

    Every member's header is checked against the bytes it occupies before anything is
    allocated (a crafted huge shape is refused, never a MemoryError), each member's CRC-32 is
    verified by reading it to its end, and every fault (truncated zip, bad CRC, object dtype,
    foreign header) is one DerivedFileError.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            wanted = members if names is None else {n: members[n] for n in names if n in members}
            missing = [] if names is None else [n for n in names if n not in members]
            if missing:
                raise DerivedFileError(f"no {', '.join(missing)} in it")
            return {name: _read_member(archive, info) for name, info in wanted.items()}
    except DerivedFileError:
        raise
    except (
        OSError,
        ValueError,
        EOFError,
        KeyError,
        MemoryError,
        SyntaxError,
        struct.error,
        zlib.error,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
    ) as error:
        raise DerivedFileError(f"{type(error).__name__}: {' '.join(str(error).split())}") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    if info.file_size > _MAX_INFLATION * max(info.compress_size, 1) + 4096:
        raise DerivedFileError(f"member {info.filename} inflates past its bounds")
    with archive.open(info) as member:
        # One read to the end (which verifies the CRC-32), of at most the size the directory
        # states (bounded above); a writable copy, as callers may work on the arrays in place.
        data = bytearray(member.read())
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise DerivedFileError(f"member {info.filename} has npy format {version}")
    if dtype.hasobject:
        raise DerivedFileError(f"member {info.filename} holds Python objects")
    count = 1
    for extent in shape:
        count *= int(extent)
    size, header = count * dtype.itemsize, stream.tell()
    if size > info.file_size - header:
        raise DerivedFileError(f"member {info.filename} declares {size} bytes in {info.file_size}")
    if size < len(data) - header:
        raise DerivedFileError(f"member {info.filename} holds more than its header says")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return array.reshape(shape, order="F" if fortran else "C")
