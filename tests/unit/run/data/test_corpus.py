"""Corpus stage: wiki cleaning, the embedded sample, text files, undecodable bytes, errors."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from embinit.config import DataConfig
from embinit.errors import DataError
from embinit.run.data.corpus import (
    Corpus,
    Document,
    clean_wiki_text,
    group_wikitext_articles,
    open_corpus,
)


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
