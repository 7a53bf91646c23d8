"""Run-record identity checks: what may and may not change on resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from embinit.errors import ConfigError
from embinit.record import RunRecord, config_diff, identity

BASE = {
    "seed": 0,
    "paths": {"root": "/a"},
    "logger": {"name": "none"},
    "model": {"d_model": 128},
    "train": {"lr": 1e-3, "log_interval": 10, "num_threads": None},
}


def test_config_diff_lists_dotted_keys() -> None:
    other = {**BASE, "model": {"d_model": 256}}
    assert config_diff(BASE, other) == ["model.d_model: 128 -> 256"]


def test_identity_ignores_paths_logger_and_logging_cadence() -> None:
    other = {**BASE, "paths": {"root": "/b"}, "logger": {"name": "wandb"},
             "train": {**BASE["train"], "log_interval": 1}}
    assert identity(other) == identity(BASE)


def test_check_identity_refuses_a_different_run(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    rec.write_config(BASE)
    rec.check_identity(BASE)
    with pytest.raises(ConfigError, match="train.lr"):
        rec.check_identity({**BASE, "train": {**BASE["train"], "lr": 2e-3}})


def test_truncate_metrics_drops_rows_after_checkpoint(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    for step in (0, 5, 10, 15):
        rec.append_metrics({"step": step})
    rec.truncate_metrics(10)
    assert [r["step"] for r in rec.metrics()] == [0, 5, 10]


def test_torn_last_metrics_line_is_ignored(tmp_path: Path) -> None:
    rec = RunRecord(tmp_path)
    rec.append_metrics({"step": 1})
    with open(rec.metrics_path, "a") as fh:
        fh.write('{"step": 2, "tr')
    assert [r["step"] for r in rec.metrics()] == [1]


# --- the typed contract -------------------------------------------------------------------

from embinit.record import (  # noqa: E402
    InitCompute,
    RunSummary,
    SplitResult,
    StudySettings,
    TrainResult,
    arm_label,
    find_runs,
    read_study_settings,
    read_summary,
    run_dir,
    write_study_settings,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "records" / "arms"


def test_arm_labels_keep_the_closed_word_arm_apart() -> None:
    assert arm_label("bpe", "scratch") == "bpe+scratch"
    assert arm_label("word", "word2vec", "bytes") == "word+word2vec"
    assert arm_label("word", "word2vec", "unk") == "word_unk+word2vec"
    assert arm_label("bpe", "scratch", "unk") == "bpe+scratch"  # oov means nothing for BPE


def test_layout_round_trip(tmp_path: Path) -> None:
    d = run_dir(tmp_path, "s", "bpe+scratch", 2)
    d.mkdir(parents=True)
    (tmp_path / "s" / "bpe+scratch" / "notes").mkdir()  # not a seed directory
    refs = find_runs(tmp_path / "s")
    assert [(r.arm, r.seed, r.dir) for r in refs] == [("bpe+scratch", 2, d)]


def test_summary_round_trip_drops_unmeasured_fields(tmp_path: Path) -> None:
    s = RunSummary(arm="a", vocab="bpe", init="scratch", seed=0, study="s", model="tiny",
                   status="completed",
                   val=SplitResult(loss=1.0, bpb=2.0, bpb_oov_adjusted=2.0, bpb_lossless=2.0,
                                   tokens=3, bytes=4, nats=5.0, doc_nats=[2.0, 3.0],
                                   doc_bytes=[1, 3]),
                   train=TrainResult(steps=1, total_steps=1, tokens_seen=2, bytes_seen=3),
                   init_compute=InitCompute())
    RunRecord(tmp_path).write_summary(s)
    status, raw = read_summary(tmp_path)
    assert status == "completed" and raw is not None
    assert "bpb_sliding" not in raw["val"] and raw["diverged_at_step"] is None
    assert RunSummary.from_dict(raw) == s


def test_old_records_load_with_new_fields_absent() -> None:
    for ref in find_runs(FIXTURE):
        status, raw = read_summary(ref.dir)
        assert status == "completed" and raw is not None
        s = RunSummary.from_dict(raw)
        assert s.val is not None and s.val.doc_nats is None and s.init_compute is None
        assert s.val.bpb == raw["val"]["bpb"]


def test_study_settings_round_trip(tmp_path: Path) -> None:
    assert read_study_settings(tmp_path) is None
    st = StudySettings(name="arms", primary=["word+word2vec", "word+word2vec vs word+scratch"])
    write_study_settings(tmp_path, st)
    assert read_study_settings(tmp_path) == st


def test_study_keys_do_not_block_resume() -> None:
    a = {**BASE, "study": {"name": "x", "description": "old"}}
    b = {**BASE, "study": {"name": "x", "description": "new"}}
    assert identity(a) == identity(b)
