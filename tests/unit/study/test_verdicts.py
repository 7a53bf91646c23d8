"""study.report.verdicts: the generated sentences, on fabricated records."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from embinit.study import compare as C
from embinit.study import load as L
from embinit.study import tables as T
from embinit.study.report.verdicts import (
    _facts_from_summary,
    headline_intro,
    headline_sentence,
    headline_verdicts,
    verdicts,
)
from tests.unit.study.fabricate import write_new_study


def test_arm_without_completed_runs_gets_nan_row() -> None:
    runs = pd.DataFrame(
        {
            "arm": ["a", "a", "b"],
            "seed": [0, 1, 0],
            "status": ["completed", "completed", "diverged"],
            "run_dir": ["a/seed0", "a/seed1", "b/seed0"],
            "val_bpb": [1.0, 1.1, None],
        }
    )
    s = T.arm_summary(runs, "a", metrics=("val_bpb",)).set_index("arm")
    assert s.loc["b", "n_seeds"] == 0 and s.loc["b", "n_diverged"] == 1
    assert math.isnan(s.loc["b", "val_bpb_mean"]) and s.loc["b", "val_bpb_diff_n"] == 0
    text = " ".join(verdicts(s.reset_index(), "a"))
    assert "b: no completed runs" in text and "b: 1 of 1 runs diverged" in text



def test_verdicts(study: Path) -> None:
    s = T.arm_summary(L.load_runs(study), "bpe+scratch")
    v = verdicts(s, "bpe+scratch")
    # BPE against closed-vocabulary word arms: no lowest arm, no raw comparison.
    assert not any(x.startswith("Lowest") for x in v)
    assert v[0].startswith("No arm is named lowest here: the arms have different tokenizers")
    assert not any(" bpb [" in x and "lossless" not in x for x in v)
    # Lossless: word+word2vec's is its adjusted figure + 0.1, so it is 0.30 above the reference.
    w2v = next(x for x in v if x.startswith("word+word2vec vs bpe+scratch: +0.300 lossless bpb"))
    assert "[95% CI +0.275, +0.325], p<0.001 (paired t-test, n=3): the CI excludes zero." in w2v
    ws = next(x for x in v if x.startswith("word+scratch vs bpe+scratch: +0.175 lossless bpb"))
    assert "(paired t-test, n=2): the CI includes zero" in ws
    assert "common seeds only: 0,1" in ws
    assert (
        "word+scratch vs bpe+scratch: OOV-adjusted bpb and bpb not compared (different "
        "tokenizers; these figures leave part of the text uncharged)." in v
    )
    assert any("not adjusted for the number of comparisons" in x for x in v)
    assert "word+scratch: 1 of 3 runs diverged and are excluded from every mean." in v
    assert any(x.startswith("word+word2vec: 1 of 4 runs are incomplete") for x in v)
    assert not any("tied" in x for x in v)


def test_verdicts_name_the_lowest_among_one_tokenizer(study: Path) -> None:
    runs = L.load_runs(study)
    runs = runs[runs["arm"] != "bpe+scratch"]
    v = verdicts(T.arm_summary(runs, "word+word2vec"), "word+word2vec")
    lowest_val = next(x for x in v if x.startswith("Lowest mean val bpb"))
    assert lowest_val.startswith("Lowest mean val bpb: word+scratch (1.160 ± ")
    w = next(x for x in v if x.startswith("word+scratch vs word+word2vec: -0.130 lossless bpb"))
    assert "(paired t-test, n=2): the CI excludes zero" in w
    assert any(x.startswith("word+scratch vs word+word2vec: -0.150 bpb on every one") for x in v)


def test_verdicts_compare_raw_bpb_across_exact_tokenizers() -> None:
    runs = pd.DataFrame(
        {
            "arm": ["r", "r", "a", "a"],
            "seed": [0, 1, 0, 1],
            "status": ["completed"] * 4,
            "run_dir": list("1234"),
            "vocab": ["bpe", "bpe", "word", "word"],
            "val_bpb": [1.0, 1.1, 0.9, 1.05],
        }
    )
    s = T.arm_summary(runs, "r", metrics=("val_bpb",))
    exact = pd.DataFrame({"arm": ["r", "a"], "tokenizer": ["bpe", "word/bytes"],
                          "exact": [True, True], "lowercase": False, "by_speller": False})
    v = verdicts(s, "r", compare=("val_bpb",), facts=exact)
    assert any(x.startswith("Lowest mean val bpb: a (0.975") for x in v)
    assert any(x.startswith("a vs r: -0.075 bpb") for x in v)
    charged = exact.assign(exact=[True, False], tokenizer=["bpe", "word/unk"])
    v = verdicts(s, "r", compare=("val_bpb",), facts=charged)
    assert not any(x.startswith("Lowest") for x in v)
    assert "a vs r: bpb not compared (different tokenizers; these figures leave part of the " \
        "text uncharged)." in v


def test_verdicts_without_reference_runs(study: Path) -> None:
    runs = L.load_runs(study)
    runs = runs[runs["arm"] != "bpe+scratch"]
    v = verdicts(T.arm_summary(runs, "bpe+scratch"), "bpe+scratch")
    assert any("reference arm bpe+scratch has no completed runs" in x for x in v)


def test_verdict_for_one_pair_and_for_identical_differences() -> None:
    runs = pd.DataFrame(
        {
            "arm": ["r", "r", "a", "b", "b"],
            "seed": [0, 1, 0, 0, 1],
            "status": ["completed"] * 5,
            "run_dir": list("12345"),
            "val_bpb": [1.0, 1.1, 1.2, 1.5, 1.6],
        }
    )
    v = verdicts(T.arm_summary(runs, "r", metrics=("val_bpb",)), "r", compare=("val_bpb",))
    assert any(x.startswith("a vs r: +0.200 bpb on the one common seed: no CI") for x in v)
    assert any(x.startswith("b vs r: +0.500 bpb on every one of n=2 seeds") for x in v)


# ------------------------------------------------------------------------------ headline


def _row(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "arm": "a", "diff": -0.03, "diff_lo": -0.05, "diff_hi": -0.01, "tost_lo": -0.045,
        "tost_hi": -0.015, "p": 0.004, "p_holm": 0.012, "primary": True, "n_seeds": 3,
        "n_docs": 16, "df": 7.4, "method": C.COMPONENTS, "outcome": C.LOWER, "equivalent": False,
    }
    row.update(kw)
    return row


def test_headline_sentence_claims_no_more_than_its_interval() -> None:
    lower = headline_sentence(_row(), "r", "lossless bpb", 0.02)
    assert lower == (
        "a vs r: -0.030 lossless bpb [95% CI -0.050, -0.010], p=0.004, Holm-adjusted p=0.012 "
        "(16 documents × 3 seeds, t with 7.4 df): a is lower (better) by 0.010 to 0.050 "
        "lossless bpb (95% CI, unadjusted)."
    )
    ns = headline_sentence(
        _row(diff=0.004, diff_lo=-0.01, diff_hi=0.02, tost_lo=-0.008, tost_hi=0.017, p=0.6,
             p_holm=1.0, outcome=C.NOT_SIGNIFICANT, equivalent=True), "r", "bpb", 0.02)
    assert ns.endswith(": not significant (CI [-0.010, +0.020]); equivalent within ±0.02 bpb "
                       "(90% CI [-0.008, +0.017] inside the margin).")
    wide = headline_sentence(
        _row(diff=0.004, diff_lo=-0.03, diff_hi=0.04, tost_lo=-0.025, tost_hi=0.035, p=0.7,
             p_holm=1.0, outcome=C.NOT_SIGNIFICANT), "r", "bpb", 0.02)
    assert wide.endswith("not shown equivalent within ±0.02 bpb (90% CI [-0.025, +0.035]).")
    holm_only = headline_sentence(_row(p_holm=0.09, outcome=C.NOT_SIGNIFICANT), "r", "bpb", 0.02)
    assert "not significant after the Holm adjustment (the unadjusted 95% CI excludes zero)" \
        in holm_only
    secondary = headline_sentence(_row(primary=False, p_holm=float("nan")), "r", "bpb", 0.02)
    assert "p=0.004; secondary, outside the Holm family" in secondary
    assert "by 0.010 to 0.050 bpb (95% CI, unadjusted)" in secondary
    # Never "after the Holm adjustment" where there was none: a secondary row, or no p-value.
    sec_ns = headline_sentence(_row(primary=False, p=0.07, p_holm=float("nan"),
                                    outcome=C.NOT_SIGNIFICANT), "r", "bpb", 0.02)
    assert "Holm adjustment" not in sec_ns and ": not significant (CI [-0.050, -0.010])" in sec_ns
    no_p = headline_sentence(
        _row(method=C.SEED_T, n_docs=0, df=2.0, diff_lo=-0.03, diff_hi=-0.03, p=float("nan"),
             p_holm=float("nan"), outcome=C.NOT_SIGNIFICANT,
             note="all paired differences are equal: t-test undefined"), "r", "bpb", 0.02)
    assert "Holm adjustment" not in no_p
    assert ("(t over 3 seeds, 2 df): no p-value (all paired differences are equal: t-test "
            "undefined), so not called significant (CI [-0.030, -0.030])") in no_p
    seed_t = headline_sentence(_row(method=C.SEED_T, n_docs=0, df=2.0), "r", "bpb", 0.02)
    assert "(t over 3 seeds, 2 df)" in seed_t
    for text in (lower, ns, wide, holm_only, secondary, sec_ns, no_p, seed_t):
        assert "tied" not in text and " tie" not in text


def test_headline_sentence_that_depends_on_the_speller() -> None:
    row = _row(diff=0.006, diff_lo=-0.014, diff_hi=0.026, p=0.6, p_holm=1.0,
               outcome=C.SPELLER_DEPENDENT, diff_unigram=0.006, diff_lo_unigram=-0.014,
               diff_hi_unigram=0.026, diff_ngram=-0.024, diff_lo_ngram=-0.044,
               diff_hi_ngram=-0.004)
    text = headline_sentence(row, "r", "lossless bpb", 0.02, ["unigram", "ngram"])
    assert text.endswith(
        ": not decided: depends on the speller (unigram: +0.006 [-0.014, +0.026], "
        "n-gram: -0.024 [-0.044, -0.004])."
    )


def test_headline_verdicts_never_name_a_winner_on_raw_bpb(tmp_path: Path) -> None:
    study = L.load_study(write_new_study(tmp_path))
    facts = C.arm_facts(study.runs, study.configs)
    comp = C.heldout_comparisons(study.runs, study.docs, "bpe+scratch", facts=facts)
    v = headline_verdicts(comp, "bpe+scratch", facts, 0.02, C.spellers(study.runs))
    assert len(v) == 3 and not any("tied" in x for x in v)
    # word_unk+scratch has by far the lowest raw bpb (0.9 below the reference): never a winner.
    unk = next(x for x in v if x.startswith("word_unk+scratch vs bpe+scratch: +0.006 lossless bpb"))
    assert "is lower" not in unk and "depends on the speller" not in unk
    assert ": not significant (CI [" in unk  # not significant under its own figure
    assert "lowercases its text (`vocab.lowercase`)" in unk
    w2v = next(x for x in v if x.startswith("word+word2vec vs bpe+scratch: -0.050 bpb"))
    assert "word+word2vec is lower (better) by 0.050 to 0.050 bpb" in w2v
    bpe = next(x for x in v if x.startswith("bpe+word2vec vs bpe+scratch"))
    assert "not significant" in bpe and "equivalent within ±0.02 bpb" in bpe
    intro = " ".join(headline_intro(comp, "bpe+scratch", 0.02))
    assert "Holm-adjusted across the 3 primary comparisons" in intro
    assert "add two variance components" in intro and "Welch–Satterthwaite" in intro
    assert "no per-document losses" not in intro
    assert not any("tied" in x for x in headline_intro(comp, "bpe+scratch", 0.02))


def test_summary_facts_take_exactness_from_the_records(tmp_path: Path) -> None:
    # word+word2vec has byte fallback (exact: true in its records): its bpb compares with
    # BPE's, so a lowest arm is named; word_unk+scratch (exact: false) would prevent that.
    runs = L.load_runs(write_new_study(tmp_path))
    exact_only = runs[runs["arm"] != "word_unk+scratch"]
    s = T.arm_summary(exact_only, "bpe+scratch")
    assert dict(zip(s["arm"], s["exact"], strict=True))["word+word2vec"]
    v = verdicts(s, "bpe+scratch")
    assert any(x.startswith("Lowest mean") for x in v)
    assert not any(x.startswith("No arm is named lowest") for x in v)
    v = verdicts(T.arm_summary(runs, "bpe+scratch"), "bpe+scratch")
    assert v[0].startswith("No arm is named lowest here")
    # Without the flag (older records): BPE, or word level with vocab_oov == "bytes".
    old = pd.DataFrame({"arm": ["b", "w", "u", "x"], "vocab": ["bpe", "word", "word", "word"],
                        "vocab_oov": [None, "bytes", "unk", "bytes"],
                        "exact": [None, None, None, False]})
    facts = _facts_from_summary(old)
    assert list(facts["exact"]) == [True, True, False, False]  # the flag wins where present
    assert list(facts["tokenizer"]) == ["bpe", "word/bytes", "word/unk", "word/bytes"]
