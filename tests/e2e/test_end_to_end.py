"""Both seed arms end to end through the CLI, on a corpus the test writes."""

from __future__ import annotations

import json
import math

import pytest

from tests.cli import TINY, run_cli, write_corpus

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"arm", "status", "params", "val", "test", "oov", "data", "train"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, str]]:
    """Run bpe+scratch and word+word2vec once each, then word+word2vec again in another study."""
    tmp = tmp_path_factory.mktemp("e2e")
    corpus = write_corpus(tmp / "corpus", n_docs=30)
    common = [*TINY, "data=text_files", f"data.path={corpus}", f"paths.root={tmp}",
              "vocab.size=300", "init.epochs=1"]
    out = {}
    for name, arm in (("bpe", ["vocab=bpe", "init=scratch"]),
                      ("word", ["vocab=word", "init=word2vec"]),
                      ("again", ["vocab=word", "init=word2vec", "study.name=again"])):
        proc = run_cli(*common, *arm, cwd=tmp)
        assert proc.returncode == 0, proc.stderr[-2000:]
        study = "again" if name == "again" else "default"
        arm_dir = "bpe+scratch" if name == "bpe" else "word+word2vec"
        run_dir = tmp / "experiments" / study / arm_dir / "seed0"
        out[name] = (json.loads((run_dir / "summary.json").read_text()),
                     (run_dir / "run.log").read_text())
    return out


@pytest.mark.parametrize("name", ["bpe", "word"])
def test_summary_is_complete_and_consistent(runs: dict, name: str) -> None:
    s, _ = runs[name]
    assert set(s) >= SUMMARY_KEYS
    assert s["status"] == "completed"
    p = s["params"]
    assert p["total"] == p["embedding"] + p["output_head"] + p["non_embedding"]
    for split in ("val", "test"):
        r = s[split]
        # bpb = loss x tokens / (ln 2 x bytes), with the bytes of the whole split.
        assert r["bpb"] == pytest.approx(r["loss"] * r["tokens"] / (math.log(2) * r["bytes"]),
                                         rel=1e-12)
        assert r["bytes"] == s["data"][f"{split}_bytes"]
        assert r["tokens"] == s["data"][f"{split}_tokens"] - 1
        assert r["bpb"] <= r["bpb_oov_adjusted"] <= r["bpb_lossless"]
    assert s["train"]["steps"] == 6 and s["train"]["tokens_per_s"] > 0


def test_bpe_has_no_oov_and_no_init_coverage(runs: dict) -> None:
    s, _ = runs["bpe"]
    assert s["oov"]["val_token_rate"] == 0.0 and s["oov"]["val_unk_byte_share"] == 0.0
    assert s["val"]["bpb"] == s["val"]["bpb_lossless"]
    assert s["oov"]["init_coverage_tokens"] is None


def test_word2vec_arm_covers_the_train_tokens(runs: dict) -> None:
    s, _ = runs["word"]
    assert s["arm"] == "word+word2vec"
    assert s["oov"]["init_coverage_tokens"] > 0.9
    assert s["val"]["bpb_lossless"] > s["val"]["bpb_oov_adjusted"]  # whitespace is charged


def test_second_run_reuses_every_cache(runs: dict) -> None:
    _, first = runs["word"]
    s_again, again = runs["again"]
    assert "training tokenizer" in first and "training Word2Vec" in first
    assert "reusing cached tokenizer" in again
    assert "reusing cached token arrays" in again
    assert "reusing cached Word2Vec vectors" in again
    # Same data, seed and settings: the same result, bit for bit.
    assert s_again["val"] == runs["word"][0]["val"]
