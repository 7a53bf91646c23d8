"""Both seed arms end to end through the CLI, on a corpus the test writes."""

from __future__ import annotations

import json
import math

import pytest

from tests.cli import TINY, run_cli, write_corpus

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"arm", "status", "params", "val", "test", "oov", "data", "train"}


ARMS = {
    # vocab.size=300 departs from the defaults, so the labels carry the size (record.arm_label_of).
    "bpe": (["vocab=bpe", "init=scratch"], "default", "bpe300+scratch"),
    "word": (["vocab=word", "init=word2vec"], "default", "word300+word2vec"),
    # The closed vocabulary holds only the corpus's words seen twice (82): a size it cannot
    # reach is refused (pipeline.check_vocab_reached), so it asks for 80.
    "unk": (["vocab=word", "vocab.oov=unk", "vocab.size=80", "init=word2vec"], "default",
            "word_unk80+word2vec"),
    "again": (["vocab=word", "init=word2vec", "study.name=again"], "again", "word300+word2vec"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, str]]:
    """bpe+scratch, the exact word arm and the closed word arm with Word2Vec, then the exact
    word arm again in another study."""
    tmp = tmp_path_factory.mktemp("e2e")
    corpus = write_corpus(tmp / "corpus", n_docs=30)
    common = [*TINY, "data=text_files", f"data.path={corpus}", f"paths.root={tmp}",
              "vocab.size=300", "init.epochs=1", "train.eval_sliding=true"]  # smoke skips it
    out = {}
    for name, (arm, study, arm_dir) in ARMS.items():
        proc = run_cli(*common, *arm, cwd=tmp)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run_dir = tmp / "experiments" / study / arm_dir / "seed0"
        out[name] = (json.loads((run_dir / "summary.json").read_text()),
                     (run_dir / "run.log").read_text())
    return out


@pytest.mark.parametrize("name", ["bpe", "word", "unk"])
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
    s, _ = runs["unk"]
    assert s["arm"] == "word_unk80+word2vec"
    assert s["oov"]["init_coverage_tokens"] > 0.9
    assert s["val"]["bpb_lossless"] > s["val"]["bpb_oov_adjusted"]  # whitespace is charged


def test_exact_word_arm_needs_no_external_charge(runs: dict) -> None:
    s, _ = runs["word"]
    assert s["exact"] is True and s["vocab_oov"] == "bytes"
    for split in ("val", "test"):
        r = s[split]
        assert r["bpb"] == r["bpb_oov_adjusted"] == r["bpb_lossless"]
        assert sum(r["doc_charge_nats"]) == 0.0
    # A 300-entry vocabulary holds few words: many are spelled out in bytes, none is <unk>.
    assert s["oov"]["val_token_rate"] == 0.0
    assert 0.0 < s["oov"]["val_spelled_word_rate"] < 1.0


def test_closed_word_arm_is_priced_under_every_speller(runs: dict) -> None:
    s, _ = runs["unk"]
    assert s["exact"] is False and s["vocab_oov"] == "unk"
    by = s["val"]["bpb_lossless_by_speller"]
    assert set(by) == {"unigram", "ngram"}
    assert by["unigram"] == pytest.approx(s["val"]["bpb_lossless"], rel=1e-12)


@pytest.mark.parametrize("name", ["bpe", "word", "unk"])
def test_regime_coordinates_are_recorded(runs: dict, name: str) -> None:
    s, _ = runs[name]
    r, p = s["regime"], s["params"]
    assert r["tokens_seen"] == s["train"]["tokens_seen"]
    assert r["tokens_per_nonembedding_param"] == pytest.approx(
        s["train"]["tokens_seen"] / p["non_embedding"], rel=1e-12)
    assert r["tokens_per_param"] == pytest.approx(s["train"]["tokens_seen"] / p["total"],
                                                  rel=1e-12)
    assert r["epochs"] == pytest.approx(s["train"]["tokens_seen"] / s["data"]["train_tokens"],
                                        rel=1e-12)
    assert r["vocab_rows"] == s["vocab_size"]
    assert 0.0 <= r["rows_never_seen"] <= 1.0 and r["row_occurrences_p10"] <= \
        r["row_occurrences_median"]
    assert r["spelled_word_rate"] == pytest.approx(
        s["oov"]["val_spelled_word_rate"] + s["oov"]["val_token_rate"])


@pytest.mark.parametrize("name", ["bpe", "word", "unk"])
def test_ngram_baselines_cover_the_same_documents(runs: dict, name: str) -> None:
    s, _ = runs[name]
    b = s["baselines"]["ngram"]
    assert sorted(b["orders"], key=int) == ["2", "3", "4", "5"]
    assert b["train_tokens"] == s["data"]["train_tokens"]
    for order in b["orders"].values():
        for split in ("val", "test"):
            doc_nats = order[split]["doc_nats"]
            assert len(doc_nats) == len(s[split]["doc_bytes"]) == s["data"][f"{split}_docs"]
            assert sum(doc_nats) == pytest.approx(order[split]["nats"], rel=1e-9)
            assert all(math.isfinite(x) and x > 0 for x in doc_nats)


@pytest.mark.parametrize("name", ["bpe", "word", "unk"])
def test_per_document_results_add_up_to_the_split(runs: dict, name: str) -> None:
    s, _ = runs[name]
    for split in ("val", "test"):
        r = s[split]
        assert len(r["doc_nats"]) == len(r["doc_bytes"]) == len(r["doc_ids"]) == s["data"][f"{split}_docs"]
        assert sum(r["doc_bytes"]) == r["bytes"]
        assert sum(r["doc_nats"]) == pytest.approx(r["nats"], rel=1e-9)
        charged = r["unk_spelling_nats"] + r["layout_nats"]
        assert sum(r["doc_charge_nats"]) == pytest.approx(charged, rel=1e-5, abs=1e-6)
        # Sliding windows give every target more context: never much worse than non-overlapping.
        assert r["bpb_sliding"] <= r["bpb_lossless"] + 0.05


def test_every_arm_starts_from_the_same_body(runs: dict) -> None:
    hashes = {runs[n][0]["params"]["body_init_sha256"] for n in ("bpe", "word", "unk")}
    assert len(hashes) == 1


def test_init_compute_is_recorded(runs: dict) -> None:
    bpe, word = runs["bpe"][0], runs["word"][0]
    assert bpe["init_compute"]["flops"] == 0 and bpe["init_compute"]["train_tokens"] == 0
    ic = word["init_compute"]
    text_tokens = word["data"]["split_stats"]["train"]["n_text_tokens"]
    assert ic["epochs"] == 1.0 and ic["train_tokens"] == text_tokens
    assert ic["flops"] > 0 and ic["wall_s"] > 0
    assert word["context"]["block_tokens"] == 32 and word["train"]["budget"] == "steps"


def test_second_run_reuses_every_cache(runs: dict) -> None:
    _, first = runs["word"]
    s_again, again = runs["again"]
    assert "training tokenizer" in first and "training Word2Vec" in first
    assert "reusing cached tokenizer" in again
    assert "reusing cached token arrays" in again
    assert "reusing cached Word2Vec vectors" in again
    # Same data, seed and settings: the same result, bit for bit.
    assert s_again["val"] == runs["word"][0]["val"]


def test_training_loss_reaches_the_log_without_a_terminal(runs: dict) -> None:
    # The CLI runs with stderr piped: no progress bar, so the log must carry the loss.
    _, log = runs["bpe"]
    assert "step 1/6: train loss " in log
    assert "step 6/6: train loss " in log and "val loss" in log


def test_report_has_a_baseline_row_per_tokenizer_and_the_regime(runs: dict, tmp_path) -> None:
    """The report of the three arms' study: one n-gram row per token stream and order, each
    arm set against its tokenizer's best n-gram, the regime table, the records archived."""
    import pandas as pd

    from embinit.study.report.build import main

    s, _ = runs["bpe"]
    root = __import__("pathlib").Path(s["data"]["token_cache"]).parents[2]
    out = tmp_path / "report"
    assert main([str(root / "experiments" / "default"), "--out", str(out)]) == 0
    ngram = pd.read_csv(out / "baselines.csv")
    assert len(ngram) == 3 * 4 and sorted(set(ngram["order"])) == [2, 3, 4, 5]
    versus = pd.read_csv(out / "versus_ngram.csv")
    assert sorted(versus["arm"]) == ["bpe300+scratch", "word300+word2vec",
                                     "word_unk80+word2vec"]
    regime = pd.read_csv(out / "regime.csv")
    assert set(regime["arm"]) == set(versus["arm"])
    md = (out / "report.md").read_text()
    head = "\n".join(md.splitlines()[:40])
    assert "n-gram" in head and "tokens per non-embedding parameter" in head
    assert "figures/headline.png" in head
    assert "## Baselines and regime" in md and "seed: GPT-2 small" in md
    assert (out / "records" / "default" / "bpe300+scratch" / "seed0" / "summary.json").is_file()


@pytest.mark.parametrize("name", ["bpe", "word"])
def test_run_tokenizer_round_trips_with_plain_tokenizers(runs: dict, name: str) -> None:
    """A run's tokenizer.json loaded without embinit keeps literal special strings."""
    from pathlib import Path

    from tokenizers import Tokenizer

    s, _ = runs[name]
    root = Path(s["data"]["token_cache"]).parents[2]
    tok = Tokenizer.from_file(str(root / "experiments" / "default" / s["arm"] / "seed0"
                                  / "tokenizer.json"))
    text = "Ein Satz <|endoftext|> und <unk> mitten drin — Ελληνικά, 日本語.\n"
    assert tok.decode(tok.encode(text).ids) == text  # the default decode, as users call it
