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


def test_every_recorded_departure_from_a_default_names_its_own_directory() -> None:
    from embinit.record import arm_label_of

    base = {"vocab": {"name": "word", "size": 16384, "oov": "bytes", "pretokenizer": "whitespace"},
            "init": {"name": "word2vec", "dim": None, "scale": "std", "oov_rows": "random",
                     "projection": "orthogonal", "lowercase_fallback": True,
                     "fallback_std": None, "freeze": False, "freeze_steps": 0},
            "model": {"d_model": 128, "tie_embeddings": True}, "data": {"train_fraction": 1.0}}
    assert arm_label_of(base) == "word+word2vec"

    def label(section: str, **kw: object) -> str:
        cfg = {k: dict(v) for k, v in base.items()}
        cfg[section].update(kw)
        return arm_label_of(cfg)

    assert label("vocab", size=50000) == "word50k+word2vec"
    assert label("vocab", oov="unk") == "word_unk+word2vec"
    assert label("vocab", pretokenizer="treebank") == "word-treebank+word2vec"
    assert label("init", name="shuffled", source="glove") == "word+shuffled-glove"
    assert label("init", dim=50) == "word+word2vec-d50"
    assert label("init", scale="norm_matched") == "word+word2vec-normmatched"
    assert label("init", oov_rows="mean_cov") == "word+word2vec-oovmeancov"
    assert label("init", projection="pad") == "word+word2vec-pad"
    assert label("init", lowercase_fallback=False) == "word+word2vec-cased"
    assert label("init", fallback_std=0.05) == "word+word2vec-fb0.05"
    assert label("init", freeze=True) == "word+word2vec-frozen"
    assert label("init", freeze_steps=100) == "word+word2vec-freeze100"
    assert label("model", tie_embeddings=False) == "word+word2vec+untied"
    assert label("data", train_fraction=0.3) == "word+word2vec+data0.3"
    # scratch ignores the vector settings, which do not change its matrix
    assert label("init", name="scratch", projection="pad") == "word+scratch"


def test_archive_records_copies_a_rebuildable_study(tmp_path):
    from embinit.record import ARCHIVED_FILES, archive_records, find_runs

    study = tmp_path / "exp" / "arms"
    for arm in ("a+x", "b+y"):
        d = study / arm / "seed0"
        d.mkdir(parents=True)
        for name in ARCHIVED_FILES:
            (d / name).write_text(f"{arm} {name}\n")
        (d / "model.pt").write_bytes(b"weights")  # never archived
    (study / "study.json").write_text('{"name": "arms"}')
    dest = tmp_path / "results" / "arms" / "records"
    (dest / "arms" / "stale+arm" / "seed9").mkdir(parents=True)  # replaced, not merged
    assert archive_records(study, dest) == 2
    out = dest / "arms"
    assert [r.arm for r in find_runs(out)] == ["a+x", "b+y"]
    assert (out / "study.json").read_text() == '{"name": "arms"}'
    assert (out / "a+x" / "seed0" / "summary.json").read_text() == "a+x summary.json\n"
    assert not (out / "a+x" / "seed0" / "model.pt").exists()
    assert not (out / "stale+arm").exists() and not (dest / "arms.new").exists()
    assert archive_records(out, dest) == 2  # archiving an archive onto itself is a no-op
