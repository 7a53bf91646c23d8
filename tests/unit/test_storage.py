"""Atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

from embinit.storage import (
    atomic_open,
    atomic_save_npy,
    atomic_write_json,
    load_npy,
    read_json,
    stable_hash,
)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"status": "completed"})
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write('{"status": "trunc')
        raise RuntimeError("killed mid-write")
    assert read_json(target) == {"status": "completed"}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_atomic_files_get_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {})
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_npy_round_trip_without_pickle(tmp_path: Path) -> None:
    a = np.arange(10, dtype=np.uint16)
    atomic_save_npy(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(load_npy(tmp_path / "a.npy"), a)


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


class _Unpicklable:
    """Raises while torch.save is pickling, after the tensors before it were written."""

    def __reduce__(self) -> tuple:
        raise RuntimeError("killed mid-write")


def _payload() -> dict:
    import torch

    # 8 tensors of 1 MiB: a streamed save writes them one by one, never 8 MiB at once.
    return {"format": 1, "model": {f"w{i}": torch.full((256, 1024), float(i)) for i in range(8)},
            "step": 7}


def test_torch_save_round_trips_and_streams_to_the_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import torch

    import embinit.storage as storage

    # Any BytesIO made during the save is recorded: a full-payload buffer would show up here.
    sizes: list[int] = []
    real_bytesio = io.BytesIO

    class RecordingBytesIO(real_bytesio):
        def getvalue(self) -> bytes:
            value = super().getvalue()
            sizes.append(len(value))
            return value

        def write(self, b) -> int:  # noqa: ANN001
            n = super().write(b)
            sizes.append(self.tell())
            return n

    writes: list[int] = []
    real_open = storage.atomic_open

    @contextlib.contextmanager
    def recording_open(path, mode="wb"):  # noqa: ANN001, ANN202
        with real_open(path, mode) as fh:
            real_write = fh.write

            def write(b) -> int:  # noqa: ANN001
                writes.append(len(memoryview(b).cast("B")))
                return real_write(b)

            monkeypatch.setattr(fh, "write", write, raising=False)
            yield fh

    monkeypatch.setattr(io, "BytesIO", RecordingBytesIO)
    monkeypatch.setattr(storage, "atomic_open", recording_open)
    target = tmp_path / "ckpt" / "checkpoint.pt"
    payload = _payload()
    storage.atomic_torch_save(target, payload)
    monkeypatch.undo()

    total = target.stat().st_size
    assert total > 8 * 2**20  # the payload reached the file
    assert len(writes) >= 8 and max(writes) <= 2**20 + 4096  # one tensor per write at most
    assert sum(writes) == total
    assert max(sizes, default=0) < 2**20  # no in-memory copy of the payload
    loaded = torch.load(target, map_location="cpu", weights_only=True)
    assert loaded["step"] == 7 and loaded["model"].keys() == payload["model"].keys()
    for k, t in payload["model"].items():
        assert torch.equal(loaded["model"][k], t)
    assert sorted(os.listdir(target.parent)) == ["checkpoint.pt"]  # no temp file left


def test_torch_save_failing_mid_write_leaves_the_old_file_and_no_partial(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import embinit.storage as storage

    target = tmp_path / "checkpoint.pt"
    # Pickling fails before any byte is written ...
    with pytest.raises(RuntimeError, match="killed mid-write"):
        storage.atomic_torch_save(target, {**_payload(), "zz": _Unpicklable()})
    assert os.listdir(tmp_path) == []  # no partial file under the final name, no temp
    storage.atomic_torch_save(target, {"step": 1, "w": torch.ones(3)})

    # ... or the disk fails after some tensors reached the temp file.
    real_open = storage.atomic_open
    written: list[int] = []

    @contextlib.contextmanager
    def failing_open(path, mode="wb"):  # noqa: ANN001, ANN202
        with real_open(path, mode) as fh:
            real_write = fh.write

            def write(b) -> int:  # noqa: ANN001
                if sum(written) > 3 * 2**20:  # after three of the eight tensors
                    raise OSError("disk full")
                written.append(real_write(b))
                return written[-1]

            monkeypatch.setattr(fh, "write", write, raising=False)
            yield fh

    monkeypatch.setattr(storage, "atomic_open", failing_open)
    # torch's zip writer may re-raise the failed write as its own RuntimeError on close.
    with pytest.raises((OSError, RuntimeError)):
        storage.atomic_torch_save(target, _payload())
    assert 3 * 2**20 < sum(written) < 8 * 2**20  # it failed mid-payload
    assert torch.load(target, weights_only=True)["step"] == 1  # the old checkpoint, intact
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
