"""The scale check's synthetic corpus and its in-process data stages, at a tiny size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from embinit.tools import stream_check


def test_synthetic_corpus_is_zipfian_text_in_documents(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_check, "CHUNK_WORDS", 5_000)
    path = tmp_path / "c.txt"
    out = stream_check.write_synthetic_corpus(path, 60_000, seed=1, n_words=500)
    text = path.read_text(encoding="ascii")
    assert out["bytes"] == len(text) >= 60_000
    assert out["docs"] == text.count("\n\n") + 1
    counts = Counter(text.split())
    ranked = [c for _, c in counts.most_common(20)]
    # Zipf with a = 1.1: the top word is several times as frequent as the 10th.
    assert ranked[0] > 4 * ranked[9]
    # The same seed writes the same corpus.
    again = tmp_path / "d.txt"
    stream_check.write_synthetic_corpus(again, 60_000, seed=1, n_words=500)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("vocab", ["bpe", "word", "word-unk"])
def test_stages_run_on_a_small_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      vocab: str) -> None:
    monkeypatch.setattr(stream_check, "CHUNK_WORDS", 20_000)
    corpus = tmp_path / "corpus.txt"
    written = stream_check.write_synthetic_corpus(corpus, 150_000, seed=0, n_words=2_000)
    out = stream_check.run_stages(corpus, tmp_path, vocab, word2vec=["1", "2:file"])
    assert out["text_bytes"] <= written["bytes"] and out["text_bytes"] > 0.9 * written["bytes"]
    assert out["tokens"] > 0 and out["vocab_size"] > 258
    assert out["token_cache_s"] >= 0 and out["encode_s"] > 0 and out["encode_fast_s"] > 0
    assert out["oov_curve_s"] > 0  # the first arm on a corpus builds the curve
    # Ids only wherever ids suffice; word ids for the word arm's val/test spelled-word rates;
    # offsets for the closed vocabulary. The floor sums each split's own call.
    fast, full = "encode_batch_fast", "encode_batch"
    assert out["cache_encode_calls"] == {
        "bpe": dict(train=fast, val=fast, test=fast), "word": dict(train=fast, val=full, test=full),
        "word-unk": dict(train=full, val=full, test=full)}[vocab]
    bare = out["bare_split_s"]
    for method, total in (("encode_batch", "encode_s"), ("encode_batch_fast", "encode_fast_s")):
        assert sum(bare[method].values()) == pytest.approx(out[total], abs=0.02)
    floor = sum(bare[m][split] for split, m in out["cache_encode_calls"].items())
    assert out["encode_calls_s"] == pytest.approx(floor, abs=0.02)
    # Word2Vec at both settings saw every train token (EODs excluded) and kept vectors for
    # the tokens that occur (min_count 1): at most the vocabulary, at least the 2,000 words'
    # worth of the synthetic text's frequent types.
    w1, w2 = out["word2vec"]
    assert (w1["workers"], w1["corpus_file"], w2["workers"], w2["corpus_file"]) == (1, False,
                                                                                   2, True)
    assert w1["train_tokens"] == w2["train_tokens"] < out["tokens"]
    assert w1["vectors"] == w2["vectors"] <= out["vocab_size"] and w1["vectors"] > 200
    assert w1["words_per_s"] > 0 and not (tmp_path / "w2v_sentences.txt").exists()


@pytest.mark.parametrize("spec", ["x", "0", "2:fil", ":file"])
def test_a_bad_word2vec_spec_is_refused_before_anything_runs(spec: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        stream_check.main(["--gb", "0.001", "--workdir", str(tmp_path / "w"), "--word2vec", spec])
    assert exc.value.code == 2 and "number of workers" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("gb", ["-1", "0", "x"])
def test_a_bad_size_is_refused_before_anything_runs(gb: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        stream_check.main(["--gb", gb, "--workdir", str(tmp_path / "w")])
    assert exc.value.code == 2 and "size in GB above 0" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
