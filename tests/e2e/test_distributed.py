"""DDP: `torchrun --nproc_per_node=2` on CPU (gloo) matches one process at the same global batch.

Both runs draw the same global batch at every step (the windows are a function of seed and
step; rank r reads its own slice), DDP averages the ranks' gradients, and the loss is a mean
over the batch, so the two runs compute the same updates up to float32 summation order
(per-rank matmuls over 2 sequences instead of 4, the gradient all-reduce). Measured here:
the final val/test losses agree to ~3e-9 relative and the logged train losses to ~1e-7.
The tolerance, 1e-5, is two orders above that noise and three below what a genuinely
different batch moves the final loss (~1e-2 with batch 2 instead of 4 per step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY = ["train=smoke", "model.n_layer=1", "model.d_model=32", "model.n_head=2",
        "model.block_size=32", "vocab.size=320", "data=text_files", "train.eval_windows=4"]
# vocab.size=320: BPE reaches 327 tokens on this 20-word corpus; a larger size is refused.


def _write_corpus(root: Path) -> Path:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red",
             "house", "of", "tree", "in", "garden", "with", "small", "bird"]
    path = root / "docs"
    path.mkdir(parents=True)
    for i in range(60):
        n = int(rng.integers(150, 300))
        text = " ".join(words[j] for j in rng.integers(0, len(words), size=n))
        (path / f"doc{i:03d}.txt").write_text(text.capitalize() + ".\n", encoding="utf-8")
    return path


def _run(cmd: list[str], root: Path, run_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads per process in both runs
    proc = subprocess.run(cmd + [f"paths.root={root}", f"hydra.run.dir={run_dir}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summaries = list(root.rglob("summary.json"))
    assert [p.parent for p in summaries if p.parent == run_dir] == [run_dir]
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_two_cpu_ranks_match_one_process_at_the_same_global_batch(tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path)
    common = TINY + [f"data.path={corpus}"]
    ddp = _run(["torchrun", "--standalone", "--nproc_per_node=2", "run.py", *common,
                "train.batch_size=2"], tmp_path / "a", tmp_path / "a" / "ddp")
    single = _run([sys.executable, "run.py", *common, "train.batch_size=4",
                   "train.num_threads=1"], tmp_path / "b", tmp_path / "b" / "single")

    assert ddp["status"] == single["status"] == "completed"
    assert ddp["train"]["world_size"] == 2 and single["train"]["world_size"] == 1
    assert ddp["train"]["tokens_seen"] == single["train"]["tokens_seen"]
    assert ddp["train"]["bytes_seen"] == single["train"]["bytes_seen"]
    for split in ("val", "test"):
        assert ddp[split]["tokens"] == single[split]["tokens"]  # every window evaluated once
        assert ddp[split]["loss"] == pytest.approx(single[split]["loss"], rel=1e-5)
    # Rank 0 alone writes the record: one metrics row per log step, not one per rank.
    rows_ddp = (tmp_path / "a" / "ddp" / "metrics.jsonl").read_text().splitlines()
    rows_single = (tmp_path / "b" / "single" / "metrics.jsonl").read_text().splitlines()
    assert len(rows_ddp) == len(rows_single)
    for a, b in zip(rows_ddp, rows_single, strict=True):
        ra, rb = json.loads(a), json.loads(b)
        if ra["train_loss"] is not None:
            assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
