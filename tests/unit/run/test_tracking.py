"""Tracking mirrors the run record; with logger=none it does nothing at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embinit.config import LoggerConfig
from embinit.run.tracking import NullTracker, WandbTracker, make_tracker


def test_none_and_non_main_ranks_get_the_null_tracker(tmp_path: Path) -> None:
    assert isinstance(make_tracker(LoggerConfig(name="none"), tmp_path, "a", "s", {}, True),
                      NullTracker)
    # Only rank 0 talks to W&B, whatever the logger.
    assert isinstance(make_tracker(LoggerConfig(name="wandb"), tmp_path, "a", "s", {}, False),
                      NullTracker)


class _FakeRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, Any], int]] = []
        self.summary: dict[str, Any] = {}

    def log(self, row: dict[str, Any], step: int) -> None:
        self.logged.append((row, step))


def test_wandb_rows_drop_nulls_and_summary_keeps_numbers() -> None:
    t = WandbTracker.__new__(WandbTracker)  # no wandb.init: the logic, not the service
    t.run = _FakeRun()
    t.log_metrics({"step": 3, "train_loss": 1.5, "val_bpb": None, "bytes_seen": 10})
    assert t.run.logged == [({"train_loss": 1.5, "bytes_seen": 10}, 3)]
    t.log_summary({"status": "completed", "val": {"bpb": 2.5, "doc_nats": [1.0]},
                   "params": {"total": 7, "body_init_sha256": "ab"}})
    assert t.run.summary == {"val/bpb": 2.5, "params/total": 7, "status": "completed"}


def test_wandb_mode_from_environment_wins(monkeypatch) -> None:  # noqa: ANN001
    from embinit.run.tracking import wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_mode(LoggerConfig(name="wandb", mode="offline")) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(LoggerConfig(name="wandb", mode="offline")) == "disabled"


def test_run_id_is_stable_per_run_directory(tmp_path: Path) -> None:
    from embinit.run.tracking import run_id

    a, b = tmp_path / "arms" / "bpe+scratch" / "seed0", tmp_path / "arms" / "bpe+scratch" / "seed1"
    assert run_id(a) == run_id(a) and run_id(a) != run_id(b)
    assert len(run_id(a)) == 16 and run_id(a).isalnum()
