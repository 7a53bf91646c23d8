"""Hydra callbacks of the producer (named in conf/config.yaml); light, so Hydra starts fast."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from embinit.errors import ConfigError
from embinit.record import RunRecord


class RunDirCheck(Callback):
    """Check the output directory before Hydra writes to it.

    Hydra creates the run (or sweep) directory and writes .hydra/ into it before `run.py`'s
    task function starts, so an unwritable location would end in a Hydra traceback. This
    check runs first and fails the way `run.py` does: `error: ...` on stderr, exit code 2.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable_or_exit(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable_or_exit(config.hydra.sweep.dir)


def _writable_or_exit(directory: str) -> None:
    try:
        RunRecord(directory).ensure_writable()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
