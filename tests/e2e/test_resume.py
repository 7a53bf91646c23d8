"""Fault tolerance through the CLI: SIGKILL and resume, divergence, an interrupted sweep."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embinit.storage import read_json, read_jsonl
from tests.cli import RUN_PY, cli_env, run_cli, summaries, write_corpus

pytestmark = pytest.mark.slow

# 300 steps of ~10 ms: long enough to kill mid-run. Checkpoints every 15 steps and log rows
# every 4, so a checkpoint can fall inside a log window (its losses must survive too).
RESUME_ARGS = [
    "data=text_files", "train=smoke", "train.num_threads=1", "vocab.size=300",
    "model.n_layer=2", "model.d_model=64", "model.n_head=2", "model.block_size=64",
    "train.batch_size=8", "train.max_steps=300", "train.warmup_steps=10",
    "train.log_interval=4", "train.eval_interval=20", "train.ckpt_interval=15",
]
KILL_AFTER_STEP = 40
VOLATILE_ROW_KEYS = ("elapsed_s",)


def _max_step(metrics: Path) -> int:
    rows = read_jsonl(metrics)  # tolerates a torn last line
    return max((r["step"] for r in rows), default=-1)


def _kill_mid_run(args: list[str], run_dir: Path, cwd: Path) -> None:
    """Start the run, SIGKILL it once a checkpoint exists and training is past KILL_AFTER_STEP."""
    with open(cwd / "killed.log", "w") as log:
        proc = subprocess.Popen([sys.executable, str(RUN_PY), *args], cwd=cwd, env=cli_env(),
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if ((run_dir / "checkpoint.pt").exists()
                        and _max_step(run_dir / "metrics.jsonl") >= KILL_AFTER_STEP):
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()  # killed above, or a hung run: never leave it behind
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"the run was not killed mid-run (exit {proc.returncode}):\n"
        + (cwd / "killed.log").read_text()[-3000:])
    assert not (run_dir / "summary.json").exists()


def _rows(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE_ROW_KEYS}
            for r in read_jsonl(run_dir / "metrics.jsonl")]


def test_sigkill_then_rerun_resumes_to_identical_results(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", n_docs=60)
    common = [*RESUME_ARGS, f"data.path={corpus}", f"paths.root={tmp_path}"]

    ref_dir = tmp_path / "reference"
    ref = run_cli(*common, f"hydra.run.dir={ref_dir}", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]

    run_dir = tmp_path / "killed"
    args = [*common, f"hydra.run.dir={run_dir}"]
    _kill_mid_run(args, run_dir, tmp_path)
    killed_at = _max_step(run_dir / "metrics.jsonl")

    resumed = run_cli(*args, cwd=tmp_path)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    m = re.search(r"resuming from step (\d+)", resumed.stdout + resumed.stderr)
    assert m, resumed.stdout[-3000:]
    assert 15 <= int(m.group(1)) <= killed_at  # from the last complete checkpoint

    want, got = read_json(ref_dir / "summary.json"), read_json(run_dir / "summary.json")
    assert got["status"] == "completed"
    for split in ("val", "test"):  # loss, bpb, nats, ...: bit-identical floats
        assert got[split] == want[split], split
    for key in ("steps", "tokens_seen", "bytes_seen"):
        assert got["train"][key] == want["train"][key]

    rows = _rows(run_dir)
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)), "every logged step appears once, in order"
    assert rows == _rows(ref_dir)  # train_loss, val_loss, lr ... all bit-identical

    again = run_cli(*args, cwd=tmp_path)  # a completed run is left alone
    assert again.returncode == 0
    assert "nothing to do" in again.stdout + again.stderr
    assert read_json(run_dir / "summary.json") == got


def test_diverging_run_is_recorded_and_exits_zero(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", n_docs=20)
    # AdamW with lr 1e6 and no clipping: the weights blow up, the loss is NaN by step 2.
    args = ["data=text_files", f"data.path={corpus}", f"paths.root={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}", "train=smoke", "train.num_threads=1",
            "vocab.size=300", "model.n_layer=1", "model.d_model=32", "model.n_head=2",
            "model.block_size=32", "train.max_steps=20", "train.lr=1e6", "train.grad_clip=0",
            "train.warmup_steps=0"]
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]  # a sweep goes on to its next run
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["status"] == "diverged"
    step = summary["diverged_at_step"]
    assert isinstance(step, int) and 1 <= step <= 20
    assert summary["train"]["steps"] == step - 1  # steps completed before the bad one
    assert "val" not in summary and "test" not in summary  # no result to average in
    assert "diverged" in res.stdout + res.stderr

    again = run_cli(*args, cwd=tmp_path)  # re-running a sweep does not retry it
    assert again.returncode == 0
    assert "already diverged" in again.stdout + again.stderr


def test_rerun_sweep_trains_only_unfinished_runs(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", n_docs=20)
    common = ["data=text_files", f"data.path={corpus}", f"paths.root={tmp_path}",
              "train=smoke", "train.num_threads=1", "vocab.size=300", "model.n_layer=1",
              "model.d_model=32", "model.n_head=2", "model.block_size=32", "study.name=sweep"]
    study = tmp_path / "experiments" / "sweep"
    first = run_cli("-m", *common, "seed=0", cwd=tmp_path)  # a sweep stopped after seed 0
    assert first.returncode == 0, first.stderr[-3000:]
    seed0 = study / "bpe300+scratch" / "seed0"
    before = (seed0 / "summary.json").read_bytes(), (seed0 / "metrics.jsonl").read_bytes()

    second = run_cli("-m", *common, "seed=0,1", cwd=tmp_path)  # the whole sweep again
    assert second.returncode == 0, second.stderr[-3000:]
    out = second.stdout + second.stderr
    assert out.count("nothing to do") == 1
    assert ((seed0 / "summary.json").read_bytes(), (seed0 / "metrics.jsonl").read_bytes()) == before
    found = summaries(study)
    assert sorted(p.relative_to(study).as_posix() for p in found) == [
        "bpe300+scratch/seed0", "bpe300+scratch/seed1"]
    assert all(s["status"] == "completed" for s in found.values())
