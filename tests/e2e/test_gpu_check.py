"""`make gpu-check`'s dry run: every GPU command composes and a tiny CPU version runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from embinit.tools import gpu_check
from tests.cli import cli_env
from tests.conftest import ROOT


def test_dry_run_composes_every_command_and_writes_a_report(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "embinit.tools.gpu_check", "--dry-run",
                           "--out", str(tmp_path)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "dry_run" / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in result["steps"]}
    assert all(s["status"] == "passed" for s in steps.values()), steps
    # 1 test step, 2 vocabularies x (plain, chunked) benches, 2 runs.
    assert [s["name"].split()[0] for s in result["steps"]] == ["CUDA", *["bench"] * 4, "run", "run"]
    selected = steps["CUDA tests"]["result"]["selected"]
    assert any("mfu" in t for t in selected) and any("chunked_loss" in t for t in selected)
    benches = [s for s in result["steps"] if s["name"].startswith("bench")]
    # The GPU commands are what the check would run: gpt2_small, bf16, compiled, both V's.
    for s, (vocab, chunk) in zip(benches, [(50257, "0"), (50257, "2048"), (100000, "0"),
                                           (100000, "2048")], strict=True):
        argv = s["argv"]
        assert argv[argv.index("--vocab") + 1] == str(vocab)
        assert argv[argv.index("--loss-chunk") + 1] == chunk
        assert {"--compile", "bfloat16", "768", "1024"} <= set(argv)
        # Its tiny CPU twin ran, chunked exactly when the GPU command is.
        assert s["result"]["tokens_per_s"] > 0
        assert s["result"]["loss_chunk"] == (0 if chunk == "0" else 8)
    for arm, label in (("bpe_scratch", "bpe"), ("word_word2vec", "word")):
        s = steps[f"run {arm}"]
        assert "model=gpt2_small" in s["argv"] and "train=gpu" in s["argv"]
        assert f"train.max_steps={gpu_check.RUN_STEPS}" in s["argv"]
        assert s["result"]["steps"] == 2 and s["result"]["arm"].startswith(label)
        assert 0 < s["result"]["val_bpb"] < 20
    report = (tmp_path / "dry_run" / "report.md").read_text()
    assert report.startswith("# GPU check (dry run") and "| run word_word2vec | passed |" in report
    assert not (tmp_path / "report.md").exists()  # a dry run never overwrites a real report
    # The tiny runs' records and caches went to a temporary folder, not beside the report.
    assert sorted(p.name for p in (tmp_path / "dry_run").iterdir()) == ["gpu_check.json",
                                                                       "report.md"]


def test_plan_fits_the_eight_minute_budget() -> None:
    steps = gpu_check.plan(Path("/tmp/x"))
    assert gpu_check.BUDGET_S <= 8 * 60
    assert len(steps) == 7 and all(s.timeout_s <= gpu_check.BUDGET_S for s in steps)
