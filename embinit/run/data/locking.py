"""One builder per cache entry: runs started together wait for each other, then reuse.

Two runs launched at once on a cold cache (Hydra's joblib launcher does exactly this) would
otherwise both build the same entry in the same directory. Each build-or-load step holds an
exclusive `filelock` on ``<entry>.lock`` (a sibling of the entry, so deleting an entry never
deletes a held lock) while it checks for a complete entry and, if there is none, builds it;
a run that finds the lock taken waits, then sees the finished entry and reuses it. The lock is
an OS lock (fcntl), released when its holder exits or dies, so a crashed build never blocks
the next run. A run directory has its lock too (`run_lock`): one process trains a run. Whoever
holds a lock also removes the temp files a killed writer left in that directory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from embinit.storage import remove_stray_temp_files

log = logging.getLogger(__name__)


@contextlib.contextmanager
def entry_lock(entry: str | Path, what: str) -> Iterator[None]:
    """Hold the build lock of cache entry ``entry`` (a directory); ``what`` names it in logs."""
    entry = Path(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(entry) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another run building %s %s", what, entry)
        lock.acquire()  # blocks until the builder finishes (or dies: the OS frees the lock)
        log.info("%s %s is free; checking for the finished entry", what, entry)
    try:
        _remove_strays(entry)
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the lock of a run directory (``<run_dir>.lock``, a sibling) for the whole run.

    A second process on the same run (two sweeps at once, a relaunch while the first still
    trains) waits here, then finds the run completed and skips it, or resumes what the first
    left; the two never train the same run side by side.
    """
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process running %s (it holds %s.lock)", run_dir, run_dir)
        lock.acquire()
        log.info("%s is free; checking whether that run completed", run_dir)
    try:
        _remove_strays(run_dir)
        yield
    finally:
        lock.release()


def _remove_strays(directory: Path) -> None:
    """Temp files of a writer killed mid-write: nobody else writes here while we hold the lock."""
    for path in remove_stray_temp_files(directory):
        log.info("removed %s, a partial write left by an earlier, interrupted run", path)
