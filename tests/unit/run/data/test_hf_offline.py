"""data=hf with no network: the `datasets` library's local builders, through the hub code path."""

from __future__ import annotations

from pathlib import Path

import pytest

from embinit.config import DataConfig, VocabConfig
from embinit.errors import DataError
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import open_corpus
from embinit.run.data.tokenizer import build_or_load_tokenizer

datasets = pytest.importorskip("datasets")

ARTICLES = {f"Article {i}": f"Body of article {i}, line one.\nLine two of {i} is here."
            for i in range(20)}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    # Nothing may reach the hub, and the Arrow cache goes to the test's own directory.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")


def hf(**kw) -> DataConfig:
    return DataConfig(name="hf", hf_config=None, min_doc_chars=1, val_fraction=0.25,
                      test_fraction=0.25, **kw)


def test_parquet_builder_on_local_files_keeps_ids_and_texts(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"doc-{i}", "text": f"  {text}\n"} for i, text in enumerate(ARTICLES.values())]
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = hf(hf_dataset="parquet", hf_data_files=str(path))
    corpus = open_corpus(data)
    docs = list(corpus)
    assert [d.doc_id for d in docs] == [r["id"] for r in rows]
    assert [d.text for d in docs] == list(ARTICLES.values())  # stripped, as for hub datasets
    # The rest of the data stages run on it as on any corpus.
    vocab = VocabConfig(name="word", size=300, min_count=1)
    tok, tok_path, _ = build_or_load_tokenizer(corpus, data, vocab, tmp_path / "cache")
    cache = build_or_load_token_cache(corpus, data, vocab, tok, tok_path, tmp_path / "cache")
    assert sum(s.stats.n_docs for s in cache.splits.values()) == len(ARTICLES)
    assert sum(s.stats.n_bytes for s in cache.splits.values()) == sum(
        len(t.encode()) for t in ARTICLES.values())


def test_text_builder_one_document_per_line(tmp_path: Path):
    path = tmp_path / "lines.txt"
    lines = [f"line {i} of the text builder" for i in range(6)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs = list(open_corpus(hf(hf_dataset="text", hf_data_files=str(path))))
    assert [d.text for d in docs] == lines
    assert [d.doc_id for d in docs] == [f"train#{i}" for i in range(6)]


def test_local_wikitext_directory_is_grouped_into_articles(tmp_path: Path):
    # WikiText's raw layout: " = Title = " lines open articles, " = = Sub = = " are headings.
    root = tmp_path / "wikitext_local"
    root.mkdir()
    raw = [""]
    for title, body in ARTICLES.items():
        raw += [f" = {title} = ", "", f" {body.splitlines()[0]} ", " = = Section = = ",
                f" {body.splitlines()[1]} ", ""]
    (root / "train.txt").write_text("\n".join(raw) + "\n", encoding="utf-8")
    docs = list(open_corpus(hf(hf_dataset=str(root))))
    assert len(docs) == len(ARTICLES)
    first = ARTICLES["Article 0"].splitlines()
    assert docs[0].text == f"{first[0]}\nSection\n{first[1]}"
    assert [d.doc_id for d in docs] == [f"train#{i}" for i in range(len(ARTICLES))]


def test_missing_local_files_name_the_settings(tmp_path: Path):
    cfg = hf(hf_dataset="parquet", hf_data_files=str(tmp_path / "nope.parquet"))
    with pytest.raises(DataError, match="data.hf_data_files=.*nope.parquet"):
        list(open_corpus(cfg))
