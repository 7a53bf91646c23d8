"""The run record: what a run leaves in its directory, and the only input analysis reads.

    <run dir>/config.json     resolved config (identity of the run; checked on resume)
    <run dir>/metrics.jsonl   one row per log/eval step
    <run dir>/checkpoint.pt   latest complete checkpoint (atomic)
    <run dir>/summary.json    written once, at the end: status completed | diverged

A summary is the last file written, so a directory without one is unfinished and
never mistaken for a result.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from embinit.errors import ConfigError
from embinit.storage import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
)

# Keys that may change between invocations of the same run without changing its result.
VOLATILE_KEYS = ("paths", "logger")
VOLATILE_TRAIN_KEYS = ("num_threads", "log_interval", "ckpt_interval")


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that defines a run's result."""
    ident = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
    ident["train"] = {k: v for k, v in config["train"].items() if k not in VOLATILE_TRAIN_KEYS}
    return ident


def config_diff(saved: dict[str, Any], requested: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out: list[str] = []
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key), requested.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


class RunRecord:
    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(run_dir)
        self.config_path = self.dir / "config.json"
        self.metrics_path = self.dir / "metrics.jsonl"
        self.summary_path = self.dir / "summary.json"
        self.checkpoint_path = self.dir / "checkpoint.pt"

    def ensure_writable(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.dir, prefix=".write-test-"):
                pass
        except OSError as e:
            raise ConfigError(
                f"the output directory {self.dir} is not writable ({e.strerror}); choose "
                "another with paths.experiments=<dir>, or hydra.run.dir=<dir> "
                "(hydra.sweep.dir=<dir> for a sweep)"
            ) from e

    def summary(self) -> dict[str, Any] | None:
        if not self.summary_path.exists():
            return None
        try:
            return read_json(self.summary_path)
        except (json.JSONDecodeError, OSError):
            return None

    def check_identity(self, config: dict[str, Any]) -> None:
        """Refuse to continue a run directory that holds a run with another config."""
        if not self.config_path.exists():
            return
        saved = identity(read_json(self.config_path))
        diff = config_diff(saved, identity(config))
        if diff:
            shown = "\n  ".join(diff[:12])
            raise ConfigError(
                f"{self.dir} holds a run with a different configuration:\n  {shown}\n"
                "Refusing to resume into it. Start fresh by deleting that directory, or keep "
                "both by choosing another one (study.name=<name> or hydra.run.dir=<dir>)."
            )

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def append_metrics(self, row: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, row)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past the resumed checkpoint, which the resumed run writes again."""
        rows = [r for r in self.metrics() if r["step"] <= after_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)


class RunDirCheck(Callback):
    """Hydra callback (conf/config.yaml): check the output directory before Hydra writes to it.

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


def software_versions() -> dict[str, str]:
    import gensim
    import numpy
    import tokenizers
    import torch

    import embinit

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "tokenizers": tokenizers.__version__,
        "gensim": gensim.__version__,
        "embinit": embinit.__version__,
        "platform": platform.platform(),
    }
