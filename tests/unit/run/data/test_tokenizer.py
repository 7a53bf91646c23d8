"""Tokenizer stage: exact word vocabularies and OOV counts, lossless BPE, caching, OOV curve."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from embinit.config import DataConfig, VocabConfig
from embinit.run.data.accounting import oov_curve, oov_rates, word_counts
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.tokenizer import build_or_load_tokenizer, tokenizer_key, train_tokenizer

# With split_seed=0 and 0.25/0.25 fractions: doc0, doc1 -> train; doc2, doc3 -> val;
# doc12 -> test (pinned in test_split.py).
DATA = DataConfig(val_fraction=0.25, test_fraction=0.25, split_seed=0, min_doc_chars=0)
DOCS = {
    "doc0": "the cat sat on the mat.",
    "doc1": "The cat ran to the dog!",
    "doc2": "the cat saw the cow.",
    "doc3": "cat",
    "doc12": "a dog.",
}
WORD = VocabConfig(name="word", oov="unk", size=100, min_count=2)  # the closed vocabulary
BPE = VocabConfig(name="bpe", size=300, min_count=1)


def corpus() -> Corpus:
    return Corpus.from_documents(Document(k, v) for k, v in DOCS.items())


def test_word_vocab_exact_from_train_split_only(tmp_path):
    tok, path, reused = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)
    # Train words: the x3, cat x2, everything else once; min_count=2 keeps two words.
    assert tok.get_vocab() == {"<|endoftext|>": 0, "<unk>": 1, "the": 2, "cat": 3}
    assert path.name == "tokenizer.json" and path.exists() and not reused
    assert tok.encode("the dog", add_special_tokens=False).ids == [2, 1]


def test_word_oov_counts_exact_on_val(tmp_path):
    c = corpus()
    tok, path, _ = build_or_load_tokenizer(c, DATA, WORD, tmp_path)
    cache = build_or_load_token_cache(c, DATA, WORD, tok, path, tmp_path)
    val = cache.splits["val"].stats
    # val: "the cat saw the cow." + "cat" -> 7 word tokens; saw, cow and "." are unknown.
    assert (val.n_text_tokens, val.n_unk, val.n_types, val.n_unk_types) == (7, 3, 5, 3)
    assert val.unk_bytes == len("saw") + len("cow") + len(".")
    assert val.n_bytes == 20 + 3
    assert oov_rates(val) == pytest.approx(
        {"token_rate": 3 / 7, "type_rate": 3 / 5, "unk_byte_share": 7 / 23,
         "spelled_word_rate": 0.0, "spelled_byte_share": 0.0})


def test_word_lowercase_option():
    texts = [DOCS["doc0"], DOCS["doc1"]]
    tok = train_tokenizer(texts, VocabConfig(name="word", oov="unk", size=6, min_count=1,
                                             lowercase=True))
    # the x4 (The folded in), cat x2, then count-1 ties in string order: "!" before ".".
    assert tok.get_vocab() == {"<|endoftext|>": 0, "<unk>": 1, "the": 2, "cat": 3, "!": 4, ".": 5}
    enc = tok.encode("THE Cat", add_special_tokens=False)
    assert enc.ids == [2, 3]
    assert enc.offsets == [(0, 3), (4, 7)]  # offsets still index the original text
    cased = train_tokenizer(texts, VocabConfig(name="word", oov="unk", size=100, min_count=1))
    assert "The" in cased.get_vocab() and "the" in cased.get_vocab()


def test_literal_special_token_in_text_is_text():
    for vocab in (VocabConfig(name="word", oov="unk", size=100), VocabConfig(name="word", size=300)):
        tok = train_tokenizer(["a b <|endoftext|> c"] * 3, vocab)
        ids = tok.encode("a <|endoftext|>", add_special_tokens=False).ids
        assert 0 not in ids


def test_bpe_has_no_unk_and_round_trips(tmp_path):
    c = corpus()
    tok, path, _ = build_or_load_tokenizer(c, DATA, BPE, tmp_path)
    assert tok.token_to_id("<|endoftext|>") == 0 and tok.token_to_id("<unk>") == 1
    text = "Naïve café — 漢字 😀\n\ttabs  and   spaces <|endoftext|> never seen: ʃ"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert 1 not in ids and 0 not in ids
    assert tok.decode(ids) == text
    cache = build_or_load_token_cache(c, DATA, BPE, tok, path, tmp_path)
    for split in cache.splits.values():
        assert split.stats.n_unk == 0
        assert oov_rates(split.stats) == {"token_rate": 0.0, "type_rate": 0.0,
                                          "unk_byte_share": 0.0, "spelled_word_rate": 0.0,
                                          "spelled_byte_share": 0.0}


def test_tokenizer_cache_reuse_and_corrupt_file(tmp_path, caplog):
    c = corpus()
    tok, path, reused = build_or_load_tokenizer(c, DATA, WORD, tmp_path)
    assert not reused
    with caplog.at_level(logging.INFO, logger="embinit.run.data.tokenizer"):
        again, path2, reused = build_or_load_tokenizer(c, DATA, WORD, tmp_path)
    assert reused and path2 == path and f"reusing cached tokenizer {path}" in caplog.text
    assert again.get_vocab() == tok.get_vocab()
    path.write_text(path.read_text()[:100])  # torn file
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embinit.run.data.tokenizer"):
        rebuilt, _, reused = build_or_load_tokenizer(c, DATA, WORD, tmp_path)
    assert not reused and "retraining" in caplog.text
    assert rebuilt.get_vocab() == tok.get_vocab()


def test_tokenizer_key_tracks_what_matters():
    base = tokenizer_key("fp", DATA, WORD)
    assert base == tokenizer_key("fp", DATA, WORD)
    assert base != tokenizer_key("fp2", DATA, WORD)
    assert base != tokenizer_key("fp", DataConfig(**{**DATA.__dict__, "split_seed": 1}), WORD)
    assert base != tokenizer_key("fp", DATA, VocabConfig(name="word", oov="unk", size=101,
                                                         min_count=2))
    assert base != tokenizer_key("fp", DATA, VocabConfig(name="word", oov="bytes", size=100,
                                                         min_count=2))
    # BPE is byte-level whatever vocab.oov says: the setting does not split its cache.
    assert tokenizer_key("fp", DATA, BPE) == tokenizer_key(
        "fp", DATA, VocabConfig(name="bpe", oov="unk", size=300, min_count=1))
    # Where the corpus came from does not matter, only its content (the fingerprint).
    assert base == tokenizer_key("fp", DataConfig(**{**DATA.__dict__, "name": "text_files",
                                                     "path": "/x"}), WORD)


def test_word_counts_use_whitespace_pretokenizer():
    assert word_counts(["Hello, world!! hello"]) == Counter(
        {"Hello": 1, ",": 1, "world": 1, "!!": 1, "hello": 1})
    assert word_counts(["Hello, world!! hello"], lowercase=True)["hello"] == 2


def test_oov_curve_exact():
    train = Counter({"a": 5, "b": 3, "c": 3, "d": 1})
    evals = Counter({"a": 2, "b": 1, "c": 1, "e": 4})  # 8 tokens, 4 types
    curve = oov_curve(train, evals, [0, 1, 2, 3, 10])
    assert curve == [
        {"vocab_size": 0, "token_rate": 1.0, "type_rate": 1.0},
        {"vocab_size": 1, "token_rate": 6 / 8, "type_rate": 3 / 4},
        {"vocab_size": 2, "token_rate": 5 / 8, "type_rate": 2 / 4},  # tie b/c: b kept
        {"vocab_size": 3, "token_rate": 4 / 8, "type_rate": 1 / 4},
        {"vocab_size": 10, "token_rate": 4 / 8, "type_rate": 1 / 4},
    ]
    tie = oov_curve(Counter({"c": 3, "b": 3}), Counter({"b": 1, "c": 1}), [1])
    assert tie == [{"vocab_size": 1, "token_rate": 0.5, "type_rate": 0.5}]
    assert oov_curve(train, Counter(), [1]) == [{"vocab_size": 1, "token_rate": 0.0,
                                                 "type_rate": 0.0}]
