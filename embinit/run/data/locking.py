"""One builder per cache entry: runs started together wait for each other, then reuse.

Two runs launched at once on a cold cache (Hydra's joblib launcher does exactly this) would
otherwise both build the same entry in the same directory. Each build-or-load step holds an
exclusive `filelock` on ``<entry>.lock`` (a sibling of the entry, so deleting an entry never
deletes a held lock) while it checks for a complete entry and, if there is none, builds it;
a run that finds the lock taken waits, then sees the finished entry and reuses it. The lock is
an OS lock (fcntl), released when its holder exits or dies, so a crashed build never blocks
the next run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

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
        yield
    finally:
        lock.release()
