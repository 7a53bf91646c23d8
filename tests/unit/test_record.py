"""Run-record identity checks: what may and may not change on resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from embinit.errors import ConfigError
from embinit.record import RunRecord, config_diff, identity

BASE = {
    "seed": 0,
    "paths": {"root": "/a"},
    "logger": {"name": "none"},
    "model": {"d_model": 128},
    "train": {"lr": 1e-3, "log_interval": 10, "num_threads": None},
}


def test_config_diff_lists_dotted_keys() -> None:
    other = {**BASE, "model": {"d_model": 256}}
    assert config_diff(BASE, other) == ["model.d_model: 128 -> 256"]


def test_identity_ignores_paths_logger_and_logging_cadence() -> None:
    other = {**BASE, "paths": {"root": "/b"}, "logger": {"name": "wandb"},
             "train": {**BASE["train"], "log_interval": 1}}
    assert identity(other) == identity(BASE)


def test_check_identity_refuses_a_different_run(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    rec.write_config(BASE)
    rec.check_identity(BASE)
    with pytest.raises(ConfigError, match="train.lr"):
        rec.check_identity({**BASE, "train": {**BASE["train"], "lr": 2e-3}})


def test_truncate_metrics_drops_rows_after_checkpoint(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    for step in (0, 5, 10, 15):
        rec.append_metrics({"step": step})
    rec.truncate_metrics(10)
    assert [r["step"] for r in rec.metrics()] == [0, 5, 10]


def test_torn_last_metrics_line_is_ignored(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    rec.append_metrics({"step": 1})
    with open(rec.metrics_path, "a") as fh:
        fh.write('{"step": 2, "tr')
    assert [r["step"] for r in rec.metrics()] == [1]
