"""Atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

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
