"""Corpus stage: wiki cleaning, the embedded sample, text files, undecodable bytes, errors,
combined corpora, and the pinned identity of the existing ones."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from embinit.config import DataConfig, DataPartConfig, validate
from embinit.errors import ConfigError, DataError
from embinit.run.data import corpus as corpus_mod
from embinit.run.data.corpus import (
    Corpus,
    Document,
    clean_wiki_text,
    group_wikitext_articles,
    open_corpus,
    title_key,
)
from embinit.run.data.tokenizer import split_fields
from embinit.run.data.vital import VITAL_PACKAGE
from embinit.storage import stable_hash
from tests.conftest import compose_config


def text_cfg(path: Path, **kw) -> DataConfig:
    return DataConfig(name="text_files", path=str(path), **{"min_doc_chars": 1, **kw})


# --- wiki markup ------------------------------------------------------------------------------


def test_clean_wiki_text_exact():
    raw = (
        "{{Infobox person\n| name = Ada\n}}\n"
        "'''Ada Lovelace''' was an [[England|English]] [[mathematician]]."
        "<ref>{{cite book|title=X}}</ref>\n"
        "\n  \n"
        "==Early life==\n"
        "  She was born in ''London''.   \t\n"
        "\n\n\n"
        "=== Work ===\n"
        "Her notes on the [[Analytical Engine]] matter.<!-- a comment -->\n"
        "'''''Bold italic''''' and ''''quoted''''.\n"
    )
    assert clean_wiki_text(raw) == (
        "Ada Lovelace was an English mathematician.\n"
        "\n"
        "Early life\n"
        "She was born in London.\n"
        "\n"
        "Work\n"
        "Her notes on the Analytical Engine matter.\n"
        "Bold italic and 'quoted'."
    )


def test_clean_wiki_text_keeps_case_and_punctuation():
    assert clean_wiki_text("Hello, World! (A-B; C?)") == "Hello, World! (A-B; C?)"


# --- wiki_sample --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return open_corpus(DataConfig(), cache), cache


def test_wiki_sample_loads_offline(wiki):
    corpus, _ = wiki
    docs = list(corpus)
    assert corpus.n_docs == len(docs) > 90
    assert sum(len(d.text.encode("utf-8")) for d in docs) > 2_000_000
    assert corpus.n_dropped > 0  # redirects and stubs
    assert corpus.n_replaced_chars == 0
    assert all(len(d.text) >= 500 for d in docs)
    assert all(d.doc_id.isdigit() for d in docs)  # page ids
    assert len({d.doc_id for d in docs}) == len(docs)
    for d in docs:
        assert "[[" not in d.text and "{{" not in d.text and "'''" not in d.text


def test_wiki_sample_fingerprint_deterministic_and_cache_matches_source(wiki):
    cached, cache = wiki
    fp = cached.fingerprint()
    assert len(fp) == 64
    again = open_corpus(DataConfig(), cache)  # reuses docs.jsonl
    assert again.fingerprint() == fp
    assert len(list(cached)) == cached.n_docs  # re-iterable
    direct = open_corpus(DataConfig())  # parses the XML again, no cache
    assert direct.fingerprint() == fp
    assert (direct.n_docs, direct.n_dropped) == (cached.n_docs, cached.n_dropped)


def test_wiki_cache_rebuilds_after_corruption(tmp_path, caplog):
    cfg = DataConfig(max_docs=3)
    first = open_corpus(cfg, tmp_path)
    (docs_path,) = tmp_path.glob("corpus/*/docs.jsonl")
    docs_path.write_text('{"id": "1", "text": "tampered"}\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="embinit.run.data.corpus"):
        second = open_corpus(cfg, tmp_path)
    assert "rebuilding" in caplog.text
    assert [d.doc_id for d in second] == [d.doc_id for d in first]
    assert second.n_docs == 3


def test_max_docs_keeps_first_n_after_filtering(wiki):
    full, _ = wiki
    first5 = [d.doc_id for d in open_corpus(DataConfig(max_docs=5))]
    assert first5 == [d.doc_id for d in full][:5]


# --- text_files -------------------------------------------------------------------------------


def test_directory_mode_one_doc_per_txt_file_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("second file\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("  first file  \n\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text(" \n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a txt file", encoding="utf-8")
    corpus = open_corpus(text_cfg(tmp_path))
    assert list(corpus) == [Document("a.txt", "first file"), Document("sub/b.txt", "second file")]
    assert (corpus.n_docs, corpus.n_dropped, corpus.n_replaced_chars) == (2, 1, 0)


def test_single_file_mode_blank_line_blocks(tmp_path):
    f = tmp_path / "book.txt"
    f.write_text("Line one\nline two\n\n\n  \t\nSecond\n\nThird block\n", encoding="utf-8")
    corpus = open_corpus(text_cfg(f))
    assert list(corpus) == [
        Document("book.txt#0", "Line one\nline two"),
        Document("book.txt#1", "Second"),
        Document("book.txt#2", "Third block"),
    ]
    # Block indices count every block, so dropping a stub keeps the others' ids stable.
    short_dropped = open_corpus(text_cfg(f, min_doc_chars=7))
    assert [d.doc_id for d in short_dropped] == ["book.txt#0", "book.txt#2"]
    assert short_dropped.n_dropped == 1
    assert [d.doc_id for d in open_corpus(text_cfg(f, max_docs=2))] == ["book.txt#0", "book.txt#1"]


def test_utf8_bom_is_not_text(tmp_path):
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfhello\n")
    assert [d.text for d in open_corpus(text_cfg(f))] == ["hello"]
    assert [d.text for d in open_corpus(text_cfg(tmp_path))] == ["hello"]


def test_non_utf8_replace_counts_substitutions_exactly(tmp_path, caplog):
    # 0xe9 (latin-1 e-acute), 0xff and 0xfe are invalid: 3 substitutions. The last three bytes
    # are a genuine U+FFFD in the file and must not be counted.
    raw = b"caf\xe9 ok \xff\xfe end \xef\xbf\xbd"
    (tmp_path / "bad.txt").write_bytes(raw)
    corpus = open_corpus(text_cfg(tmp_path))
    with caplog.at_level(logging.WARNING, logger="embinit.run.data.corpus"):
        (doc,) = list(corpus)
    assert doc.text == "caf\ufffd ok \ufffd\ufffd end \ufffd"
    assert corpus.n_replaced_chars == 3
    assert "3 undecodable" in caplog.text


def test_non_utf8_replace_in_single_file_mode(tmp_path):
    f = tmp_path / "one.txt"
    f.write_bytes(b"good\n\nb\xffd\nx\xc3\n")  # 0xc3 is a truncated 2-byte sequence
    corpus = open_corpus(text_cfg(f))
    assert [d.text for d in corpus] == ["good", "b\ufffdd\nx\ufffd"]
    assert corpus.n_replaced_chars == 2


def test_non_utf8_error_names_file_offset_and_fix(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"bad\.txt.*byte offset 3.*data\.non_utf8=replace"):
        list(open_corpus(text_cfg(tmp_path, non_utf8="error")))
    f = tmp_path / "blocks.txt"
    f.write_bytes(b"hello\n\nab\xffc\n")
    with pytest.raises(DataError, match="byte offset 9"):
        list(open_corpus(text_cfg(f, non_utf8="error")))


def test_missing_path_and_empty_dir_raise(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_corpus(text_cfg(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .txt files"):
        open_corpus(text_cfg(tmp_path / "empty"))
    with pytest.raises(DataError, match="data.path"):
        open_corpus(DataConfig(name="text_files", path=None))


def test_all_docs_too_short_names_min_doc_chars(tmp_path):
    (tmp_path / "a.txt").write_text("tiny", encoding="utf-8")
    corpus = open_corpus(text_cfg(tmp_path, min_doc_chars=100))
    with pytest.raises(DataError, match="min_doc_chars=100"):
        corpus.fingerprint()


def test_fingerprint_depends_on_ids_and_texts():
    a = Corpus.from_documents([Document("1", "ab"), Document("2", "c")])
    b = Corpus.from_documents([Document("1", "a"), Document("2", "bc")])
    c = Corpus.from_documents([Document("1", "ab"), Document("3", "c")])
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    assert a.fingerprint() == Corpus.from_documents(list(a)).fingerprint()


def test_abandoned_pass_records_nothing():
    corpus = Corpus.from_documents([Document(str(i), "text") for i in range(5)])
    next(iter(corpus))
    assert corpus._stats is None
    assert corpus.n_docs == 5


# --- hf -----------------------------------------------------------------------------------------


def test_hf_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match=r"pip install -e \.\[hf\]"):
        open_corpus(DataConfig(name="hf"))


def test_group_wikitext_articles():
    lines = [
        "",
        " = Alpha = \n",
        "",
        " Alpha is first . \n",
        " = = History = = \n",
        " It began . \n",
        "",
        " = Beta = \n",
        " Beta follows . \n",
    ]
    assert list(group_wikitext_articles(lines)) == [
        ("Alpha", "Alpha is first .\nHistory\nIt began ."),
        ("Beta", "Beta follows ."),
    ]


# --- existing corpora keep their identity -----------------------------------------------------

# Pinned before data=vital_articles and data=combined were added (gensim 4.4.0's test data):
# every cache downstream of these corpora is keyed by these values, so they must not move.
WIKI_SAMPLE_FINGERPRINT = "233ebefa155717732aee581d312b0bcc087590f714646142450ca90d2c5c74c5"
WIKI_SAMPLE_DOCS_KEY = "0533e9ec3ef2f2dd"  # <cache>/corpus/<key>/docs.jsonl of DataConfig()
TEXT_FILES_FINGERPRINT = "f92c5472a8c05f5e237100161947d243808f157e71b260334e95377b421799ee"
SPLIT_FIELDS_HASH = "7fb5e153e5e51e09"  # DataConfig()'s part of the tokenizer and token keys


def test_existing_corpora_fingerprints_and_keys_unchanged(wiki, tmp_path):
    corpus, cache = wiki
    assert corpus.fingerprint() == WIKI_SAMPLE_FINGERPRINT
    assert (cache / "corpus" / WIKI_SAMPLE_DOCS_KEY / "meta.json").is_file()
    (tmp_path / "tf.txt").write_text("alpha beta gamma\n\ndelta epsilon\n", encoding="utf-8")
    assert open_corpus(text_cfg(tmp_path / "tf.txt")).fingerprint() == TEXT_FILES_FINGERPRINT
    assert stable_hash(split_fields(DataConfig())) == SPLIT_FIELDS_HASH


# --- combined -----------------------------------------------------------------------------------

needs_vital = pytest.mark.skipif(importlib.util.find_spec(VITAL_PACKAGE) is None,
                                 reason="needs pip install 'embinit[vital]'")

# (doc_id, title, text) per fake part: "wiki" has full articles, "vital" short leads.
FAKE_PARTS = {
    "wiki_sample": [("1", "Apple", "Apple, the full article. " * 4), ("2", "Banana", "B" * 120),
                    ("3", "Stub", "short")],
    "vital_articles": [("Apple", "Apple", "Apple lead."), ("banana", "banana", "Banana lead."),
                       ("Stub", "Stub", "Stub lead, kept: the wiki copy was dropped."),
                       ("Cherry", "Cherry", "Cherry lead.")],
}


def combined(*parts: tuple[str, int], **kw) -> DataConfig:
    return DataConfig(name="combined", parts=[DataPartConfig(n, m) for n, m in parts],
                      **{"min_doc_chars": 1, **kw})


@pytest.fixture
def fake_parts(monkeypatch):
    def part_source(name, cfg):
        rows = FAKE_PARTS[name]
        return (lambda: ((i, t, x, 0) for i, t, x in rows)), {"fake": name}

    monkeypatch.setattr(corpus_mod, "_part_source", part_source)


def test_combined_keeps_a_title_once_from_the_first_part(fake_parts):
    corpus = open_corpus(combined(("wiki_sample", 50), ("vital_articles", 1)))
    docs = {d.doc_id: d.text for d in corpus}
    assert list(docs) == ["1", "2", "Stub", "Cherry"]
    assert docs["1"] == FAKE_PARTS["wiki_sample"][0][2]  # the article, not its lead
    assert corpus.n_dropped == 3  # the wiki stub, and the leads of Apple and banana (= Banana)
    # Another order, another priority: the leads win.
    reverse = open_corpus(combined(("vital_articles", 1), ("wiki_sample", 50)))
    assert [d.doc_id for d in reverse] == ["Apple", "banana", "Stub", "Cherry"]
    assert len({corpus.fingerprint(), reverse.fingerprint()}) == 2


def test_combined_floor_applies_to_every_part(fake_parts):
    corpus = open_corpus(combined(("wiki_sample", 1), ("vital_articles", 1), min_doc_chars=13))
    assert [d.doc_id for d in corpus] == ["1", "2", "Stub"]  # the short leads are dropped


def test_title_key_is_mediawikis_comparison():
    assert title_key("banana_split") == title_key("Banana split") == "Banana split"
    assert title_key("AC") != title_key("Ac")


def test_combined_refuses_one_id_from_two_parts(monkeypatch):
    rows = {"wiki_sample": [("7", "Seven", "seven text")],
            "vital_articles": [("7", "7 (number)", "another seven")]}
    monkeypatch.setattr(corpus_mod, "_part_source",
                        lambda name, cfg: ((lambda: ((i, t, x, 0) for i, t, x in rows[name])),
                                           None))
    with pytest.raises(DataError, match="'7' comes from both wiki_sample and vital_articles"):
        open_corpus(combined(("wiki_sample", 1), ("vital_articles", 1))).fingerprint()


def test_combined_cache_matches_source_and_is_keyed_by_the_parts(fake_parts, tmp_path):
    cfg = combined(("wiki_sample", 50), ("vital_articles", 1))
    direct = open_corpus(cfg)
    cached = open_corpus(cfg, tmp_path)
    assert list(cached) == list(direct)
    assert open_corpus(cfg, tmp_path).stats == direct.stats  # reused, stats from meta.json
    open_corpus(combined(("wiki_sample", 1), ("vital_articles", 1)), tmp_path).fingerprint()
    assert len(list(tmp_path.glob("corpus/*/meta.json"))) == 2


def test_combined_config_is_validated():
    with pytest.raises(ConfigError, match="data.name=combined needs data.parts"):
        validate(compose_config(["data.name=combined"]))
    with pytest.raises(ConfigError, match="each part must be one of"):
        validate(compose_config(["data=wiki_plus_vital", "data.parts=[{name: combined}]"]))
    with pytest.raises(ConfigError, match="repeats a source"):
        validate(compose_config(["data=wiki_plus_vital",
                                 "data.parts=[{name: wiki_sample}, {name: wiki_sample}]"]))
    with pytest.raises(ConfigError, match="applies to data=combined only"):
        validate(compose_config(["data.parts=[{name: wiki_sample}]"]))


@needs_vital
def test_wiki_plus_vital_is_the_excerpt_plus_the_leads_of_other_titles(wiki):
    excerpt, _ = wiki
    cfg = compose_config(["data=wiki_plus_vital"]).data
    corpus = open_corpus(cfg)
    docs = {d.doc_id: d.text for d in corpus}
    assert len(docs) == corpus.n_docs == 105 + 9_978 - 46  # 46 titles are in both
    assert corpus.n_dropped == 101 + 55 + 46  # the parts' own drops, and the duplicates
    for d in excerpt:  # every article, under its page id, in the same split as before
        assert docs[d.doc_id] == d.text
    assert "Anarchism" not in docs and "Aeneid" in docs  # in both / a lead only
    assert sum(len(t.encode("utf-8")) for t in docs.values()) == 7_914_177
