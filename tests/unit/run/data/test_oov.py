"""The OOV-curve stage: one pass, train and val words only, cached per corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from embinit.config import DataConfig, VocabConfig
from embinit.run.data import oov as oov_module
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.oov import OOV_CURVE_SIZES, build_or_load_oov_curve, count_split_words
from embinit.run.data.split import SplitAssigner

DATA = DataConfig(name="text_files", min_doc_chars=1, val_fraction=0.25, test_fraction=0.25)


def _docs(test_word: str) -> list[Document]:
    assign = SplitAssigner.of(DATA)
    docs = []
    for i in range(300):
        split = assign(f"d{i}")
        # 1200 frequent train words (w0..w1199, rank by count), val draws from 3000 of them
        # plus unseen ones; test documents hold `test_word` only.
        if split == "train":
            text = " ".join(f"w{j}" for j in range(0, 1200, 1 + i % 3)) + " Up, up."
        elif split == "val":
            text = " ".join(f"w{j}" for j in range(i, 3000, 7)) + " Up."
        else:
            text = f"{test_word} {test_word}"
        docs.append(Document(f"d{i}", text))
    return docs


def test_counts_are_train_and_val_words_in_one_pass():
    docs = _docs("zzz")
    counts = count_split_words(Corpus.from_documents(docs), DATA, VocabConfig(name="bpe"))
    assign = SplitAssigner.of(DATA)
    expect = {s: Counter() for s in ("train", "val")}
    for d in docs:
        split = assign(d.doc_id)
        if split in expect:
            expect[split].update(d.text.replace(",", " ,").replace(".", " .").split())
    assert counts == expect
    assert counts["train"]["Up"] == counts["train"]["up"] > 0  # case kept unless asked
    lower = count_split_words(Corpus.from_documents(docs), DATA,
                              VocabConfig(name="word", oov="unk", lowercase=True))
    assert "Up" not in lower["train"] and lower["train"]["up"] == 2 * counts["train"]["up"]


def test_curve_ignores_test_documents_and_is_counted_once(tmp_path, monkeypatch):
    bpe = VocabConfig(name="bpe")
    a = build_or_load_oov_curve(Corpus.from_documents(_docs("zzz")), DATA, bpe, tmp_path / "a")
    b = build_or_load_oov_curve(Corpus.from_documents(_docs("qqq")), DATA, bpe, tmp_path / "b")
    assert a == b  # test words never reach the curve
    assert [r["vocab_size"] for r in a] == list(OOV_CURVE_SIZES)
    # 1202 train types (w0..w1199, "Up", "up", plus "," and "."): at k=1000 some val words are
    # out, from k=2000 only the words no train document has (w1200..w2999) remain out.
    rates = {r["vocab_size"]: r["token_rate"] for r in a}
    assign = SplitAssigner.of(DATA)
    val = [w for d in _docs("zzz") if assign(d.doc_id) == "val"
           for w in d.text.replace(".", " .").split()]
    unseen = sum(w.startswith("w") and int(w[1:]) >= 1200 for w in val)
    assert rates[2000] == rates[100000] == pytest.approx(unseen / len(val))
    assert rates[1000] > rates[2000] > 0

    def refuse(*_a, **_k):
        raise AssertionError("counted again")

    monkeypatch.setattr(oov_module, "count_split_words", refuse)
    again = build_or_load_oov_curve(Corpus.from_documents(_docs("zzz")), DATA, bpe, tmp_path / "a")
    assert again == a


def test_word_tally_equals_hf_whitespace_words_across_texts():
    from operator import itemgetter

    from tokenizers import pre_tokenizers

    from embinit.run.data.accounting import WordTally

    texts = ["a\x1cb c,d", "x\xa0y\u3000z  é—f", "tab\tsep\x1f!!", "Up, up. up", "", "  "]
    tally = WordTally()
    tally.update(texts[:3])
    tally.update(texts[3:])
    ws = pre_tokenizers.Whitespace()
    want = Counter(w for t in texts for w in map(itemgetter(0), ws.pre_tokenize_str(t)))
    assert tally.counts() == want
    assert want["a\x1cb"] == 0 and want["\x1c"] == 1  # \x1c is a symbol, not a space
    # lowercase: the counts of the lowered texts (non-ASCII case folding included)
    lowered = WordTally(lowercase=True)
    lowered.update(["ÉCOLE école Straße STRASSE İx", "ΣΟΦΟΣ σοφος"])
    want = Counter(w for t in ["école école straße strasse i̇x", "σοφος σοφος"]
                   for w in map(itemgetter(0), ws.pre_tokenize_str(t)))
    assert lowered.counts() == want and want["école"] == 2
