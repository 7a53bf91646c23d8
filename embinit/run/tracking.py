"""Optional experiment tracking. Local run records stay the source of truth.

`logger=wandb` mirrors config, metrics rows and the summary to Weights & Biases,
offline by default so it works with no network (`wandb sync` uploads later).
"""

from __future__ import annotations

import logging
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
    def __init__(self, cfg: LoggerConfig, run_dir: Path, name: str, group: str,
                 config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError as e:  # pragma: no cover - wandb is a core dependency
            raise ConfigError("logger=wandb needs the wandb package: pip install wandb") from e
        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, mode=cfg.mode, dir=str(run_dir),
            name=name, group=group, config=config, reinit="finish_previous",
        )

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


def make_tracker(cfg: LoggerConfig, run_dir: Path, name: str, group: str,
                 config: dict[str, Any], is_main: bool) -> Tracker:
    if cfg.name == "none" or not is_main:
        return NullTracker()
    return WandbTracker(cfg, run_dir, name, group, config)
