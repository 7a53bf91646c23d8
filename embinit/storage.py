"""Atomic writes, safe loads and content hashing: the I/O edge every stage shares.

Every file that a later step reads is written to a temporary file in the same
directory, fsynced, then renamed over the target, so a reader sees either the old
file or the complete new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not supported on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on clean exit fsync and rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        failed = write_error(exc, target)
        if failed is not None:
            raise failed from exc
        raise


def write_error(exc: BaseException, path: str | os.PathLike[str]) -> OSError | None:
    """The OSError a failed write of ``path`` amounts to, naming ``path``; None if ``exc`` is
    no I/O failure. File objects raise OSError without a file name; torch.save wraps the
    OSError of its writer in a RuntimeError (the OSError is its context); numpy's short
    write carries no errno at all."""
    chain = (exc, exc.__cause__, exc.__context__) if isinstance(exc, RuntimeError) else (exc,)
    for e in chain:
        if isinstance(e, OSError):
            if e.filename is not None:
                return e if e is not exc else None
            return OSError(e.errno, e.strerror or str(e), str(path))
    return None


# The temp files `atomic_open` makes: ".<target name>.<8 random characters>.tmp".
_TEMP_FILE = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def remove_stray_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files an earlier, killed writer left in ``directory`` (not below it).

    Only safe while no other process writes there: call it holding the directory's lock
    (a run directory's, or a cache entry's). Returns what was removed.
    """
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False) and _TEMP_FILE.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def load_npy(path: str | os.PathLike[str], mmap: bool = True) -> np.ndarray:
    """Load an array written by `atomic_save_npy` (never unpickles)."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    """torch.save straight into the temp file beside ``path``, then fsync and rename.

    Streaming matters at scale: serializing into a bytes buffer first would hold a second
    copy of the payload in host RAM (~1.4 GB at gpt2_small with AdamW state).
    """
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: a killed run loses at most the line in flight."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, allow_nan=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        failed = write_error(exc, path)
        if failed is None:
            raise
        raise failed from exc


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines file, ignoring a torn last line left by a kill."""
    rows: list[dict[str, Any]] = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows
