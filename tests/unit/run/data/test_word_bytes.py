"""vocab=word vocab.oov=bytes: the exact word-level arm (top words + a byte fallback)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from embinit.config import DataConfig, VocabConfig
from embinit.run.data.accounting import oov_rates, spelled_words
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import Corpus, Document, open_corpus
from embinit.run.data.split import iter_split
from embinit.run.data.tokenizer import (
    FIRST_WORD_ID,
    build_or_load_tokenizer,
    byte_alphabet,
    byte_level_word_counts,
    ranked_byte_level_words,
    ranked_words,
    train_tokenizer,
)
from embinit.storage import read_json

WORD_BYTES = VocabConfig(name="word", oov="bytes", size=300, min_count=2)
MIXED = (
    "Tokyo 東京都 is 漢字 and かな; Москва — Привет, мир! مرحبا بالعالم 123 "
    "emoji 😀👍🏽 👨‍👩‍👧 flags 🇫🇷; e\u0301 n\u0303 a\u0308\u0301 (combining marks)\r\n"
    "\ttab\t\tpair\u00a0nbsp\u2003em-space\u3000ideographic\u200bzero-width \u2028 line sep"
    "\n\n\n  lead  \r\r \x0b\x0c\x00 nul  <|endoftext|> <unk> trailing   "
)


def roundtrip(tok: Tokenizer, text: str) -> None:
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.decode(enc.ids) == text
    assert 0 not in enc.ids and 1 not in enc.ids  # specials are never produced


# --- round trips --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki_docs() -> list[str]:
    # A handful of articles of the embedded corpus keeps this fast.
    return [d.text for d in open_corpus(DataConfig(name="wiki_sample", max_docs=3))]


def test_roundtrip_embedded_corpus(wiki_docs):
    tok = train_tokenizer(wiki_docs[:2], VocabConfig(name="word", size=2000, min_count=2))
    assert tok.get_vocab_size() == 2000
    for text in wiki_docs:  # the third article is unseen: many words fall back to bytes
        roundtrip(tok, text)
    enc = tok.encode(wiki_docs[2], add_special_tokens=False)
    assert max(enc.ids) >= FIRST_WORD_ID and min(enc.ids) < FIRST_WORD_ID


def test_roundtrip_multibyte_scripts_and_odd_whitespace():
    tok = train_tokenizer(["the cat sat on the mat"] * 2 + [MIXED] * 2, WORD_BYTES)
    roundtrip(tok, MIXED)
    # Unseen text: nothing of it is in the vocabulary, every byte still comes back.
    unseen = MIXED[::-1] + "Ελληνικά עברית हिन्दी ไทย 한국어 \U0001F9EC\U000E0041"
    roundtrip(tok, unseen)
    assert tok.decode(tok.encode("", add_special_tokens=False).ids) == ""


def test_roundtrip_text_files_corpus_through_the_cache_stage(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    texts = {f"d{i}.txt": f"Doc {i}: the cat sat.\r\n\tΣ {i}{'漢' * i} 😀  end\u00a0{i}\n"
             for i in range(12)}
    for name, text in texts.items():
        (src / name).write_text(text, encoding="utf-8", newline="")
    data = DataConfig(name="text_files", path=str(src), min_doc_chars=1)
    corpus = open_corpus(data)
    tok, path, _ = build_or_load_tokenizer(corpus, data, WORD_BYTES, tmp_path / "cache")
    loaded = Tokenizer.from_file(str(path))  # the saved tokenizer.json is self-contained
    assert loaded.get_vocab() == tok.get_vocab()
    again, path2, reused = build_or_load_tokenizer(corpus, data, WORD_BYTES, tmp_path / "cache")
    assert reused and path2 == path and again.get_vocab() == tok.get_vocab()
    docs = list(corpus)
    assert sorted(d.text for d in docs) == sorted(t.strip() for t in texts.values())
    for doc in docs:
        roundtrip(tok, doc.text)
        assert loaded.decode(loaded.encode(doc.text, add_special_tokens=False).ids) == doc.text


# --- the vocabulary -----------------------------------------------------------------------------


def test_vocabulary_layout_size_and_min_count():
    texts = ["the cat sat on the mat. the cat ran to the dog, again and again!",
             "The dog sat; the cat ran. a b c a b c"]
    counts = byte_level_word_counts(texts)
    cfg = VocabConfig(name="word", size=FIRST_WORD_ID + 5, min_count=2)
    tok = train_tokenizer(texts, cfg)
    vocab = tok.get_vocab()
    assert tok.id_to_token(0) == "<|endoftext|>" and tok.id_to_token(1) == "<unk>"
    assert [tok.id_to_token(i) for i in range(2, FIRST_WORD_ID)] == byte_alphabet()
    assert byte_alphabet() == sorted(pre_tokenizers.ByteLevel.alphabet()) and FIRST_WORD_ID == 258
    assert len(vocab) == cfg.size
    words = [tok.id_to_token(i) for i in range(FIRST_WORD_ID, cfg.size)]
    # By count, ties broken by the string; single-byte words ("." "a") are byte tokens.
    multi = sorted((w for w, c in counts.items() if c >= 2 and len(w) > 1),
                   key=lambda w: (-counts[w], w))
    assert words == multi[:5]
    # Ġthe x4, Ġcat x3, then the count-2 words in string order ("." is a byte already).
    assert words == ["Ġthe", "Ġcat", "Ġa", "Ġagain", "Ġb"]
    # A big size keeps every word seen twice, and none seen once.
    big = train_tokenizer(texts, VocabConfig(name="word", size=10_000, min_count=2))
    kept = {big.id_to_token(i) for i in range(FIRST_WORD_ID, big.get_vocab_size())}
    assert kept == set(multi)
    assert "Ġmat" not in kept and counts["Ġmat"] == 1
    assert big.get_vocab_size() == FIRST_WORD_ID + len(multi)


def test_word_counts_are_gpt2_pretokens():
    assert byte_level_word_counts(["Hello, world!!  hello\n"]) == Counter(
        {"Hello": 1, ",": 1, "Ġworld": 1, "!!": 1, "Ġ": 1, "Ġhello": 1, "Ċ": 1})


@pytest.mark.parametrize("min_count", [1, 2])
def test_rust_ranking_equals_the_python_counts(min_count):
    # The word arm's vocabulary comes from HF's WordLevelTrainer; it must rank exactly the
    # pre-tokens byte_level_word_counts counts, ties broken by the string.
    import random

    rng = random.Random(min_count)
    alphabet = list("ab cdé\n\t  'sllΣσЖ漢字12,.!?-_\u00a0\u3000\x1c\x85😀") + ["'re", " 's"]
    texts = [MIXED, MIXED.upper(), *("".join(rng.choice(alphabet) for _ in range(
        rng.randint(0, 80))) for _ in range(400))]
    ranked = ranked_byte_level_words(texts, min_count)
    assert ranked == ranked_words(byte_level_word_counts(texts), min_count)
    assert len(ranked) > 300


def test_in_vocabulary_word_is_one_token_else_bytes():
    tok = train_tokenizer(["the cat sat. the cat sat."], WORD_BYTES)
    enc = tok.encode("the cat ran", add_special_tokens=False)
    assert enc.tokens == ["t", "h", "e", "Ġcat", "Ġ", "r", "a", "n"]
    assert enc.word_ids == [0, 0, 0, 1, 2, 2, 2, 2]


def test_lowercase_is_rejected_with_bytes():
    from embinit.errors import ConfigError

    with pytest.raises(ConfigError, match="oov=unk"):
        train_tokenizer(["a b"], VocabConfig(name="word", size=300, lowercase=True))


# --- the token cache ----------------------------------------------------------------------------

# split_seed=0, 0.25/0.25: doc0, doc1 -> train; doc2, doc3 -> val; doc12 -> test.
DATA = DataConfig(val_fraction=0.25, test_fraction=0.25, split_seed=0, min_doc_chars=0)
DOCS = {
    "doc0": "the cat sat. the cat sat.",
    "doc1": "a cat sat",
    "doc2": "the cat ran.",
    "doc3": "cat 漢字",
    "doc12": "a dog.  ",
}


def corpus(docs: dict[str, str] = DOCS) -> Corpus:
    return Corpus.from_documents(Document(k, v) for k, v in docs.items())


def build(tmp_path, vocab, docs=DOCS):
    c = corpus(docs)
    tok, path, _ = build_or_load_tokenizer(c, DATA, vocab, tmp_path)
    return tok, build_or_load_token_cache(c, DATA, vocab, tok, path, tmp_path)


def test_spelled_words_hand_computed():
    # words: 0 (1 token, 3 B), 1 (3 tokens, 1+1+2 B), 2 (1 token), 3 (2 tokens, 4 + 0 B)
    word_ids = np.array([0, 1, 1, 1, 2, 3, 3])
    nbytes = np.array([3, 1, 1, 2, 5, 4, 0])
    assert spelled_words(word_ids, nbytes) == (4, 2, 8)
    assert spelled_words(np.array([], dtype=np.int64), np.array([])) == (0, 0, 0)


def test_spelled_shares_exact(tmp_path):
    tok, cache = build(tmp_path, VocabConfig(name="word", size=300, min_count=2))
    # Train words: the, Ġcat x3, Ġsat x3, . x2 (a byte), Ġthe, a (a byte): Ġcat and Ġsat kept.
    assert [tok.id_to_token(i) for i in range(FIRST_WORD_ID, tok.get_vocab_size())] == [
        "Ġcat", "Ġsat"]
    val = cache.splits["val"].stats
    # "the cat ran." -> the (3 tokens) Ġcat Ġran (4) . ; "cat 漢字" -> cat (3) Ġ漢字 (7 bytes).
    assert (val.n_words, val.n_spelled_words) == (6, 4)
    assert val.spelled_bytes == 3 + 4 + 3 + 7
    assert val.n_bytes == 12 + 10
    rates = oov_rates(val)
    assert rates["spelled_word_rate"] == 4 / 6
    assert rates["spelled_byte_share"] == 17 / 22
    assert rates["token_rate"] == rates["unk_byte_share"] == 0.0
    # Nothing is dropped, so nothing is charged: no extra.bin, bpb is exact.
    for split in cache.splits.values():
        s = split.stats
        assert split.charges is None and s.n_unk == 0 and s.n_gaps == 0
        assert s.unk_spelling_nats == s.unk_spelling_nats_ngram == s.layout_nats == 0.0
    assert not any(p.name.endswith("extra.bin") for p in cache.dir.iterdir())
    # Train is encoded ids-only (encode_batch_fast: no word ids), so its spelled words are
    # not counted: None, never a 0 that reads as "no word spelled out"; its rates are NaN.
    train = cache.splits["train"].stats
    assert (train.n_words, train.n_spelled_words, train.spelled_bytes) == (None, None, None)
    assert np.isnan(oov_rates(train)["spelled_word_rate"])
    assert oov_rates(train)["token_rate"] == 0.0
    assert read_json(cache.dir / "meta.json")["splits"]["train"]["n_words"] is None


def test_other_vocabularies_report_no_spelled_words(tmp_path):
    for vocab in (VocabConfig(name="bpe", size=300, min_count=1),
                  VocabConfig(name="word", oov="unk", size=100, min_count=2)):
        _, cache = build(tmp_path, vocab)
        for split in cache.splits.values():
            rates = oov_rates(split.stats)
            assert rates["spelled_word_rate"] == rates["spelled_byte_share"] == 0.0
            assert split.stats.n_words == 0


def per_doc_bytes(ids: np.ndarray, nbytes: np.ndarray, eod: int) -> list[int]:
    ends = np.flatnonzero(np.asarray(ids) == eod)
    csum = np.concatenate(([0], np.cumsum(nbytes, dtype=np.int64)))
    return [int(csum[b] - csum[a]) for a, b in zip(ends[:-1], ends[1:], strict=True)]


def test_every_vocabulary_attributes_the_same_bytes_to_each_document(tmp_path):
    docs = {**DOCS, "doc2": MIXED, "doc3": "  cat\t\t漢字 😀\r\n", "doc0": MIXED[::-1] + " the cat"}
    vocabs = [VocabConfig(name="bpe", size=300, min_count=1),
              VocabConfig(name="word", oov="bytes", size=300, min_count=1),
              VocabConfig(name="word", oov="unk", size=100, min_count=1)]
    totals = []
    for vocab in vocabs:
        _, cache = build(tmp_path, vocab, docs)
        totals.append({name: per_doc_bytes(s.ids, s.nbytes, cache.eod_id)
                       for name, s in cache.splits.items()})
    want = {split: [len(d.text.encode("utf-8")) for d in iter_split(corpus(docs), split, DATA)]
            for split in ("train", "val", "test")}
    assert totals[0] == totals[1] == totals[2] == want
