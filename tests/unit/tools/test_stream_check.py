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


@pytest.mark.parametrize("vocab", ["bpe", "word"])
def test_stages_run_on_a_small_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      vocab: str) -> None:
    monkeypatch.setattr(stream_check, "CHUNK_WORDS", 20_000)
    corpus = tmp_path / "corpus.txt"
    written = stream_check.write_synthetic_corpus(corpus, 150_000, seed=0, n_words=2_000)
    out = stream_check.run_stages(corpus, tmp_path, vocab)
    assert out["text_bytes"] <= written["bytes"] and out["text_bytes"] > 0.9 * written["bytes"]
    assert out["tokens"] > 0 and out["vocab_size"] > 258
    assert out["token_cache_s"] >= 0 and out["encode_s"] > 0
