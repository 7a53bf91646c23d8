"""Shared fixtures: the real Hydra config, composed the way run.py composes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from embinit.config import register_configs

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "embinit" / "conf"

register_configs()


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides or [])


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose the real config with every path under tmp_path."""

    def _make(*overrides: str) -> DictConfig:
        base = [f"paths.root={tmp_path}"]
        return compose_config(base + list(overrides))

    return _make
