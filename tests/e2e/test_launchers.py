"""The sweep launchers in conf/hydra/launcher compose with the real config (no cluster needed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import CONF, ROOT


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the hydra_plugins namespace itself is absent
        return False


needs_submitit = pytest.mark.skipif(
    not _installed("hydra_plugins.hydra_submitit_launcher"),
    reason="the cluster extra (hydra-submitit-launcher) is not installed")


def _launcher(name: str):  # noqa: ANN202
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    return cfg.hydra.launcher


@pytest.mark.skipif(not _installed("hydra_plugins.hydra_joblib_launcher"),
                    reason="hydra-joblib-launcher is not installed")
def test_local_parallel_is_joblib_with_two_jobs() -> None:
    launcher = _launcher("local_parallel")
    assert launcher._target_.endswith("JoblibLauncher")
    assert launcher.n_jobs == 2
    assert launcher.backend == "loky"


@needs_submitit
def test_slurm_launcher_composes_with_its_resources() -> None:
    launcher = _launcher("slurm")
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu"
    assert launcher.gpus_per_node == 1
    assert launcher.tasks_per_node == launcher.gpus_per_node  # one process per GPU
    assert launcher.cpus_per_task == 8
    assert launcher.timeout_min == 720
    assert launcher.mem_gb == 64
    assert launcher.array_parallelism == 16
    assert launcher.max_num_timeout == 3


@needs_submitit
def test_slurm_launcher_takes_command_line_overrides() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[
            "hydra/launcher=slurm", "hydra.launcher.partition=a100",
            "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4",
            "model=gpt2_small", "train=gpu",
        ], return_hydra_config=True)
    assert cfg.hydra.launcher.partition == "a100"
    assert cfg.hydra.launcher.gpus_per_node == cfg.hydra.launcher.tasks_per_node == 4
    assert cfg.train.name == "gpu" and cfg.model.name == "gpt2_small"


@pytest.mark.slow
@needs_submitit
def test_submitit_tasks_become_ddp_ranks(tmp_path: Path) -> None:
    """submitit's local executor stands in for SLURM: two tasks of one job run one DDP run."""
    docs = tmp_path / "docs"
    docs.mkdir()
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red",
             "house", "in", "garden"]
    for i in range(40):
        (docs / f"{i}.txt").write_text(" ".join(words[(i + j) % len(words)] for j in range(200)))
    cmd = [sys.executable, "run.py", "-m", "hydra/launcher=submitit_local",
           "hydra.launcher.tasks_per_node=2", "train=smoke", "model.n_layer=1",
           "model.d_model=32", "model.n_head=2", "model.block_size=32", "vocab.size=300",
           "data=text_files", f"data.path={docs}", "train.batch_size=2",
           f"paths.root={tmp_path}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = list((tmp_path / "experiments").rglob("summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["status"] == "completed"
    assert summary["train"]["world_size"] == 2
