"""Word2Vec at scale: init.workers honoured, corpus_file mode, per-epoch progress lines."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from embinit.config import InitConfig
from embinit.run.data.tokenizer import logged_progress
from embinit.run.init import vectors as vec
from embinit.run.init.vectors import (
    TokenSentences,
    build_or_load_vectors,
    train_word2vec,
    vectors_key,
    write_corpus_file,
)


@dataclass
class FileModeConfig(InitConfig):
    # init.corpus_file, as the schema will carry it (read with getattr until it does).
    corpus_file: bool = True


def stream(n_tokens: int = 6000, vocab_size: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.3, size=n_tokens) % (vocab_size - 1) + 1).astype(np.uint16)
    ids[::200] = 0
    return ids, ["<eod>"] + [f"w{i}" for i in range(1, vocab_size)]


def test_workers_reach_gensim(monkeypatch):
    seen: dict[str, object] = {}
    real = vec.Word2Vec

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(vec, "Word2Vec", spy)
    ids, vocab = stream()
    kv = train_word2vec(TokenSentences(ids, vocab, 0), InitConfig(workers=3, epochs=1, seed=0), dim=8)
    assert seen["workers"] == 3 and "sentences" in seen and "corpus_file" not in seen
    assert len(kv) == len(set(ids.tolist()) - {0})


def test_every_epoch_logs_a_progress_line(caplog):
    ids, vocab = stream()
    with caplog.at_level(logging.INFO, logger="embinit.run.init.vectors"):
        train_word2vec(TokenSentences(ids, vocab, 0), InitConfig(epochs=3, seed=0), dim=8)
    lines = [r.getMessage() for r in caplog.records if "Word2Vec epoch" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == [
        "Word2Vec epoch 1/3", "Word2Vec epoch 2/3", "Word2Vec epoch 3/3"]
    assert all("words/s" in line for line in lines)


def test_corpus_file_written_as_line_sentences(tmp_path: Path):
    path = tmp_path / "s.txt"
    n = write_corpus_file([["a", "b"], ["x\x1cy", "c"], ["\u2028"], []], path)
    assert path.read_text(encoding="utf-8") == "a b\nc\n" and n == 3


def test_corpus_file_mode_trains_caches_and_cleans_up(tmp_path: Path, caplog):
    ids, vocab = stream()
    cfg = FileModeConfig(name="word2vec", workers=2, epochs=2, seed=0)

    def sentences() -> TokenSentences:
        return TokenSentences(ids, vocab, 0)

    with caplog.at_level(logging.INFO):
        kv, path, reused = build_or_load_vectors(cfg, 8, sentences, "tok", tmp_path)
    assert not reused and path is not None and path.is_file()
    assert set(kv.index_to_key) == {vocab[i] for i in set(ids.tolist()) - {0}}
    assert not (path.parent / "sentences.txt").exists()  # the text copy is not kept
    assert "not bit-reproducible" in caplog.text
    # Its own cache key (the default key is unchanged), and the entry is reused.
    default = InitConfig(name="word2vec", workers=2, epochs=2, seed=0)
    assert vectors_key("tok", cfg, 8) != vectors_key("tok", default, 8)
    assert path.parent.name == vectors_key("tok", cfg, 8)
    again, _, reused = build_or_load_vectors(cfg, 8, sentences, "tok", tmp_path)
    assert reused and np.array_equal(again.vectors, kv.vectors)


def test_default_stays_single_worker_and_reproducible():
    cfg = InitConfig()
    assert cfg.workers == 1 and not vec.uses_corpus_file(cfg)
    ids, vocab = stream()
    a = train_word2vec(TokenSentences(ids, vocab, 0), InitConfig(epochs=1, seed=0), dim=8)
    b = train_word2vec(TokenSentences(ids, vocab, 0), InitConfig(epochs=1, seed=0), dim=8)
    assert np.array_equal(a.vectors, b.vectors)


def test_bad_workers_is_a_config_error():
    from embinit.errors import ConfigError

    with pytest.raises(ConfigError, match="init.workers=0"):
        train_word2vec([["a"]], InitConfig(workers=0, seed=0), dim=4)


def test_tokenizer_training_logs_progress(caplog):
    with caplog.at_level(logging.INFO, logger="embinit.run.data.tokenizer"):
        assert list(logged_progress(["ab", "cde"], every=0.0)) == ["ab", "cde"]
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0].startswith("tokenizer training: read 1 documents")
    assert msgs[-1].startswith("tokenizer training: read all 2 train documents")
