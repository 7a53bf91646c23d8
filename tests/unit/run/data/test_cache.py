"""Token cache: exact byte attribution, stream layout, verified reuse, rebuilds, <unk> pricing."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from embinit.config import DataConfig, VocabConfig
from embinit.metrics import SpellingModel
from embinit.run.data.accounting import token_byte_lengths
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.split import split_byte_counts, split_doc_counts
from embinit.run.data.tokenizer import build_or_load_tokenizer, train_tokenizer

# split_seed=0, 0.25/0.25: doc0, doc1 -> train; doc2, doc3 -> val; doc12 -> test.
DATA = DataConfig(val_fraction=0.25, test_fraction=0.25, split_seed=0, min_doc_chars=0)
DOCS = {
    "doc0": "the cat sat on the mat. Café über 漢字!",
    "doc1": "The cat ran   to the dog 😀 again\n\nand again.",
    "doc2": "the cat saw the cow. Café",
    "doc3": "cat über",
    "doc12": "a dog.  ",
}
WORD = VocabConfig(name="word", oov="unk", size=100, min_count=2)  # the closed vocabulary
BPE = VocabConfig(name="bpe", size=300, min_count=1)


def corpus() -> Corpus:
    return Corpus.from_documents(Document(k, v) for k, v in DOCS.items())


def build(tmp_path, vocab=WORD, c=None):
    c = c or corpus()
    tok, path, _ = build_or_load_tokenizer(c, DATA, vocab, tmp_path)
    return build_or_load_token_cache(c, DATA, vocab, tok, path, tmp_path)


# --- byte attribution --------------------------------------------------------------------------


def test_byte_lengths_ascii():
    assert token_byte_lengths("ab cd", [(0, 2), (3, 5)]).tolist() == [2, 3]
    # Trailing bytes go to the last token.
    assert token_byte_lengths("ab cd  ", [(0, 2), (3, 5)]).tolist() == [2, 5]


def test_byte_lengths_multibyte():
    # é = 2 bytes, 漢 = 3, 😀 = 4.
    assert token_byte_lengths("é漢😀", [(0, 1), (1, 2), (2, 3)]).tolist() == [2, 3, 4]
    # Byte-level tokens sharing a character: the first one is charged, the rest get 0.
    split = [(0, 1), (0, 1), (1, 2), (1, 2), (1, 2), (2, 3)]
    assert token_byte_lengths("é漢😀", split).tolist() == [2, 0, 3, 0, 0, 4]
    assert token_byte_lengths("x é", [(0, 1), (2, 3)]).tolist() == [1, 3]


def test_byte_lengths_whitespace_heavy():
    text = "  a \n\t b  "
    lengths = token_byte_lengths(text, [(2, 3), (7, 8)])
    assert lengths.tolist() == [3, 7]  # leading spaces to the first token, the rest to the last
    assert lengths.sum() == len(text.encode())


def test_byte_lengths_no_tokens_is_an_error():
    with pytest.raises(ValueError):
        token_byte_lengths("", [])


@pytest.mark.parametrize("vocab", [
    VocabConfig(name="bpe", size=300, min_count=1),
    VocabConfig(name="word", oov="unk", size=300, min_count=1, lowercase=True),
    VocabConfig(name="word", oov="bytes", size=300, min_count=1),
], ids=["bpe", "word-unk", "word-bytes"])
def test_byte_lengths_sum_with_real_tokenizers(vocab):
    texts = list(DOCS.values()) + ["  ñandú 🐍🐍 x\u200by  ", "İstanbul ΣΊΣΥΦΟΣ"]
    tok = train_tokenizer(texts, vocab)
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        lengths = token_byte_lengths(text, enc.offsets)
        assert lengths.sum() == len(text.encode("utf-8"))
        assert (lengths >= 0).all()


# --- the cache ---------------------------------------------------------------------------------


def test_cache_layout_and_exact_bytes(tmp_path):
    cache = build(tmp_path)
    assert not cache.reused
    assert (cache.eod_id, cache.unk_id, cache.vocab_size) == (0, 1, 6)
    byte_counts = split_byte_counts(corpus(), DATA)
    doc_counts = split_doc_counts(corpus(), DATA)
    for name, split in cache.splits.items():
        ids, nbytes, s = split.ids, split.nbytes, split.stats
        assert ids.dtype == np.uint16 and nbytes.dtype == np.uint32
        assert ids[0] == cache.eod_id and ids[-1] == cache.eod_id
        assert int(nbytes.sum()) == byte_counts[name] == s.n_bytes
        assert (nbytes[ids == cache.eod_id] == 0).all()
        assert int((ids == cache.eod_id).sum()) == doc_counts[name] + 1 == s.n_docs + 1
        assert s.n_tokens == len(ids) == s.n_text_tokens + s.n_docs + 1
        assert s.n_targets == s.n_tokens - 1
        with pytest.raises(ValueError):
            ids[0] = 5  # read-only memmap
    counts = cache.train_token_counts()
    assert counts.shape == (cache.vocab_size,) and counts[0] == doc_counts["train"] + 1
    assert counts.sum() == len(cache.splits["train"].ids)
    assert [row["vocab_size"] for row in cache.word_oov_curve][:2] == [1000, 2000]


def test_val_stream_exact(tmp_path):
    cache = build(tmp_path)
    # Train words seen twice or more: the x3, then the count-2 ties in string order.
    vocab = {"<|endoftext|>": 0, "<unk>": 1, "the": 2, ".": 3, "again": 4, "cat": 5}
    tok, _, _ = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)
    assert tok.get_vocab() == vocab
    # val = [EOD] the cat saw the cow . Café [EOD] cat über [EOD]; a token is charged the
    # space before it, Café and über are 5 bytes each.
    val = cache.splits["val"]
    assert val.ids.tolist() == [0, 2, 5, 1, 2, 1, 3, 1, 0, 5, 1, 0]
    assert val.nbytes.tolist() == [0, 3, 4, 4, 4, 4, 1, 6, 0, 3, 6, 0]


def test_unk_spelling_nats_hand_computed(tmp_path):
    cache = build(tmp_path)
    train_words = ["the", "cat", "sat", "on", "the", "mat", ".", "Café", "über", "漢字", "!",
                   "The", "cat", "ran", "to", "the", "dog", "😀", "again", "and", "again", "."]
    model = SpellingModel.fit(train_words)
    np.testing.assert_array_equal(cache.spelling_model().log_probs, model.log_probs)
    val_unk = ["saw", "cow", "Café", "über"]
    val = cache.splits["val"].stats
    assert (val.n_unk, val.n_unk_types) == (4, 4)
    assert val.unk_bytes == sum(len(w.encode()) for w in val_unk) == 16
    assert val.unk_spelling_nats == pytest.approx(sum(model.cost(w) for w in val_unk), rel=1e-12)
    # Train's own unknowns are priced by the same model (every once-seen word is <unk>).
    train = cache.splits["train"].stats
    train_unk = [w for w in train_words if train_words.count(w) < 2]
    assert train.n_unk == len(train_unk)
    assert train.unk_spelling_nats == pytest.approx(sum(model.cost(w) for w in train_unk))


def test_reuse_on_second_call(tmp_path, caplog):
    first = build(tmp_path)
    with caplog.at_level(logging.INFO, logger="embinit.run.data.cache"):
        second = build(tmp_path)
    assert second.reused and second.dir == first.dir
    assert "reusing cached token arrays" in caplog.text
    for name in first.splits:
        np.testing.assert_array_equal(first.splits[name].ids, second.splits[name].ids)
        assert first.splits[name].stats == second.splits[name].stats


def test_flipped_byte_triggers_rebuild(tmp_path, caplog):
    first = build(tmp_path)
    expected = np.array(first.splits["val"].ids)
    path = first.dir / "val.ids.bin"
    data = bytearray(path.read_bytes())
    data[2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="embinit.run.data.cache"):
        rebuilt = build(tmp_path)
    assert not rebuilt.reused
    assert "sha256" in caplog.text
    np.testing.assert_array_equal(rebuilt.splits["val"].ids, expected)
    assert build(tmp_path).reused


def test_missing_meta_is_a_partial_entry(tmp_path, caplog):
    first = build(tmp_path)
    (first.dir / "meta.json").unlink()
    with caplog.at_level(logging.WARNING, logger="embinit.run.data.cache"):
        rebuilt = build(tmp_path)
    assert not rebuilt.reused and "no meta.json" in caplog.text
    assert (first.dir / "meta.json").exists()


def test_truncated_file_and_torn_meta_trigger_rebuild(tmp_path):
    first = build(tmp_path)
    path = first.dir / "train.nbytes.bin"
    path.write_bytes(path.read_bytes()[:-4])
    assert not build(tmp_path).reused
    (first.dir / "meta.json").write_text('{"format": 1, "key"')
    assert not build(tmp_path).reused
    meta = json.loads((first.dir / "meta.json").read_text())
    assert set(meta["files"]) == {f"{s}.{k}.bin" for s in ("train", "val", "test")
                                  for k in ("ids", "nbytes")} | {"val.extra.bin", "test.extra.bin"}
    assert len(meta["spelling_counts"]) == 257


def test_bpe_cache_bytes_exact(tmp_path):
    cache = build(tmp_path, vocab=BPE)
    byte_counts = split_byte_counts(corpus(), DATA)
    for name, split in cache.splits.items():
        assert int(split.nbytes.sum()) == byte_counts[name]
        assert split.stats.n_unk == 0 and split.stats.unk_spelling_nats == 0.0


def test_layout_nats_hand_computed(tmp_path):
    """The whitespace the word tokenizer drops, priced by a LayoutModel fitted on train gaps."""
    from embinit.metrics import LayoutModel, layout_events

    cache = build(tmp_path)
    tok, _, _ = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)

    def events(text):
        return layout_events(text, tok.encode(text, add_special_tokens=False).offsets)

    train_events = events(DOCS["doc0"]) + events(DOCS["doc1"])
    model = LayoutModel.fit(train_events, cache.spelling_model())
    val_events = events(DOCS["doc2"]) + events(DOCS["doc3"])
    val = cache.splits["val"].stats
    # 7 tokens + 1 in doc2, 2 + 1 in doc3: one gap before each token and one at each doc end.
    assert val.n_gaps == len(val_events) == 11
    assert val.layout_nats == pytest.approx(sum(model.cost(c, g) for c, g in val_events), rel=1e-12)
    # The gap before "." after "cow" is empty and seen in train's "w|p" context.
    assert ("w|p", "") in val_events and ("w|p", "") in train_events


def test_bpe_has_no_layout_charge(tmp_path):
    cache = build(tmp_path, vocab=BPE)
    assert all(s.stats.n_gaps == 0 and s.stats.layout_nats == 0.0 for s in cache.splits.values())


def test_extra_charges_sum_to_the_split_charges(tmp_path):
    """Per-token lossless charges: gap before each token, trailing gap on EOD, <unk> spelling."""
    cache = build(tmp_path)
    assert cache.splits["train"].charges is None  # only held-out splits are charged
    for name in ("val", "test"):
        split = cache.splits[name]
        assert split.charges is not None and len(split.charges) == len(split.ids)
        assert split.charges[0] == 0.0  # the leading EOD is not a target
        assert float(split.charges.astype(np.float64).sum()) == pytest.approx(
            split.stats.layout_nats + split.stats.unk_spelling_nats, rel=1e-6)
    # val doc "cat über": tokens cat, über(<unk>), then EOD with the trailing gap "".
    from embinit.metrics import LayoutModel

    tok, _, _ = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)
    from embinit.metrics import layout_events

    train_events = [e for d in ("doc0", "doc1") for e in layout_events(
        DOCS[d], tok.encode(DOCS[d], add_special_tokens=False).offsets)]
    layout = LayoutModel.fit(train_events, cache.spelling_model())
    want = [layout.cost("^|w", ""), layout.cost("w|w", " ") + cache.spelling_model().cost("über"),
            layout.cost("w|^", "")]
    np.testing.assert_allclose(cache.splits["val"].charges[-3:], want, rtol=1e-6)


def test_bpe_cache_has_no_extra_charges(tmp_path):
    cache = build(tmp_path, vocab=BPE)
    assert all(split.charges is None for split in cache.splits.values())


def unk_surfaces(tok, texts) -> list[str]:
    out = []
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        out += [text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if i == 1]
    return out


def test_unk_spelling_nats_ngram_fitted_on_train_unk_surfaces(tmp_path):
    from embinit.metrics import NgramSpeller

    cache = build(tmp_path)
    tok, _, _ = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)
    train_unk = unk_surfaces(tok, [DOCS["doc0"], DOCS["doc1"]])
    assert "sat" in train_unk and "the" not in train_unk
    ngram = NgramSpeller.fit(train_unk)
    for split, docs in (("val", ("doc2", "doc3")), ("test", ("doc12",))):
        words = unk_surfaces(tok, [DOCS[d] for d in docs])
        stats = cache.splits[split].stats
        assert stats.n_unk == len(words) > 0
        assert stats.unk_spelling_nats_ngram == pytest.approx(
            sum(ngram.cost(w) for w in words), rel=1e-12)
        assert stats.unk_spelling_nats_ngram > 0
    # The per-token lossless charges keep the unigram speller (unk_spelling_nats).
    extra = cache.splits["val"].charges.astype(np.float64).sum()
    val = cache.splits["val"].stats
    assert extra == pytest.approx(val.layout_nats + val.unk_spelling_nats, rel=1e-6)


def test_train_fitted_counts_ignore_val_text(tmp_path):
    """Spellers, layout model and the Word2Vec token stream depend on train only."""
    from embinit.metrics import NgramSpeller
    from embinit.run.init.vectors import TokenSentences

    edited = {**DOCS, "doc2": "zebras wander über the völlig neue Straße!! again\n\n"}
    a = build(tmp_path)
    b = build(tmp_path, c=Corpus.from_documents(Document(k, v) for k, v in edited.items()))
    assert a.key != b.key and a.splits["val"].stats != b.splits["val"].stats
    tok, _, _ = build_or_load_tokenizer(corpus(), DATA, WORD, tmp_path)
    tok_b, _, _ = build_or_load_tokenizer(
        Corpus.from_documents(Document(k, v) for k, v in edited.items()), DATA, WORD, tmp_path)
    assert tok.get_vocab() == tok_b.get_vocab()
    # Unigram speller counts, train stream (Word2Vec's sentences) and train statistics.
    np.testing.assert_array_equal(a.spelling_counts, b.spelling_counts)
    np.testing.assert_array_equal(a.splits["train"].ids, b.splits["train"].ids)
    assert a.splits["train"].stats == b.splits["train"].stats
    vocab = [tok.id_to_token(i) for i in range(a.vocab_size)]
    assert list(TokenSentences(a.splits["train"].ids, vocab, a.eod_id)) == list(
        TokenSentences(b.splits["train"].ids, vocab, b.eod_id))
    # Layout model and unigram speller: the untouched val document (doc3, last: cat über
    # EOD) is charged exactly the same nats, token by token.
    np.testing.assert_array_equal(a.splits["val"].charges[-3:], b.splits["val"].charges[-3:])
    # The n-gram speller is the one fitted on train's <unk> surfaces in both builds.
    ngram = NgramSpeller.fit(unk_surfaces(tok, [DOCS["doc0"], DOCS["doc1"]]))
    for cache, docs in ((a, DOCS), (b, edited)):
        words = unk_surfaces(tok, [docs["doc2"], docs["doc3"]])
        assert cache.splits["val"].stats.unk_spelling_nats_ngram == pytest.approx(
            float(ngram.costs(words).sum()), rel=1e-12)
