"""study.load: reading run directories into tidy DataFrames (fabricated records)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from embinit.study import load as L
from tests.unit.study.fabricate import STEPS, tiny_params, write_run


def test_load_runs_one_row_per_run_dir(study: Path) -> None:
    runs = L.load_runs(study)
    assert len(runs) == 10
    assert list(runs.columns[:4]) == ["arm", "seed", "status", "run_dir"]
    assert runs["status"].value_counts().to_dict() == {"completed": 8, "diverged": 1, "missing": 1}
    row = runs[(runs["arm"] == "word+word2vec") & (runs["seed"] == 1)].iloc[0]
    assert row["val_bpb"] == pytest.approx(1.32)
    assert row["test_bpb_oov_adjusted"] == pytest.approx(1.47)
    assert row["params_total"] == tiny_params(16384)["total"]
    assert row["oov_val_token_rate"] == 0.02
    assert row["model_config_tie_embeddings"]
    assert row["run_dir"] == "word+word2vec/seed1"
    missing = runs[runs["status"] == "missing"].iloc[0]
    assert (missing["arm"], missing["seed"]) == ("word+word2vec", 3)
    assert "word_oov_curve" not in runs.columns


def test_load_runs_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(L.AnalysisError, match="does not exist"):
        L.load_runs(tmp_path / "nope")
    assert L.load_runs(tmp_path).empty


def test_load_curves_is_tidy(study: Path) -> None:
    curves = L.load_curves(study)
    assert list(curves.columns) == list(L.CURVE_COLUMNS)
    one = curves[(curves["arm"] == "bpe+scratch") & (curves["seed"] == 0)]
    assert list(one["step"]) == list(STEPS)
    assert math.isnan(one["train_loss"].iloc[0])  # eval-only row
    assert math.isnan(one[one["step"] == 10]["val_bpb"].iloc[0])  # train-only row
    assert set(curves[curves["arm"] == "word+scratch"]["status"]) == {"completed", "diverged"}


def test_load_curves_keeps_last_row_of_a_relogged_step(tmp_path: Path) -> None:
    run = write_run(tmp_path / "s", "bpe+scratch", 0)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 50, "val_bpb": 9.0, "bytes_seen": 1}) + "\n")
        fh.write('{"step": 60, "val_')  # torn last line of a killed run
    curves = L.load_curves(tmp_path / "s")
    assert list(curves["step"]) == list(STEPS)
    assert curves["val_bpb"].iloc[-1] == 9.0


def test_load_oov_curve(study: Path) -> None:
    curve = L.load_oov_curve(study)
    assert list(curve["vocab_size"]) == [1000, 4000, 16384]
    assert list(curve["token_rate"]) == [0.20, 0.08, 0.02]


def test_load_docs_keeps_missing_ids_missing(tmp_path: Path) -> None:
    from tests.unit.study.fabricate import write_new_study

    study = write_new_study(tmp_path)
    path = study / "bpe+scratch" / "seed0" / "summary.json"
    rec = json.loads(path.read_text())
    del rec["val"]["doc_ids"]
    path.write_text(json.dumps(rec))
    docs = L.load_docs(study)
    one = docs[(docs["arm"] == "bpe+scratch") & (docs["seed"] == 0)]
    assert one[one["split"] == "val"]["doc_id"].isna().all()  # not invented from positions
    assert list(one[one["split"] == "test"]["doc_id"][:1]) == ["test-doc0"]
    assert L.load_doc_gaps(study).empty


def test_records_without_per_document_losses_are_gaps(study: Path) -> None:
    gaps = L.load_doc_gaps(study)
    assert len(gaps) == 2 * 8  # every split of every completed run
    assert set(gaps["reason"]) == {L.NO_DOC_LOSSES}
