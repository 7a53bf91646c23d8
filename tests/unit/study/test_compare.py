"""study.compare and study.design on fabricated records whose answers are known.

New-style records (fabricate.write_new_study) carry per-document losses, so comparisons
use the documents x seeds variance-components interval; old-style ones
(fabricate.write_study) fall back to Student t over seeds, and records that cannot be
paired say why.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embinit.record import StudySettings, write_study_settings
from embinit.study import compare as C
from embinit.study import design as D
from embinit.study import load as L
from embinit.study.stats import effective_docs, holm, paired_diff
from tests.unit.study.fabricate import (
    DOC_BYTES,
    NEW_ARMS,
    NGRAM_SHIFT,
    SLIDING_GAIN,
    write_new_study,
)

REF = "bpe+scratch"


@pytest.fixture(scope="module")
def new(tmp_path_factory: pytest.TempPathFactory) -> L.Study:
    return L.load_study(write_new_study(tmp_path_factory.mktemp("new")))


@pytest.fixture(scope="module")
def heldout(new: L.Study) -> pd.DataFrame:
    facts = C.arm_facts(new.runs, new.configs)
    return C.heldout_comparisons(new.runs, new.docs, REF, facts=facts).set_index("arm")


# ------------------------------------------------------------------------------ loading


def test_load_docs_and_settings(new: L.Study) -> None:
    n_docs = sum(len(v) for v in DOC_BYTES.values())
    assert len(new.docs) == len(NEW_ARMS) * 3 * n_docs
    assert list(new.docs.columns) == list(L.DOC_COLUMNS)
    one = new.docs[(new.docs["arm"] == "word_unk+scratch") & (new.docs["seed"] == 1)]
    assert list(one["doc_id"][:2]) == ["val-doc0", "val-doc1"] and (one["charge"] > 0).all()
    assert (new.docs[new.docs["arm"] == REF]["charge"] == 0).all()
    assert new.settings is not None and new.settings.equivalence_margin == 0.02
    assert L.study_description(new) == "fabricated new-style study"


def test_damaged_doc_lists_are_a_clear_error(tmp_path: Path) -> None:
    study = write_new_study(tmp_path)
    path = study / REF / "seed0" / "summary.json"
    rec = json.loads(path.read_text())
    rec["val"]["doc_bytes"] = rec["val"]["doc_bytes"][:-1]
    path.write_text(json.dumps(rec))
    with pytest.raises(L.AnalysisError, match="different lengths"):
        L.load_docs(study)


def test_reference_from_study_json_then_configs(tmp_path: Path, study: Path) -> None:
    s = write_new_study(tmp_path, settings=False)
    assert L.load_study(s).settings is None
    assert L.reference_arm_for(L.load_study(s)) == REF  # no study.json: bpe+scratch
    write_study_settings(s, StudySettings(name="design", reference_arm="word+word2vec"))
    assert L.reference_arm_for(L.load_study(s)) == "word+word2vec"
    assert L.reference_arm_for(L.load_study(s), REF) == REF  # asked for wins
    assert L.reference_arm_for(L.load_study(study)) == REF  # old records: their configs


# ------------------------------------------------------------------------------ comparisons


def test_arm_facts(new: L.Study) -> None:
    f = C.arm_facts(new.runs, new.configs).set_index("arm")
    assert f["exact"].to_dict() == {
        "bpe+scratch": True, "bpe+word2vec": True, "word+word2vec": True,
        "word_unk+scratch": False,
    }
    assert f.loc["word+word2vec", "tokenizer"] == "word/bytes 16,384"
    assert f.loc["word_unk+scratch", "tokenizer"] == "word/unk 16,384"
    assert f["lowercase"].to_dict()["word_unk+scratch"] and not f.loc[REF, "lowercase"]
    assert C.spellers(new.runs) == ["unigram", "ngram"]


def test_constant_difference_is_decided_with_a_collapsed_interval(heldout: pd.DataFrame) -> None:
    w = heldout.loc["word+word2vec"]
    assert (w["method"], w["n_seeds"], w["n_docs"], w["figure"]) == (C.COMPONENTS, 3, 9, "bpb")
    assert (w["diff"], w["diff_lo"], w["diff_hi"]) == pytest.approx((-0.05, -0.05, -0.05), abs=1e-12)
    assert w["p"] < 1e-12 and (w["doc_status"], w["note"]) == ("", "")
    assert w["outcome"] == C.LOWER and not w["equivalent"]


def test_holm_over_every_arm_when_no_primary_is_declared(heldout: pd.DataFrame) -> None:
    others = heldout.drop(REF)
    assert others["primary"].all() and not heldout.loc[REF, "primary"]
    assert others["p_holm"].to_numpy() == pytest.approx(holm(others["p"].to_numpy()))
    smallest = others["p"].min()
    assert others["p_holm"].min() == pytest.approx(3 * smallest)  # m = 3
    assert math.isnan(heldout.loc[REF, "p_holm"])


def test_declared_primary_comparisons_are_the_holm_family(new: L.Study) -> None:
    df = C.heldout_comparisons(new.runs, new.docs, REF, primary=["word+word2vec"]).set_index("arm")
    assert df["primary"].to_dict() == {
        REF: False, "bpe+word2vec": False, "word+word2vec": True, "word_unk+scratch": False,
    }
    assert df.loc["word+word2vec", "p_holm"] == df.loc["word+word2vec", "p"]  # a family of one
    assert df.drop("word+word2vec")["p_holm"].isna().all()


def test_small_alternating_difference_is_equivalent_not_tied(heldout: pd.DataFrame) -> None:
    b = heldout.loc["bpe+word2vec"]
    assert b["outcome"] == C.NOT_SIGNIFICANT and b["equivalent"]
    assert b["diff_lo"] <= b["tost_lo"] and b["tost_hi"] <= b["diff_hi"]  # 90% inside 95%
    assert -0.02 < b["tost_lo"] < b["tost_hi"] < 0.02
    assert b["diff_lo"] < 0 < b["diff_hi"]


def test_charged_arm_not_significant_is_not_speller_dependent(heldout: pd.DataFrame) -> None:
    u = heldout.loc["word_unk+scratch"]
    assert u["figure"] == "lossless bpb" and not u["exact"]
    assert u["diff_unigram"] == pytest.approx(u["diff"], abs=1e-12)
    assert u["diff_ngram"] == pytest.approx(u["diff"] + NGRAM_SHIFT, abs=1e-12)
    assert u["diff_lo_ngram"] == pytest.approx(u["diff_lo"] + NGRAM_SHIFT, abs=1e-12)
    assert u["diff"] > 0 > u["diff_ngram"]
    # The records' own figure is not significant (p > 0.05); that the n-gram speller's
    # interval lies below zero does not make it "depends on the speller".
    assert u["p"] > 0.05 and u["diff_lo"] < 0 < u["diff_hi"] and u["diff_hi_ngram"] < 0
    assert u["outcome"] == C.NOT_SIGNIFICANT and not u["equivalent"]


def test_split_scopes(new: L.Study) -> None:
    for scope, n in (("val", 4), ("test", 5)):
        df = C.heldout_comparisons(new.runs, new.docs, REF, scope).set_index("arm")
        assert (df.drop(REF)["n_docs"] == n).all() and set(df["scope"]) == {scope}
        assert df.loc["word+word2vec", "diff"] == pytest.approx(-0.05, abs=1e-12)
    val = C.heldout_comparisons(new.runs, new.docs, REF, "val").set_index("arm")
    # reference bpb on val, seed mean of byte-weighted document bpb: 1.5 + 0.1 j + 0.01 seed
    b = np.array(DOC_BYTES["val"])
    expected = float((1.5 + 0.1 * np.arange(4)) @ b / b.sum()) + 0.01
    assert val.loc[REF, "bpb"] == pytest.approx(expected, abs=1e-12)
    assert val.loc[REF, "bpb_lo"] < expected < val.loc[REF, "bpb_hi"]


def test_old_records_fall_back_to_seed_t(study: Path) -> None:
    runs = L.load_runs(study)
    docs = L.load_docs(study)
    assert docs.empty
    df = C.heldout_comparisons(runs, docs, REF).set_index("arm")
    w = df.loc["word+word2vec"]
    assert (w["method"], w["n_docs"], w["n_seeds"]) == (C.SEED_T, 0, 3)
    # lossless held-out per seed: (val + test) / 2 with equal bytes; word+word2vec's lossless
    # is its adjusted figure + 0.1, the test split 0.05 above val in both arms.
    arm = np.array([1.50, 1.52, 1.51]) + 0.025
    ref = np.array([1.20, 1.21, 1.22]) + 0.025
    res = paired_diff(arm, ref)
    assert (w["diff"], w["diff_lo"], w["diff_hi"], w["p"]) == pytest.approx(
        (res["mean_diff"], res["lo"], res["hi"], res["p_value"]), abs=1e-12
    )
    tost = paired_diff(arm, ref, 0.90)
    assert (w["tost_lo"], w["tost_hi"]) == pytest.approx((tost["lo"], tost["hi"]), abs=1e-12)
    assert w["outcome"] == C.HIGHER and w["figure"] == "lossless bpb"


def test_seeds_scored_on_different_documents_are_not_compared(new: L.Study) -> None:
    docs = new.docs
    drop = (docs["arm"] == "word+word2vec") & (docs["seed"] == 0) & (docs["doc_id"] == "val-doc0")
    df = C.heldout_comparisons(new.runs, docs[~drop], REF).set_index("arm")
    w = df.loc["word+word2vec"]
    assert (w["doc_status"], w["method"], w["outcome"]) == (C.DOCS_INCONSISTENT, "", C.NO_COMPARISON)
    assert w["note"] == ("word+word2vec: seeds 0 and 1 were scored on different val documents "
                         "(3 and 4 documents, 1 not in both)")
    assert math.isnan(w["diff"]) and math.isnan(w["p_holm"])
    assert (w["arm_method"], w["arm_doc_status"]) == (C.SEED_T, C.DOCS_INCONSISTENT)
    assert df.loc["bpe+word2vec", "method"] == C.COMPONENTS


def test_outcome_rules() -> None:
    base = {"diff": -0.03, "diff_lo": -0.05, "diff_hi": -0.01, "tost_lo": -0.045,
            "tost_hi": -0.015, "p": 0.01, "p_holm": 0.03, "primary": True}
    assert C.outcome(base, 0.02) == (C.LOWER, False)
    # The CI excludes zero, but the Holm-adjusted p does not reach alpha: not significant.
    assert C.outcome({**base, "p_holm": 0.07}, 0.02) == (C.NOT_SIGNIFICANT, False)
    # Outside the Holm family the raw p decides.
    assert C.outcome({**base, "p_holm": math.nan, "primary": False}, 0.02)[0] == C.LOWER
    up = {**base, "diff": 0.03, "diff_lo": 0.01, "diff_hi": 0.05}
    assert C.outcome(up, 0.02)[0] == C.HIGHER
    near = {**base, "diff": 0.001, "diff_lo": -0.004, "diff_hi": 0.006, "tost_lo": -0.003,
            "tost_hi": 0.005, "p": 0.7, "p_holm": 1.0}
    assert C.outcome(near, 0.02) == (C.NOT_SIGNIFICANT, True)
    assert C.outcome(near, 0.004) == (C.NOT_SIGNIFICANT, False)  # 90% CI reaches the margin
    # Significant, and a speller under which the interval no longer excludes zero: not decided.
    sp = {**base, "diff_ngram": -0.01, "diff_lo_ngram": -0.03, "diff_hi_ngram": 0.01,
          "tost_lo_ngram": -0.025, "tost_hi_ngram": 0.005}
    assert C.outcome(sp, 0.02, ["ngram"])[0] == C.SPELLER_DEPENDENT
    flip = {**sp, "diff_ngram": 0.01, "diff_lo_ngram": -0.01, "diff_hi_ngram": 0.03}
    assert C.outcome(flip, 0.02, ["ngram"])[0] == C.SPELLER_DEPENDENT
    other_side = {**sp, "diff_ngram": 0.03, "diff_lo_ngram": 0.01, "diff_hi_ngram": 0.05}
    assert C.outcome(other_side, 0.02, ["ngram"])[0] == C.SPELLER_DEPENDENT
    both = {**sp, "diff_ngram": -0.04, "diff_lo_ngram": -0.06, "diff_hi_ngram": -0.02}
    assert C.outcome(both, 0.02, ["ngram"])[0] == C.LOWER
    # Not significant is not significant, whatever the spellers' intervals say.
    assert C.outcome({**flip, "p": 0.5, "p_holm": 0.9}, 0.02, ["ngram"])[0] == C.NOT_SIGNIFICANT
    shifted = {**base, "diff": 0.004, "diff_lo": -0.016, "diff_hi": 0.024, "p": 0.6, "p_holm": 1.0,
               "diff_ngram": -0.026, "diff_lo_ngram": -0.046, "diff_hi_ngram": -0.006,
               "tost_lo_ngram": -0.04, "tost_hi_ngram": -0.01}
    assert C.outcome(shifted, 0.02, ["ngram"])[0] == C.NOT_SIGNIFICANT
    # No p-value: not significant, even where the (degenerate) interval excludes zero.
    assert C.outcome({**base, "p": math.nan, "p_holm": math.nan}, 0.02)[0] == C.NOT_SIGNIFICANT
    assert C.outcome({"diff": math.nan}, 0.02) == (C.NO_COMPARISON, False)


# ------------------------------------------------------------------------------ design


def test_design_table(new: L.Study, study: Path) -> None:
    facts = C.arm_facts(new.runs, new.configs)
    d = D.design_table(new.runs, facts, L.arm_order(new.runs, REF)).set_index("arm")
    assert list(d.columns) == D.DESIGN_COLUMNS[1:]
    w = d.loc["word+word2vec"]
    assert (w["budget"], w["context"], w["block_tokens"], w["bytes_per_window"]) == (
        "bytes", "bytes", 100.0, 512.0)
    assert (w["init_tokens"], w["init_epochs"], w["init_wall_s"]) == (500_000, 5.0, 3.0)
    assert w["total_flops"] == pytest.approx(1.5e12 + 2e10)
    assert d.loc[REF, "init_flops"] == 0 and d.loc[REF, "total_flops"] == pytest.approx(1e12)
    # Older records: epochs from bytes seen / train bytes, the rest not recorded.
    old = L.load_runs(study)
    o = D.design_table(old, C.arm_facts(old), L.arm_order(old, REF)).set_index("arm")
    assert o.loc[REF, "epochs"] == pytest.approx(50 * 8192 / 800_000)
    assert o.loc[REF, "budget"] == "" and math.isnan(o.loc[REF, "train_flops"])


def test_body_init_check(new: L.Study, study: Path) -> None:
    answer, per_seed = D.body_init_check(new.runs)
    assert answer == "yes" and list(per_seed["hashes"]) == [1, 1, 1]
    runs = new.runs.copy()
    runs.loc[(runs["arm"] == "word+word2vec") & (runs["seed"] == 1),
             "params_body_init_sha256"] = "other"
    answer, per_seed = D.body_init_check(runs)
    assert answer == "no" and per_seed.set_index("seed").loc[1, "hashes"] == 2
    runs.loc[runs["seed"] == 1, "params_body_init_sha256"] = None
    runs.loc[(runs["arm"] == REF) & (runs["seed"] == 1), "params_body_init_sha256"] = "x"
    assert D.body_init_check(runs)[0] == "partly recorded"
    assert D.body_init_check(L.load_runs(study))[0] == "not recorded"


def test_sliding_and_speller_tables(new: L.Study, study: Path) -> None:
    order = L.arm_order(new.runs, REF)
    s = D.sliding_table(new.runs, order)
    assert len(s) == 2 * len(NEW_ARMS)
    assert s["gain"].to_numpy() == pytest.approx(-SLIDING_GAIN, abs=1e-12)
    assert set(s["stride"]) == {"64"}
    assert D.sliding_table(L.load_runs(study), order).empty
    sp = D.speller_table(new.runs, order, C.spellers(new.runs)).set_index(["arm", "speller"])
    assert list(sp.index) == [("word_unk+scratch", "unigram"), ("word_unk+scratch", "ngram")]
    u, n = sp.loc[("word_unk+scratch", "unigram")], sp.loc[("word_unk+scratch", "ngram")]
    for scope in ("val", "test", "held-out"):
        assert n[scope] == pytest.approx(u[scope] + NGRAM_SHIFT, abs=1e-12)


def test_documents_pair_on_the_seeds_both_arms_completed(tmp_path: Path) -> None:
    study = write_new_study(tmp_path)
    (study / REF / "seed2" / "summary.json").unlink()  # the reference's seed 2 never finished
    s = L.load_study(study)
    df = C.heldout_comparisons(s.runs, s.docs, REF).set_index("arm")
    w = df.loc["word+word2vec"]
    assert (w["method"], w["n_seeds"], w["n_docs"]) == (C.COMPONENTS, 2, 9)
    assert w["diff"] == pytest.approx(-0.05, abs=1e-12)
    assert (w["arm_seeds"], df.loc[REF, "arm_seeds"]) == (3, 2)  # own figures: own seeds


# ------------------------------------------------------------------------------ declared pairs
#
# Per document, word+word2vec - bpe+word2vec = -0.05 - 0.004 alt (alt = +1 on even documents,
# -1 on odd), so pooled over seeds and documents the pair's difference is
# -0.05 - 0.004 sum(alt bytes) / sum(bytes); word_unk+scratch - word+word2vec on lossless
# bpb = 0.054 + 0.03 alt per document.

PAIR = "word+word2vec vs bpe+word2vec"
CHARGED_PAIR = "word_unk+scratch vs word+word2vec"


def _alt_share(splits: tuple[str, ...] = ("val", "test")) -> float:
    sizes = [b for s in splits for b in DOC_BYTES[s]]
    alt = [1 if j % 2 == 0 else -1 for s in splits for j in range(len(DOC_BYTES[s]))]
    return sum(a * b for a, b in zip(alt, sizes, strict=True)) / sum(sizes)


def _pair(df: pd.DataFrame, a: str, b: str) -> pd.Series:
    rows = C.pair_rows(df)
    rows = rows[(rows["arm"] == a) & (rows["versus"] == b)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_declared_reads_arms_and_pairs() -> None:
    arms = list(NEW_ARMS)
    singles, pairs, absent = C.declared(
        ["word+word2vec", PAIR, " word+word2vec  vs  bpe+word2vec ", "bpe+word2vec vs bpe+scratch",
         "no+such", "no+such vs bpe+word2vec", "bpe+word2vec vs bpe+word2vec", REF,
         "word+word2vec versus bpe+word2vec"],
        arms, REF,
    )
    assert singles == ["word+word2vec", "bpe+word2vec"]  # "a vs <reference>" is the arm form
    assert pairs == [("word+word2vec", "bpe+word2vec")]  # repeats dropped
    assert absent == ["no+such", "no+such vs bpe+word2vec", "bpe+word2vec vs bpe+word2vec", REF,
                      "word+word2vec versus bpe+word2vec"]


def test_pair_difference_is_arm_a_minus_arm_b(new: L.Study) -> None:
    df = C.heldout_comparisons(new.runs, new.docs, REF, primary=[PAIR])
    assert list(df["arm"]) == [*NEW_ARMS, "word+word2vec"]  # arm rows, then the pair
    p = _pair(df, "word+word2vec", "bpe+word2vec")
    expected = -0.05 - 0.004 * _alt_share()
    assert p["diff"] == pytest.approx(expected, abs=1e-12)
    arms = C.arm_rows(df).set_index("arm")
    assert p["diff"] == pytest.approx(
        arms.loc["word+word2vec", "diff"] - arms.loc["bpe+word2vec", "diff"], abs=1e-12)
    assert p["diff"] == pytest.approx(
        arms.loc["word+word2vec", "bpb"] - arms.loc["bpe+word2vec", "bpb"], abs=1e-12)
    assert (p["figure"], p["exact"], p["method"], p["n_seeds"], p["n_docs"]) == (
        "bpb", True, C.COMPONENTS, 3, 9)
    assert p["diff_lo"] <= p["tost_lo"] < expected < p["tost_hi"] <= p["diff_hi"] < 0
    # Every document favours word+word2vec and the seeds agree: the document component alone,
    # with the 9 documents' effective number (Kish, by bytes) less one degrees of freedom.
    n_eff = effective_docs([b for v in DOC_BYTES.values() for b in v])
    assert p["n_docs_eff"] == pytest.approx(n_eff) and 8.5 < n_eff < 8.6
    assert p["p"] < 1e-6 and p["df"] == pytest.approx(n_eff - 1)
    assert p["primary"] and p["pair"] and p["outcome"] == C.LOWER and not p["equivalent"]
    # a family of one: the pair alone is primary, every arm row secondary
    assert p["p_holm"] == p["p"]
    assert not arms["primary"].any() and arms["p_holm"].isna().all()
    for scope in ("val", "test"):
        sp = C.heldout_comparisons(new.runs, new.docs, REF, scope, primary=[PAIR])
        p = _pair(sp, "word+word2vec", "bpe+word2vec")
        assert p["scope"] == scope and p["n_docs"] == len(DOC_BYTES[scope])
        assert p["diff"] == pytest.approx(-0.05 - 0.004 * _alt_share((scope,)), abs=1e-12)


def test_pairs_enter_the_holm_family(new: L.Study) -> None:
    one = C.arm_rows(C.heldout_comparisons(new.runs, new.docs, REF, primary=["word+word2vec"]))
    w = one.set_index("arm").loc["word+word2vec"]
    assert w["p_holm"] == w["p"]  # a family of one
    primary = ["word+word2vec", PAIR, "bpe+word2vec", CHARGED_PAIR]
    df = C.heldout_comparisons(new.runs, new.docs, REF, primary=primary)
    arms = C.arm_rows(df).set_index("arm")
    pair, charged = _pair(df, "word+word2vec", "bpe+word2vec"), _pair(df, *CHARGED_PAIR.split(" vs "))
    raw = [arms.loc["word+word2vec", "p"], pair["p"], arms.loc["bpe+word2vec", "p"], charged["p"]]
    assert max(raw[0], raw[1], raw[3]) < 1e-3 and 0.5 < raw[2] < 1
    # Holm over m = 4: the largest raw p is adjusted by 1, so it stays
    assert arms.loc["bpe+word2vec", "p_holm"] == pytest.approx(raw[2])
    assert [arms.loc["word+word2vec", "p_holm"], pair["p_holm"], arms.loc["bpe+word2vec", "p_holm"],
            charged["p_holm"]] == pytest.approx(list(holm(raw)))
    assert not arms.loc["word_unk+scratch", "primary"]
    assert math.isnan(arms.loc["word_unk+scratch", "p_holm"])


def test_charged_pair_is_on_lossless_bpb_under_every_speller(new: L.Study) -> None:
    df = C.heldout_comparisons(new.runs, new.docs, REF, primary=[CHARGED_PAIR])
    c = _pair(df, "word_unk+scratch", "word+word2vec")
    assert (c["figure"], c["exact"], c["method"]) == ("lossless bpb", False, C.COMPONENTS)
    assert c["diff"] == pytest.approx(0.054 + 0.03 * _alt_share(), abs=1e-12)
    assert c["diff_unigram"] == pytest.approx(c["diff"], abs=1e-12)
    assert c["diff_ngram"] == pytest.approx(c["diff"] + NGRAM_SHIFT, abs=1e-12)
    assert c["diff_lo_ngram"] == pytest.approx(c["diff_lo"] + NGRAM_SHIFT, abs=1e-12)
    assert c["diff_lo_ngram"] > 0 and c["outcome"] == C.HIGHER  # under both spellers


def test_pair_falls_back_to_seed_t_without_documents(new: L.Study, study: Path) -> None:
    docs = new.docs
    drop = (docs["arm"] == "bpe+word2vec") & (docs["seed"] == 1)
    df = C.heldout_comparisons(new.runs, docs[~drop], REF, primary=[PAIR])
    p = _pair(df, "word+word2vec", "bpe+word2vec")
    assert (p["method"], p["n_docs"], p["n_seeds"]) == (C.SEED_T, 0, 3)
    assert p["doc_status"] == C.DOCS_MISSING
    assert p["note"] == "bpe+word2vec (seed 1, val): no per-document losses in its records"
    per_seed = [C.seed_figure(new.runs[new.runs["arm"] == a], ("val", "test")).sort_index()
                for a in ("word+word2vec", "bpe+word2vec")]
    res = paired_diff(per_seed[0].to_numpy(), per_seed[1].to_numpy())
    assert (p["diff"], p["diff_lo"], p["diff_hi"], p["p"]) == pytest.approx(
        (res["mean_diff"], res["lo"], res["hi"], res["p_value"]), abs=1e-12)
    assert p["diff"] == pytest.approx(-0.05 - 0.004 * _alt_share(), abs=1e-12)
    assert _pair(C.heldout_comparisons(new.runs, new.docs, REF, primary=[PAIR]),
                 "word+word2vec", "bpe+word2vec")["method"] == C.COMPONENTS
    # old records: no documents at all; the pair uses the seeds both arms completed
    runs = L.load_runs(study)
    old = C.heldout_comparisons(runs, L.load_docs(study), REF,
                                primary=["word+word2vec vs word+scratch"])
    o = _pair(old, "word+word2vec", "word+scratch")
    assert (o["method"], o["n_seeds"], o["figure"]) == (C.SEED_T, 2, "lossless bpb")
    # lossless = adjusted + 0.1 in both word arms: word+word2vec 1.40, 1.42 vs 1.26, 1.30
    assert o["diff"] == pytest.approx(((1.40 - 1.26) + (1.42 - 1.30)) / 2, abs=1e-12)
    assert o["p_holm"] == o["p"]


def test_a_comparison_with_the_reference_is_counted_once() -> None:
    arms = list(NEW_ARMS)
    singles, pairs, absent = C.declared(
        ["word+word2vec", f"{REF} vs word+word2vec", "word+word2vec vs bpe+scratch",
         f"{REF} vs bpe+word2vec", PAIR, "bpe+word2vec vs word+word2vec"],
        arms, REF,
    )
    assert singles == ["word+word2vec", "bpe+word2vec"]  # "<reference> vs a" is a's comparison
    assert pairs == [("word+word2vec", "bpe+word2vec")]  # "b vs a" after "a vs b": the same
    assert absent == []


def test_a_primary_comparison_without_p_still_counts_in_the_holm_family(tmp_path: Path) -> None:
    # One seed: word_unk+scratch without per-document losses falls back to t over a single
    # seed, which has no p-value; it still counts in m (as p = 1).
    s = L.load_study(write_new_study(tmp_path, seeds=(0,)))
    docs = s.docs[s.docs["arm"] != "word_unk+scratch"]
    primary = ["word+word2vec", "bpe+word2vec", f"{REF} vs word_unk+scratch"]
    df = C.heldout_comparisons(s.runs, docs, REF, primary=primary).set_index("arm")
    u = df.loc["word_unk+scratch"]
    assert u["primary"] and u["method"] == C.SEED_T and math.isnan(u["p"])
    assert math.isnan(u["p_holm"]) and u["outcome"] == C.NOT_SIGNIFICANT
    raw = [df.loc["word+word2vec", "p"], df.loc["bpe+word2vec", "p"]]
    adjusted = holm([*raw, 1.0])
    assert df.loc["word+word2vec", "p_holm"] == pytest.approx(adjusted[0])
    assert df.loc["bpe+word2vec", "p_holm"] == pytest.approx(adjusted[1])
    assert df.loc["word+word2vec", "p_holm"] == pytest.approx(3 * raw[0])  # m = 3, not 2
    # one seed: D - 1, D the documents' effective number (they are of unequal size)
    n_eff = effective_docs([b for v in DOC_BYTES.values() for b in v])
    assert df.loc["word+word2vec", "df"] == pytest.approx(n_eff - 1)
    assert df.loc["word+word2vec", "arm_docs_eff"] == pytest.approx(n_eff)


def _without_ids(docs: pd.DataFrame, arm: str) -> pd.DataFrame:
    out = docs.copy()
    out.loc[out["arm"] == arm, "doc_id"] = None
    return out


def test_documents_pair_by_position_when_an_arm_records_no_ids(new: L.Study) -> None:
    docs = _without_ids(new.docs, "word+word2vec")
    df = C.heldout_comparisons(new.runs, docs, REF).set_index("arm")
    by_id = C.heldout_comparisons(new.runs, new.docs, REF).set_index("arm")
    w = df.loc["word+word2vec"]
    assert w["method"] == C.COMPONENTS and w["doc_status"] == ""
    assert w["note"] == ("paired by position (word+word2vec records no document ids; every "
                         "document's bytes agree)")
    cols = ["diff", "diff_lo", "diff_hi", "p", "df", "bpb", "bpb_lo", "bpb_hi"]
    assert w[cols].to_numpy(float) == pytest.approx(by_id.loc["word+word2vec", cols].to_numpy(float))


def test_positions_whose_bytes_differ_are_not_paired(new: L.Study) -> None:
    docs = _without_ids(new.docs, "word+word2vec")
    # word+word2vec's val documents in another order: by position, the texts do not match
    w2v_val = (docs["arm"] == "word+word2vec") & (docs["split"] == "val")
    docs.loc[w2v_val, "doc"] = 3 - docs.loc[w2v_val, "doc"]
    df = C.heldout_comparisons(new.runs, docs, REF).set_index("arm")
    w = df.loc["word+word2vec"]
    assert (w["method"], w["doc_status"]) == (C.SEED_T, C.DOCS_REFUSED)
    assert w["note"] == ("word+word2vec records no document ids, and by position document 0 of "
                         "val has 1200 bytes in word+word2vec but 1000 in bpe+scratch: the "
                         "positions do not align")
    assert w["diff"] == pytest.approx(-0.05, abs=1e-12) and w["outcome"] == C.LOWER


def test_arms_scored_on_different_documents_are_not_compared(new: L.Study) -> None:
    docs = new.docs.copy()
    renamed = (docs["arm"] == "bpe+word2vec") & (docs["doc_id"] == "test-doc4")
    docs.loc[renamed, "doc_id"] = "test-doc9"
    df = C.heldout_comparisons(new.runs, docs, REF, primary=["bpe+word2vec"]).set_index("arm")
    b = df.loc["bpe+word2vec"]
    assert (b["doc_status"], b["outcome"]) == (C.DOCS_INCONSISTENT, C.NO_COMPARISON)
    assert b["note"] == ("bpe+word2vec and bpe+scratch were scored on different test documents "
                         "(1 ids only in bpe+word2vec, 1 only in bpe+scratch): the records do "
                         "not describe the same held-out text")
    assert math.isnan(b["diff"]) and b["primary"] and math.isnan(b["p_holm"])
    assert df.loc["bpe+word2vec", "arm_method"] == C.COMPONENTS  # its own figure is fine


def test_the_same_id_with_other_bytes_is_inconsistent(new: L.Study) -> None:
    docs = new.docs.copy()
    docs.loc[(docs["arm"] == "bpe+word2vec") & (docs["doc_id"] == "val-doc2"), "bytes"] = 801
    b = C.heldout_comparisons(new.runs, docs, REF).set_index("arm").loc["bpe+word2vec"]
    assert (b["doc_status"], b["outcome"]) == (C.DOCS_INCONSISTENT, C.NO_COMPARISON)
    assert b["note"] == ("document val-doc2 of val has 801 bytes in bpe+word2vec but 800 in "
                         "bpe+scratch: the same id names different texts")


def test_repeated_document_ids_are_not_paired(new: L.Study) -> None:
    docs = new.docs.copy()
    docs.loc[(docs["arm"] == "bpe+word2vec") & (docs["seed"] == 2)
             & (docs["doc_id"] == "val-doc3"), "doc_id"] = "val-doc1"
    b = C.heldout_comparisons(new.runs, docs, REF).set_index("arm").loc["bpe+word2vec"]
    assert (b["method"], b["doc_status"]) == (C.SEED_T, C.DOCS_REFUSED)
    assert b["note"].startswith("bpe+word2vec (seed 2, val): document id val-doc1 appears more "
                                "than once")


def test_a_charged_record_without_per_document_charges_has_no_documents(tmp_path: Path) -> None:
    study = write_new_study(tmp_path)
    for arm in ("word_unk+scratch", REF):  # charged, and exact: only the first loses its rows
        for seed in (0, 1, 2):
            path = study / arm / f"seed{seed}" / "summary.json"
            rec = json.loads(path.read_text())
            for split in ("val", "test"):
                del rec[split]["doc_charge_nats"]
            path.write_text(json.dumps(rec))
    s = L.load_study(study)
    assert not (s.docs["arm"] == "word_unk+scratch").any()
    assert (s.docs[s.docs["arm"] == REF]["charge"] == 0).all()  # exact: charges are zero
    gaps = s.doc_gaps
    assert list(gaps.columns) == list(L.DOC_GAP_COLUMNS) and len(gaps) == 6
    assert set(gaps["arm"]) == {"word_unk+scratch"} and set(gaps["reason"]) == {L.NO_DOC_CHARGES}
    df = C.heldout_comparisons(s.runs, s.docs, REF, gaps=s.doc_gaps).set_index("arm")
    u = df.loc["word_unk+scratch"]
    assert (u["method"], u["doc_status"]) == (C.SEED_T, C.DOCS_MISSING)
    assert u["note"] == f"word_unk+scratch: {L.NO_DOC_CHARGES}"
    assert (u["arm_method"], u["arm_note"]) == (C.SEED_T, f"word_unk+scratch: {L.NO_DOC_CHARGES}")
    assert df.loc["word+word2vec", "method"] == C.COMPONENTS
