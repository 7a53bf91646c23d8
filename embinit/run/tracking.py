"""Optional experiment tracking. Local run records stay the source of truth.

`logger=wandb` mirrors config, metrics rows and the summary to Weights & Biases,
offline by default so it works with no network (`wandb sync` uploads later).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from embinit.config import LoggerConfig
from embinit.errors import ConfigError

log = logging.getLogger("embinit.tracking")


class Tracker(Protocol):
    def log_metrics(self, row: dict[str, Any]) -> None: ...
    def log_summary(self, summary: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class NullTracker:
    def log_metrics(self, row: dict[str, Any]) -> None:
        pass

    def log_summary(self, summary: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbTracker:
    """One W&B run per run directory, grouped by study with the arm as its job type.

    The run id is derived from the run directory, so a resumed run continues the same W&B
    run; curves are plotted against bytes seen, the x-axis on which arms with different
    tokenizers are comparable. `WANDB_MODE` (e.g. disabled) overrides logger.mode.
    """

    def __init__(self, cfg: LoggerConfig, run_dir: Path, name: str, group: str,
                 config: dict[str, Any], job_type: str | None = None,
                 tags: list[str] | None = None) -> None:
        try:
            import wandb
        except ImportError as e:  # pragma: no cover - the test environment has the extra
            raise ConfigError("logger=wandb needs the wandb package: pip install wandb "
                              "(or embinit[wandb])") from e
        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, mode=wandb_mode(cfg), dir=str(run_dir),
            name=name, group=group, job_type=job_type, tags=tags, config=config,
            id=run_id(run_dir), resume="allow", reinit="finish_previous",
        )
        self.run.define_metric("bytes_seen")
        self.run.define_metric("*", step_metric="bytes_seen")

    def log_metrics(self, row: dict[str, Any]) -> None:
        self.run.log({k: v for k, v in row.items() if v is not None and k != "step"},
                     step=row["step"])

    def log_summary(self, summary: dict[str, Any]) -> None:
        for section in ("val", "test", "oov", "train", "params", "data"):
            for k, v in (summary.get(section) or {}).items():
                if isinstance(v, int | float):
                    self.run.summary[f"{section}/{k}"] = v
        self.run.summary["status"] = summary.get("status")

    def finish(self) -> None:
        self.run.finish()


def wandb_mode(cfg: LoggerConfig) -> str:
    """WANDB_MODE from the environment wins over logger.mode (W&B's own convention)."""
    return os.environ.get("WANDB_MODE") or cfg.mode


def run_id(run_dir: Path) -> str:
    """A stable W&B run id for a run directory: a resumed run logs into the same W&B run."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def make_tracker(cfg: LoggerConfig, run_dir: Path, name: str, group: str,
                 config: dict[str, Any], is_main: bool, job_type: str | None = None,
                 tags: list[str] | None = None) -> Tracker:
    if cfg.name == "none" or not is_main:
        return NullTracker()
    return WandbTracker(cfg, run_dir, name, group, config, job_type=job_type, tags=tags)
