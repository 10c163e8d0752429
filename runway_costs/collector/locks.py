"""File locks that keep DuckDB to one writer and a database to one scheduler.

DuckDB allows a single read-write process per file, so every writer (a collection
cycle, the alerts engine) first takes ``<db>.write.lock``; a scheduler also holds
``<db>.scheduler.lock`` for its whole life. ``fcntl.flock`` locks belong to the open
file, so the kernel releases them when a process dies (even under ``kill -9``) and two
opens in the same process exclude each other just like two processes do.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runway_costs.core.files import scheduler_lock_path, write_lock_path

_POLL_SECONDS = 0.05


class LockError(Exception):
    """Another process holds the lock; the message names the database and holder pid."""


class WriteLockTimeout(LockError):
    pass


class SchedulerAlreadyRunning(LockError):
    pass


def _holder_pid(fd: int) -> str:
    """The pid the holder wrote into the lock file, or 'unknown'."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

_umask_lock = threading.Lock()
_umask_depth = 0
_umask_saved = 0


@contextmanager
def owner_only() -> Iterator[None]:
    """Files created meanwhile (the database, DuckDB's WAL, the snapshot) are owner-only.

    DuckDB creates its files itself, honouring only the process umask, so the umask gains
    group and other bits for the duration. The umask is process-wide: nested and
    concurrent holders share one change, undone when the last leaves.
    """
    global _umask_depth, _umask_saved
    with _umask_lock:
        if _umask_depth == 0:
            _umask_saved = os.umask(0o077)
            os.umask(_umask_saved | 0o077)
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents as owner-only (0700); existing ones are
    left as they are."""
    missing = []
    for d in (directory, *directory.parents):
        if d.exists():
            break
        missing.append(d)
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(d, PRIVATE_DIR)  # whatever the umask


def _open_lock_file(path: Path) -> int:
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)  # also a lock file made by an older version
    except OSError:
        pass
    return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _record_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))


def _release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def write_lock(db_path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the database's write lock, waiting up to ``timeout`` seconds for it.

    Not reentrant: taking it twice in one thread waits for itself.
    """
    fd = _open_lock_file(write_lock_path(Path(db_path)))
    deadline = time.monotonic() + max(timeout, 0.0)
    try:
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise WriteLockTimeout(
                    f"database {db_path} is being written by another process "
                    f"(pid {_holder_pid(fd)}); gave up after {timeout:g} s"
                )
            time.sleep(_POLL_SECONDS)
    except BaseException:
        os.close(fd)
        raise
    try:
        _record_pid(fd)
        yield
    finally:
        _release(fd)


@contextmanager
def scheduler_lock(db_path: Path) -> Iterator[None]:
    """Hold the scheduler lock for a scheduler's life; refuse at once if taken."""
    fd = _open_lock_file(scheduler_lock_path(Path(db_path)))
    if not _try_lock(fd):
        pid = _holder_pid(fd)
        os.close(fd)
        raise SchedulerAlreadyRunning(f"a scheduler is already running on {db_path} (pid {pid})")
    try:
        _record_pid(fd)
        yield
    finally:
        _release(fd)
