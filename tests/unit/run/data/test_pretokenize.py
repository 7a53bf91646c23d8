"""vocab.pretokenizer=treebank: NLTK Treebank words for both word arms, exact and reloadable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from embinit.config import DataConfig, VocabConfig
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.pretokenize import marker, treebank_pieces, treebank_spans
from embinit.run.data.tokenizer import (
    build_or_load_tokenizer,
    load_tokenizer,
    tokenizer_key,
    train_tokenizer,
    vector_lookup_keys,
)

pytest.importorskip("nltk")

EXAMPLE = 'I don\'t think the U.S.A.\'s "price" was 3.50 dollars.\n\n  It was  more. Ok '
TRAIN = [EXAMPLE, "You don't say. The U.S.A.'s flag costs 3.50 today.", EXAMPLE]
BYTES_TB = VocabConfig(name="word", oov="bytes", size=400, min_count=1, pretokenizer="treebank")
UNK_TB = VocabConfig(name="word", oov="unk", size=100, min_count=1, pretokenizer="treebank")


def words(text: str) -> list[str]:
    return [text[a:b] for a, b in treebank_spans(text)]


def test_treebank_words_follow_glove_conventions():
    assert words("don't") == ["do", "n't"]
    assert words("The U.S.A.'s debt") == ["The", "U.S.A.", "'s", "debt"]
    assert words("It costs 3.50 today.") == ["It", "costs", "3.50", "today", "."]
    # Each sentence's final period is split, not only the document's last one (Punkt first).
    assert words("He left. She came.") == ["He", "left", ".", "She", "came", "."]
    # Spans point at the original text: quotes stay '"', never `` or ''.
    assert words('say "hi"') == ["say", '"', "hi", '"']


def test_pieces_partition_the_text_with_one_leading_space():
    pieces = [EXAMPLE[a:b] for a, b in treebank_pieces(EXAMPLE)]
    assert "".join(pieces) == EXAMPLE
    assert pieces[:5] == ["I", " do", "n't", " think", " the"]
    assert " U.S.A." in pieces and "'s" in pieces and " 3.50" in pieces
    # A newline run is its own piece; of "  It" the last space joins the word.
    assert "\n\n " in pieces and " It" in pieces and pieces[-1] == " "


@pytest.mark.parametrize("cfg", [BYTES_TB, UNK_TB], ids=["oov=bytes", "oov=unk"])
def test_both_word_arms_use_treebank_words(cfg):
    tok = train_tokenizer(TRAIN, cfg)
    tokens = tok.encode(EXAMPLE, add_special_tokens=False).tokens
    if cfg.oov == "bytes":
        assert tokens[:4] == ["I", "Ġdo", "n't", "Ġthink"]
        assert "ĠU.S.A." in tokens and "'s" in tokens and "Ġ3.50" in tokens
        assert tok.decode(tok.encode(EXAMPLE, add_special_tokens=False).ids) == EXAMPLE
    else:
        assert tokens[:4] == ["I", "do", "n't", "think"]
        assert "U.S.A." in tokens and "'s" in tokens and "3.50" in tokens
    # External vectors (GloVe) are looked up by the Treebank word itself.
    keys = vector_lookup_keys(tok, cfg, external=True)
    assert {"n't", "'s", "U.S.A.", "3.50", "do"} <= set(keys)


def test_byte_arm_round_trips_unseen_text():
    tok = train_tokenizer(TRAIN, BYTES_TB)
    for text in ["Tokyo 東京都 can't \t\r\n «quoted» ''odd'' 😀 x", "  ", "a", '"""']:
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


@pytest.mark.parametrize("cfg", [BYTES_TB, UNK_TB], ids=["oov=bytes", "oov=unk"])
def test_saved_tokenizer_reloads_treebank_and_plain_hf_still_loads(tmp_path, cfg):
    corpus = Corpus.from_documents([Document(f"d{i}", t) for i, t in enumerate(TRAIN * 10)])
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    tok, path, reused = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    assert not reused
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["pre_tokenizer"]["pretokenizers"][0]["pattern"]["String"] == marker("treebank")
    again, _, reused = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    assert reused
    want = tok.encode(EXAMPLE, add_special_tokens=False).ids
    assert again.encode(EXAMPLE, add_special_tokens=False).ids == want
    assert load_tokenizer(path).encode(EXAMPLE, add_special_tokens=False).ids == want
    # The live tokenizer's own to_str()/save() write the same loadable file (run directories).
    assert again.to_str() == path.read_text(encoding="utf-8")
    again.save(str(tmp_path / "copy.json"))
    copy = load_tokenizer(tmp_path / "copy.json")
    assert copy.encode(EXAMPLE, add_special_tokens=False).ids == want
    # Any HF loader gets a working tokenizer (the whitespace stand-in), lossless for oov=bytes.
    plain = Tokenizer.from_file(str(path))
    if cfg.oov == "bytes":
        assert plain.decode(plain.encode(EXAMPLE, add_special_tokens=False).ids) == EXAMPLE


def test_key_names_the_pretokenizer_and_nltk_version(monkeypatch):
    import nltk

    data = DataConfig()
    ws = VocabConfig(name="word")
    tb = VocabConfig(name="word", pretokenizer="treebank")
    assert tokenizer_key("fp", data, ws) != tokenizer_key("fp", data, tb)
    key = tokenizer_key("fp", data, tb)
    monkeypatch.setattr(nltk, "__version__", "0.0.0")
    assert tokenizer_key("fp", data, tb) != key
    assert tokenizer_key("fp", data, ws) == tokenizer_key("fp", data, ws)
    # BPE ignores the setting (it is refused by validate anyway).
    assert (tokenizer_key("fp", data, VocabConfig(name="bpe"))
            == tokenizer_key("fp", data, VocabConfig(name="bpe", pretokenizer="treebank")))


@pytest.mark.parametrize("cfg", [BYTES_TB, UNK_TB], ids=["oov=bytes", "oov=unk"])
def test_token_cache_accounts_every_byte(tmp_path, cfg):
    texts = [f"Doc {i}: you don't pay 3.50 to the U.S.A.'s «agent». Done {i}." for i in range(30)]
    corpus = Corpus.from_documents([Document(f"d{i}", t) for i, t in enumerate(texts)])
    data = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.2, test_fraction=0.2)
    tok, path, _ = build_or_load_tokenizer(corpus, data, cfg, tmp_path)
    cache = build_or_load_token_cache(corpus, data, cfg, tok, path, tmp_path)
    total = sum(int(np.asarray(s.nbytes, dtype=np.int64).sum()) for s in cache.splits.values())
    assert total == sum(len(t.encode("utf-8")) for t in texts)
    assert sum(s.stats.n_bytes for s in cache.splits.values()) == total
    if cfg.oov == "bytes":
        ids = np.asarray(cache.splits["train"].ids)
        docs = np.split(ids, np.flatnonzero(ids == 0))
        decoded = [tok.decode(d[1:].tolist()) for d in docs if len(d) > 1]
        assert set(decoded) <= set(texts) and len(decoded) == cache.splits["train"].stats.n_docs
