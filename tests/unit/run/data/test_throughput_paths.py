"""The vectorised bookkeeping of byte-level vocabularies equals the per-token reference."""

from __future__ import annotations

from collections import Counter
from operator import itemgetter

import numpy as np
import pytest
from tokenizers import pre_tokenizers

from embinit.config import DataConfig, VocabConfig
from embinit.run.data.accounting import byte_level_lengths, token_byte_lengths, word_counts
from embinit.run.data.cache import (
    build_or_load_token_cache,
    byte_level_spelling_counts,
    byte_level_token_bytes,
)
from embinit.run.data.corpus import Corpus, Document, open_corpus
from embinit.run.data.oov import build_or_load_oov_curve
from embinit.run.data.tokenizer import build_or_load_tokenizer, train_tokenizer

MIXED = (
    "Tokyo 東京都 is 漢字; Москва — Привет! emoji 😀👍🏽 👨‍👩‍👧 e\u0301 n\u0303\r\n"
    "\ttab\u00a0nbsp\u3000ideographic\u200bzero-width \u2028 x  <|endoftext|> end  "
)
VOCABS = {
    "bpe": VocabConfig(name="bpe", size=600),
    "word": VocabConfig(name="word", size=1200),
    "word-treebank": VocabConfig(name="word", size=1200, pretokenizer="treebank"),
}


@pytest.fixture(scope="module")
def texts() -> list[str]:
    docs = [d.text for d in open_corpus(DataConfig(name="wiki_sample", max_docs=4))]
    return [*docs, MIXED, MIXED[::-1], "a", "  \n", "é"]


@pytest.mark.parametrize("name", list(VOCABS))
def test_byte_lengths_from_ids_equal_the_offset_rule(texts, name):
    tok = train_tokenizer(texts[:3] + [MIXED], VOCABS[name])
    sizes = byte_level_token_bytes(tok)
    assert sizes[0] == sizes[1] == 0  # the specials are never text
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        ids = np.array(enc.ids, dtype=np.int64)
        fast = byte_level_lengths(text, ids, sizes)
        np.testing.assert_array_equal(fast, token_byte_lengths(text, enc.offsets))
        assert fast.sum() == len(text.encode("utf-8"))


def test_byte_lengths_refuse_a_non_byte_level_tokenization():
    with pytest.raises(ValueError, match="not a byte-level tokenization"):
        byte_level_lengths("é", np.array([0]), np.array([1]))


def test_spelling_counts_are_the_tokens_own_bytes():
    tok = train_tokenizer(["ab ab é"] * 3, VocabConfig(name="word", size=300, min_count=1))
    ids = tok.encode("ab é", add_special_tokens=False).ids
    counts = byte_level_spelling_counts(tok, np.bincount(ids, minlength=tok.get_vocab_size()))
    want = np.zeros(257, dtype=np.int64)
    for b in "ab é".encode():
        want[b] += 1
    want[256] = len(ids)
    np.testing.assert_array_equal(counts, want)


def test_word_counts_equal_hf_whitespace(texts):
    ws = pre_tokenizers.Whitespace()
    for text in texts:
        assert word_counts([text]) == Counter(map(itemgetter(0), ws.pre_tokenize_str(text)))


@pytest.mark.parametrize("name", ["bpe", "word"])
def test_cache_arrays_and_stats_match_the_reference(tmp_path, name):
    docs = [Document(f"d{i}", t) for i, t in enumerate(
        [MIXED, "plain ascii text here", MIXED[::-1], "more words, more words."] * 6)]
    corpus = Corpus.from_documents(docs)
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    cfg = VOCABS[name]
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    cache = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path)
    ids = np.asarray(cache.splits["train"].ids)
    nbytes = np.asarray(cache.splits["train"].nbytes)
    starts = np.flatnonzero(ids == 0)
    texts = {d.doc_id: d.text for d in docs}
    train_ids = [i for i in texts if i not in cache.doc_ids["val"] + cache.doc_ids["test"]]
    seen = set()
    for k, doc_id in enumerate(train_ids):
        text = texts[doc_id]
        enc = tok.encode(text, add_special_tokens=False)
        a, b = starts[k] + 1, starts[k + 1]
        np.testing.assert_array_equal(ids[a:b], enc.ids)
        np.testing.assert_array_equal(nbytes[a:b], token_byte_lengths(text, enc.offsets))
        seen.update(enc.ids)
    stats = cache.splits["train"].stats
    assert stats.n_types == len(seen) and stats.n_docs == len(train_ids)
    assert stats.n_text_tokens == len(ids) - len(train_ids) - 1


@pytest.mark.parametrize("name", ["bpe", "word", "word_unk"])
def test_the_cache_does_not_depend_on_the_batch_size(tmp_path, name):
    # Batches of 3 put many batches in every split, so the encoder runs ahead of the
    # bookkeeping across batch boundaries; the entry must equal the one-batch build.
    docs = [Document(f"d{i}", t) for i, t in enumerate(
        [MIXED, "plain ascii text here", MIXED[::-1], "more words, more words."] * 10)]
    corpus = Corpus.from_documents(docs)
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    cfg = VOCABS.get(name) or VocabConfig(name="word", oov="unk", size=60)
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    small = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path / "b3", batch_size=3)
    whole = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path / "b256")
    assert small.doc_ids == whole.doc_ids and len(small.doc_ids["val"]) > 3
    for split in ("train", "val", "test"):
        a, b = small.splits[split], whole.splits[split]
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.nbytes, b.nbytes)
        assert a.stats == b.stats
        if a.charges is not None or b.charges is not None:
            np.testing.assert_array_equal(a.charges, b.charges)
    assert small.word_oov_curve == whole.word_oov_curve


class CountingCorpus(Corpus):
    """A corpus that counts its passes."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


@pytest.mark.parametrize(("name", "passes"), [("bpe", 1), ("word", 1), ("word_unk", 3)])
def test_exact_vocabularies_read_the_corpus_once(tmp_path, name, passes):
    docs = [(f"d{i}", f"document {i} says hello world, again.", 0) for i in range(40)]
    corpus = CountingCorpus("count", lambda: iter(docs))
    corpus.fingerprint()
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    cfg = VOCABS.get(name) or VocabConfig(name="word", oov="unk", size=50)
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    CountingCorpus.passes = 0
    # The corpus's OOV curve is its own stage: one pass, once per corpus.
    build_or_load_oov_curve(corpus, data, cfg, tmp_path)
    assert CountingCorpus.passes == 1
    CountingCorpus.passes = 0
    cache = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path)
    # The closed vocabulary prices val/test with models fitted on train: a pass per split.
    assert CountingCorpus.passes == passes
    assert sum(s.stats.n_docs for s in cache.splits.values()) == 40
    assert cache.doc_ids["val"] and cache.doc_ids["test"]


def test_one_pass_still_refuses_an_empty_split(tmp_path):
    from embinit.errors import DataError

    corpus = Corpus.from_documents([Document("only", "one document here")])
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.1, test_fraction=0.1)
    tok = train_tokenizer(["one document here"], VOCABS["bpe"])
    path = tmp_path / "tok.json"
    path.write_text(tok.to_str(), encoding="utf-8")
    with pytest.raises(DataError, match="split is empty"):
        build_or_load_token_cache(corpus, data, VOCABS["bpe"], tok, path, tmp_path)


def test_oov_curve_is_counted_once_per_corpus_and_shared_by_arms(tmp_path, monkeypatch):
    from embinit.run.data import oov as oov_module

    docs = [Document(f"d{i}", f"doc {i} has words, more words and word{i % 7}.")
            for i in range(40)]
    corpus = Corpus.from_documents(docs)
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    built = {}
    for name in ("word", "bpe"):
        tok, path, _ = build_or_load_tokenizer(corpus, data, VOCABS[name], tmp_path)
        built[name] = build_or_load_token_cache(corpus, data, VOCABS[name], tok, path, tmp_path)

        def refuse(*_a, **_k):
            raise AssertionError("the shared OOV curve was counted again")

        monkeypatch.setattr(oov_module, "count_split_words", refuse)  # the second arm reuses
    assert built["bpe"].word_oov_curve == built["word"].word_oov_curve
    assert built["word"].word_oov_curve[0]["vocab_size"] == 1000
    assert len(list((tmp_path / "oov_curves").glob("*.json"))) == 1


class RecordingTokenizer:
    """A Tokenizer whose encode calls are recorded as (method, number of texts)."""

    def __init__(self, tok) -> None:
        self._tok, self.calls = tok, []

    def __getattr__(self, name):
        attr = getattr(self._tok, name)
        if not name.startswith("encode"):
            return attr

        def call(texts, **kwargs):
            self.calls.append((name, len(texts)))
            return attr(texts, **kwargs)

        return call


@pytest.mark.parametrize(("name", "fast_splits"), [
    ("bpe", ("train", "val", "test")), ("word", ("train",)), ("word_unk", ())])
def test_ids_only_encoding_where_ids_suffice(tmp_path, name, fast_splits):
    # encode_batch_fast (no offsets, no word ids) for every BPE split and the exact word
    # arm's train; word ids for that arm's val/test spelled-word rates; offsets everywhere
    # for the closed vocabulary.
    docs = [Document(f"d{i}", f"doc {i} has words, more words and word{i % 7}.")
            for i in range(60)]
    corpus = Corpus.from_documents(docs)
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    cfg = VOCABS.get(name) or VocabConfig(name="word", oov="unk", size=50)
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    recording = RecordingTokenizer(tok)
    cache = build_or_load_token_cache(corpus, data, cfg, recording, path, tmp_path)
    n_docs = {split: s.stats.n_docs for split, s in cache.splits.items()}
    texts = Counter()
    for method, n in recording.calls:
        texts[method] += n
    assert texts["encode_batch_fast"] == sum(n_docs[s] for s in fast_splits)
    assert texts["encode_batch"] == sum(n_docs.values()) - texts["encode_batch_fast"]
    assert min(n_docs.values()) > 0


@pytest.mark.parametrize(("lowercase", "pretokenizer"), [
    (False, "whitespace"), (True, "whitespace"), (False, "treebank")])
def test_closed_vocabulary_types_and_spelling_counts_match_the_surfaces(
        tmp_path, lowercase, pretokenizer, monkeypatch):
    # Without a normalizer only the <unk> surfaces are cut from the text (types and train's
    # spelling counts come from counts per id), for either pre-tokenizer; lowercase keeps
    # every surface. All must equal the count over the surfaces themselves.
    docs = [Document(f"d{i}", t) for i, t in enumerate(
        [MIXED, "Plain ASCII text here", MIXED[::-1], "More words, more Words."] * 6)]
    corpus = Corpus.from_documents(docs)
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    cfg = VocabConfig(name="word", oov="unk", size=40, min_count=2, lowercase=lowercase,
                      pretokenizer=pretokenizer)
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    from embinit.run.data import cache as cache_module

    shortcut = set()
    encode_split = cache_module._encode_split

    def spy(*args, **kwargs):
        shortcut.add(kwargs["surfaces_are_tokens"])
        return encode_split(*args, **kwargs)

    monkeypatch.setattr(cache_module, "_encode_split", spy)
    cache = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path)
    assert shortcut == {not lowercase}  # the path under test is the one taken
    held_out = set(cache.doc_ids["val"] + cache.doc_ids["test"])
    surfaces, unk = [], Counter()
    for doc in docs:
        if doc.doc_id in held_out:
            continue
        enc = tok.encode(doc.text, add_special_tokens=False)
        for i, (a, b) in zip(enc.ids, enc.offsets, strict=True):
            surfaces.append(doc.text[a:b])
            unk[doc.text[a:b]] += i == cache.unk_id
    stats = cache.splits["train"].stats
    assert stats.n_types == len(set(surfaces)) and stats.n_unk == sum(unk.values()) > 0
    assert stats.n_unk_types == sum(1 for n in unk.values() if n)
    want = np.zeros(257, dtype=np.int64)
    want[:256] = np.bincount(np.frombuffer("".join(surfaces).encode(), np.uint8), minlength=256)
    want[256] = len(surfaces)
    np.testing.assert_array_equal(cache.spelling_counts, want)
