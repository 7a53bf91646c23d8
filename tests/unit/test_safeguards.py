"""The pure pieces of the safeguards against unintended or damaged state (issue 22); the
end-to-end cases are in tests/e2e/test_unintended.py."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from embinit.cli import check_arm_overrides, help_text, sweep_departure, write_failure
from embinit.config import unknown_keys
from embinit.errors import ConfigError, DataError
from embinit.record import RunRecord, departure_name
from embinit.run.pipeline import check_vocab_reached, rerun_command
from embinit.run.train.checkpoint import load_checkpoint_file, save_checkpoint_file
from embinit.run.train.evaluate import EvalProgress, leading_documents
from embinit.storage import atomic_open, remove_stray_temp_files, write_error
from tests.conftest import compose_config


def test_unknown_keys_names_each_with_its_closest_match() -> None:
    cfg = compose_config(["+train.lrr=0.1", "++model.foo=1"])
    problems = unknown_keys(cfg)
    assert any(p.startswith("train.lrr is not a setting") and "did you mean train.lr?" in p
               for p in problems)
    assert any(p.startswith("model.foo is not a setting") and "n_layer" in p for p in problems)
    assert unknown_keys(compose_config([])) == []


def test_an_arm_without_a_config_file_is_refused_with_close_matches() -> None:
    with pytest.raises(ConfigError, match="did you mean arm=word_glove"):
        check_arm_overrides(["arm=wordd_glove"])
    check_arm_overrides(["arm=word_glove"])  # a real arm passes


def test_leading_documents_keeps_whole_documents_within_the_cap() -> None:
    ids = np.array([0, 5, 5, 0, 6, 6, 6, 0, 7, 0])  # three documents: 3, 4 and 2 targets
    assert leading_documents(ids, 0, None) == 10
    assert leading_documents(ids, 0, 9) == 10
    assert leading_documents(ids, 0, 3) == 4 and leading_documents(ids, 0, 6) == 4
    assert leading_documents(ids, 0, 7) == 8
    assert leading_documents(ids, 0, 1) == 4  # the first document whole, even past the cap


def test_vocab_size_out_of_reach_is_refused_when_the_label_names_it(caplog) -> None:
    cfg = compose_config(["vocab.size=10000000"])
    with pytest.raises(ConfigError, match=r"vocab.size=10000000 cannot be reached.*"
                                          r"bpe10000k\+scratch.*Use vocab.size=34885"):
        check_vocab_reached(cfg, 34885)
    check_vocab_reached(cfg, 10_000_000)
    with caplog.at_level(logging.WARNING):  # the default size: no size in the label, warned
        check_vocab_reached(compose_config([]), 5000)
    assert "vocab.size=8192 is not reached" in caplog.text


def test_a_checkpoint_with_flipped_values_fails_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    payload = {"format": 1, "model": {"w": torch.arange(6.0)}, "step": 3}
    save_checkpoint_file(path, payload, {"vocab_size": 10})
    assert load_checkpoint_file(path)["step"] == 3
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"]["w"][2] = 7.0  # what flipped bytes in a tensor amount to
    torch.save(ckpt, path)
    with pytest.raises(DataError, match="fails its checksum"):
        load_checkpoint_file(path)


def test_a_failed_write_names_its_path_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(OSError) as info, atomic_open(target) as fh:
        fh.write(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.filename == str(target) and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    wrapped = RuntimeError("PytorchStreamWriter failed")
    wrapped.__context__ = OSError(errno.EFBIG, "File too large")
    assert write_error(wrapped, target).errno == errno.EFBIG  # torch.save's wrapping
    assert write_error(ValueError("no I/O"), target) is None
    line = write_failure(OSError(errno.ENOSPC, "No space left on device", "/x/checkpoint.pt"))
    assert line.startswith("could not write /x/checkpoint.pt: No space left on device; the "
                           "disk is full") and "\n" not in line


def test_stray_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stray = tmp_path / ".summary.json.a1b2_c3d.tmp"
    keep = [tmp_path / "summary.json", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for p in [stray, *keep]:
        p.write_text("x")
    assert remove_stray_temp_files(tmp_path) == [stray]
    assert all(p.exists() for p in keep) and not stray.exists()
    assert remove_stray_temp_files(tmp_path / "missing") == []


def test_a_departure_is_named_by_its_keys_and_the_refusal_quotes_the_command(
        tmp_path: Path) -> None:
    base = {"seed": 0, "train": {"lr": 0.003, "max_steps": 6}, "model": {"d_model": 32}}
    new = {"seed": 0, "train": {"lr": 0.001, "max_steps": 6}, "model": {"d_model": 32}}
    assert departure_name(base, new) == "lr0.001"
    assert departure_name(base, base) == "custom"
    argv = ["/src/run.py", "train.lr=0.001", "train=smoke"]
    assert rerun_command("default", "lr0.001", argv) == (
        "python run.py train.lr=0.001 train=smoke study.name=lr0.001")
    assert rerun_command("arms", "lr0.001", ["embinit-train", "hydra.run.dir=/r"]) == (
        "embinit-train hydra.run.dir=/r-lr0.001")
    record = RunRecord(tmp_path)
    record.write_config(base)
    with pytest.raises(ConfigError, match=r"study of their own with\n  python run.py x "
                                          r"study.name=lr0.001"):
        record.check_identity(new, lambda name: f"python run.py x study.name={name}")


def test_a_sweep_departs_from_its_study_only_when_its_runs_change() -> None:
    assert sweep_departure("arms", ["train.num_threads=2", "logger=none"]) is None
    assert sweep_departure("arms", ["train=smoke"]) == "smoke"
    assert sweep_departure("arms", ["seed=0"]) == "seed0"
    assert sweep_departure("arms", ["hydra.sweeper.params.seed=0"]) == "custom"


def test_help_has_one_line_per_group_and_per_arm() -> None:
    arms = help_text("arms").splitlines()
    assert len(arms) == len(list((Path(__file__).parents[2] / "embinit/conf/arm").glob("*")))
    assert any(line.split()[0] == "bpe_scratch" and "Reference arm" in line for line in arms)
    groups = {line.split()[0]: line for line in help_text("groups").splitlines()}
    assert set(groups) >= {"arm", "data", "init", "model", "study", "train", "vocab"}
    assert "bpe | word" in groups["vocab"] and "tokenizer" in groups["vocab"]


def test_eval_progress_logs_when_there_is_no_terminal(caplog) -> None:
    with caplog.at_level(logging.INFO), EvalProgress("final val", 10, every=0.0) as progress:
        for _ in range(5):
            progress(2)
    assert "final val: 2/10 windows (20%)" in caplog.text and "ETA" in caplog.text
    assert "final val: 10 windows in" in caplog.text


def test_smoke_caps_the_final_evaluation() -> None:
    smoke = OmegaConf.load(Path(__file__).parents[2] / "embinit/conf/train/smoke.yaml")
    assert smoke.eval_sliding is False and smoke.final_eval_tokens > 0


def test_a_capped_final_evaluation_keeps_whole_documents_and_says_so() -> None:
    from embinit.run.data.accounting import SplitStats
    from embinit.run.data.cache import TokenSplit
    from embinit.run.pipeline import final_eval_split, trim_baselines

    ids = np.array([0, 5, 5, 0, 6, 6, 6, 0, 7, 0])
    split = TokenSplit(ids, np.ones(10, dtype=np.uint32), SplitStats(n_docs=3))
    cfg = compose_config(["train.final_eval_tokens=7"])
    head, partial = final_eval_split(cfg, split, eod_id=0)
    assert list(head.ids) == [0, 5, 5, 0, 6, 6, 6, 0] and len(head.nbytes) == 8
    assert partial == {"docs": 2, "of": 3, "max_tokens": 7}
    assert final_eval_split(compose_config([]), split, eod_id=0) == (split, None)
    # The closed vocabulary's charges are split totals: it is always evaluated whole.
    closed = compose_config(["train.final_eval_tokens=7", "vocab=word", "vocab.oov=unk"])
    assert final_eval_split(closed, split, eod_id=0)[1] is None
    baselines = {"ngram": {"orders": {"2": {"val": {"doc_nats": [1.0, 2.0, 4.0], "nats": 7.0}}}}}
    trim_baselines(baselines, "val", 2)
    assert baselines["ngram"]["orders"]["2"]["val"] == {"doc_nats": [1.0, 2.0], "nats": 3.0}
