"""logger=wandb, offline: one W&B run per run directory, its id stable across a resume."""

from __future__ import annotations

import json

from tests.cli import TINY, run_cli, write_corpus


def test_offline_wandb_run_files_carry_the_stable_id(tmp_path) -> None:  # noqa: ANN001
    from embinit.run.tracking import run_id

    corpus = write_corpus(tmp_path / "corpus", n_docs=20)
    common = [*TINY, "data=text_files", f"data.path={corpus}", f"paths.root={tmp_path}",
              "logger=wandb", "logger.mode=offline"]
    proc = run_cli(*common, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "experiments" / "default" / "bpe300+scratch" / "seed0"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert runs and all(r.name.endswith(run_id(run_dir)) for r in runs)
    assert list(runs[0].glob("*.wandb"))  # the local run file W&B syncs later
