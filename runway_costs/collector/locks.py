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


def _open_lock_file(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


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
