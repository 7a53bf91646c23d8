"""A run directory's tokenizer.json (`run_tokenizer_json`): plain `tokenizers` round-trips text
that contains the special strings, with embinit's own ids, and embinit loads it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from embinit.config import DataConfig, VocabConfig
from embinit.run.data.corpus import open_corpus
from embinit.run.data.tokenizer import (
    load_tokenizer,
    run_tokenizer_json,
    tokenizer_json,
    train_tokenizer,
)

SPECIALS = ("<|endoftext|>", "<unk>")
# Several scripts, with the special strings alone, glued to words, doubled and at the ends.
MULTI_SCRIPT = (
    "<|endoftext|>Αθήνα είναι η πρωτεύουσα. Москва — столица<unk> России.\n"
    "القاهرة عاصمة مصر <|endoftext|> 東京は日本の首都です<unk><|endoftext|>\n"
    "नई दिल्ली भारत की राजधानी है। 서울은 한국의 수도이다. emoji 😀👍🏽 e\u0301\t<unk>\n"
    "A literal <|endoftext|> in prose, '<unk>' quoted, x<|endoftext|>y and <unk><unk>"
)
ARMS = {
    "bpe": VocabConfig(name="bpe", size=600, min_count=2),
    "word-bytes": VocabConfig(name="word", oov="bytes", size=600, min_count=2),
    "word-bytes-treebank": VocabConfig(name="word", oov="bytes", size=600, min_count=2,
                                       pretokenizer="treebank"),
}


@pytest.fixture(scope="module")
def articles() -> list[str]:
    return [d.text for d in open_corpus(DataConfig(name="wiki_sample", max_docs=3))]


@pytest.fixture(scope="module")
def texts(articles: list[str]) -> list[str]:
    """Real text (an article no tokenizer trained on) with the special strings inserted."""
    held_out = articles[2][:6000]
    cut = held_out.index(". ", 1000) + 1
    return [MULTI_SCRIPT,
            held_out[:cut] + " <|endoftext|> " + held_out[cut:] + "\n<unk>",
            "<unk>" + articles[0][:3000] + "<|endoftext|>"]


@pytest.mark.parametrize("arm", ARMS)
def test_plain_tokenizers_round_trips_the_special_strings(arm: str, articles: list[str],
                                                          texts: list[str],
                                                          tmp_path: Path) -> None:
    cfg = ARMS[arm]
    tok = train_tokenizer(articles[:2], cfg)
    path = tmp_path / "tokenizer.json"
    path.write_text(run_tokenizer_json(tok), encoding="utf-8")
    plain = Tokenizer.from_file(str(path))
    assert not plain.encode_special_tokens  # nothing set by hand: the file alone does it
    for text in texts:
        assert all(s in text for s in SPECIALS)
        ids = plain.encode(text).ids
        assert plain.decode(ids) == text
        assert 0 not in ids and 1 not in ids  # never the specials' ids
        if "treebank" not in arm:  # a Treebank arm's file carries a whitespace stand-in
            assert ids == tok.encode(text).ids  # embinit's ids: what the model was trained on
    # The specials stay in the vocabulary at ids 0 and 1 and decode to their own strings.
    assert [plain.id_to_token(i) for i in (0, 1)] == list(SPECIALS)
    assert plain.decode([0, 1]) == "".join(SPECIALS)


@pytest.mark.parametrize("arm", [*ARMS, "word-unk"])
def test_embinit_loads_the_portable_copy_as_the_cached_one(arm: str, articles: list[str],
                                                           texts: list[str],
                                                           tmp_path: Path) -> None:
    cfg = ARMS.get(arm) or VocabConfig(name="word", oov="unk", size=600, min_count=2)
    tok = train_tokenizer(articles[:2], cfg)
    portable = run_tokenizer_json(tok)
    assert json.loads(portable)["added_tokens"] == []
    assert json.loads(tokenizer_json(tok, cfg))["added_tokens"]  # the cache's copy keeps them
    path = tmp_path / "tokenizer.json"
    path.write_text(portable, encoding="utf-8")
    loaded = load_tokenizer(path)
    assert loaded.to_str() == tokenizer_json(tok, cfg)  # specials registered again, same file
    assert loaded.encode_special_tokens
    for text in texts:
        assert loaded.encode(text).ids == tok.encode(text).ids
