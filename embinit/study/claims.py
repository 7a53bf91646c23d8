"""The seed's claims, one by one, judged from the run records: the claims scorecard.

Each claim gets one ``ClaimRow``: the claim in a sentence, the experiment that tests it,
the measured numbers (``ClaimTest``: estimate and 95% interval each), a verdict
(``SUPPORTED``, ``CONTRADICTED`` or ``UNDECIDED``) and the decision rule that produced it,
stated in ``RULES`` and printed in the report. A claim whose arms were not run gets a row
that names the arms that would test it. Differences in bpb are arm minus comparison over
the held-out documents (``compare.compare_arms``: document bootstrap + seed variance, or
Student t over seeds for records without per-document losses); the p-values of every
difference a verdict rests on are Holm-adjusted together (``HOLM_FAMILY``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from embinit.study import compare as C
from embinit.study.load import Study, completed, numeric_col
from embinit.study.regimes import gain_by_fraction, gain_trend, split_fraction, trend_summary
from embinit.study.shapes import model_shape
from embinit.study.stats import TOST_CONFIDENCE, holm, mean_ci

SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "not decided at this scale"
NOT_RUN = "not tested"  # the arms that test the claim are not in this study
ALPHA = 0.05
SIZE_RATIO = 1.2  # claim 2: "much larger" means at least this many times the parameters
GPT2_BPE_VOCAB = 50_257
GPT2_WORD_VOCAB = 100_000
HOLM_FAMILY = "the scorecard's bpb differences that carry a verdict (claims 1, 4 and 5)"

RULES: dict[int, str] = {
    1: "Per tokenizer, Δ = <tok>+word2vec − <tok>+scratch (bpb), margin m = the study's "
       "equivalence margin. Contradicted if the one-sided test of \"Δ ≥ −m\" rejects it "
       "(a gain larger than m), supported if the one-sided test of \"Δ ≤ −m\" rejects it (no "
       "gain of m or more; this includes equivalence within ±m and a harmful init), each at "
       "Holm-adjusted p < 0.05 over both one-sided tests of every verdict-bearing difference "
       "of claims 1, 4 and 5 (t with the interval's df); otherwise not decided. The claim "
       "is contradicted if any tokenizer's test is, supported if every one is. A gain is "
       "attributed to meaning only when the arm is also below both controls of the same "
       "source (shuffled and matched_random: 95% CI of arm − control wholly below 0).",
    2: f"Parameters of the word model / the BPE model at GPT-2 small shape (V = "
       f"{GPT2_WORD_VOCAB:,} words vs {GPT2_BPE_VOCAB:,} BPE tokens, tied head). Supported "
       f"if the ratio is ≥ {SIZE_RATIO:g}×, contradicted if below (exact counts, no "
       "interval; untying the head only widens the gap). The study's own arms are shown too.",
    3: "D = gain on vector-row targets − gain on fallback-row targets, gain = "
       "word+word2vec − word+scratch in bpb per row class (val and test pooled), per seed, "
       "Student t over the seeds (no document component: by_row_class is stored per split, "
       "so this interval is narrower than the others'). Supported if D's 95% CI lies wholly "
       "below −m (the gain is larger by more than m where the token has a vector row: "
       "byte-spelled OOV words dilute it) and the word arm spells some words in bytes; "
       "contradicted if D's 95% CI lies wholly above 0 or its 90% CI inside ±m; otherwise not "
       "decided. Only the word half of the claim is tested: that sub-words handle OOV "
       "gracefully is not (BPE has no OOV to compare).",
    4: "Δ = word+word2vec-frozen+untied − word+word2vec+untied (bpb): the input vectors "
       "frozen or trained, the output layer untied and trained in both (a tied frozen "
       "embedding would freeze the output layer too). Supported if the one-sided test of "
       "\"Δ ≤ +m\" rejects it (freezing the vectors costs more than m: they had to be "
       "re-learned), contradicted if that of \"Δ ≥ +m\" does (freezing costs less than m), "
       "at Holm-adjusted p < 0.05 as in claim 1; otherwise not decided. Drift and similarity scores describe.",
    5: "As claim 1 with the contextual (MiniLM, the offline 'Ada' stand-in) init: Δ = "
       "<tok>+contextual − <tok>+scratch. Supported (unsuitable) when a gain of m or more is "
       "rejected, contradicted when a gain beyond m is established, tests and Holm as in "
       "claim 1; controls as in claim 1.",
    6: "The word2vec gain (word+word2vec − word+scratch) at each train fraction, fitted "
       "log-linearly against training bytes (weighted by 1/se²). Always not decided at this "
       "scale: a model 100-1000x smaller on megabytes of text cannot decide a claim about "
       "~100M parameters; the trend and its extrapolation are reported as evidence to weigh, "
       "and values beyond the largest training size are an extrapolation.",
}

CLAIMS: dict[int, str] = {
    1: "Initializing token embeddings from Word2Vec gives no substantial gain.",
    2: "Word-level vocabularies make the model much larger (the embedding, and an untied "
       "output layer).",
    3: "Sub-words handle OOV words gracefully; word-level OOV rows dilute the pretrained "
       "benefit.",
    4: "Static vectors have to be re-learned by the model anyway.",
    5: "Contextual ('Ada'-style) embeddings are unsuitable as a token initialization.",
    6: "A ~100M-parameter model learns good embeddings from scratch.",
}


@dataclass
class ClaimTest:
    """One measured number of a claim: an estimate with its 95% interval (NaN if none)."""

    label: str
    estimate: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    tost_lo: float = math.nan
    tost_hi: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    in_family: bool = False  # its p enters the Holm family
    df: float = math.nan  # degrees of freedom of the interval (t)
    # One-sided p-values of the shifted nulls a verdict rests on, before and after Holm:
    # {"contradicts" | "supports": p}. See `directional_p`.
    p_side: dict[str, float] = field(default_factory=dict)
    p_side_holm: dict[str, float] = field(default_factory=dict)
    unit: str = "bpb"
    method: str = ""
    verdict: str = ""  # this test's own verdict, where the claim combines several
    note: str = ""


@dataclass
class ClaimRow:
    """A row of the scorecard."""

    number: int
    claim: str
    experiment: str
    verdict: str
    rule: str
    tests: list[ClaimTest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # descriptions and caveats
    tested: bool = True  # False: the arms were not run (verdict NOT_RUN)


def _done_arms(runs: pd.DataFrame) -> set[str]:
    return set(completed(runs)["arm"])


def _not_run(number: int, experiment: str, needs: Sequence[str], why: str = "") -> ClaimRow:
    text = why or f"needs the arms {', '.join(needs)}"
    return ClaimRow(number, CLAIMS[number], experiment, NOT_RUN, RULES[number],
                    notes=[f"Not tested in this study: {text}."], tested=False)


def _test(runs: pd.DataFrame, docs: pd.DataFrame, a: str, b: str, gaps: pd.DataFrame | None,
          family: bool = True) -> ClaimTest:
    r = C.compare_arms(runs, docs, a, b, gaps=gaps)
    return ClaimTest(f"{a} − {b}", r["diff"], r["diff_lo"], r["diff_hi"], r["tost_lo"],
                     r["tost_hi"], r["p"], in_family=family, method=str(r.get("method", "")),
                     note=str(r.get("note") or ""), df=float(r.get("df", math.nan)))


def _finite(*xs: float) -> bool:
    return all(x is not None and np.isfinite(x) for x in xs)


def directional_p(t: ClaimTest, threshold: float, contradicted_below: bool
                  ) -> dict[str, float]:
    """One-sided p-values of the two shifted nulls around ``threshold`` (t distribution
    with the interval's df and the standard error implied by its 95% half-width).

    contradicted_below (claims 1, 5; threshold −m): "contradicts" tests H1: Δ < −m (a gain
    beyond the margin), "supports" tests H1: Δ > −m. Otherwise (claim 4; threshold +m):
    "supports" tests H1: Δ > +m, "contradicts" H1: Δ < +m.
    """
    if not _finite(t.estimate, t.hi, t.df) or t.hi <= t.estimate:
        return {}
    from scipy import stats as st

    se = (t.hi - t.estimate) / float(st.t.ppf(0.975, t.df))
    z = (t.estimate - threshold) / se
    below, above = float(st.t.cdf(z, t.df)), float(st.t.sf(z, t.df))
    if contradicted_below:
        return {"contradicts": below, "supports": above}
    return {"supports": above, "contradicts": below}


def _side_verdict(t: ClaimTest) -> str:
    ps = t.p_side_holm or t.p_side
    if ps.get("contradicts", 1.0) < ALPHA:
        return CONTRADICTED
    if ps.get("supports", 1.0) < ALPHA:
        return SUPPORTED
    return UNDECIDED


def no_gain_verdict(t: ClaimTest, margin: float) -> str:
    """Claims 1 and 5 (see ``RULES``): contradicted when "Δ ≥ −m" is rejected (a gain beyond
    the margin), supported when "Δ ≤ −m" is rejected; Holm-adjusted when in the family."""
    if not t.p_side:
        t.p_side = directional_p(t, -margin, contradicted_below=True)
    return _side_verdict(t)


def relearn_verdict(t: ClaimTest, margin: float) -> str:
    """Claim 4 (see ``RULES``): Δ = frozen − trained; supported when "Δ ≤ m" is rejected
    (freezing costs more than m), contradicted when "Δ ≥ m" is rejected."""
    if not t.p_side:
        t.p_side = directional_p(t, margin, contradicted_below=False)
    return _side_verdict(t)


def dilution_verdict(t: ClaimTest, margin: float, spelled_rate: float) -> str:
    """Claim 3 (see ``RULES``): t is D = gain(vector rows) − gain(fallback rows)."""
    if _finite(t.hi) and t.hi < -margin and _finite(spelled_rate) and spelled_rate > 0:
        return SUPPORTED
    if (_finite(t.lo) and t.lo > 0) or (_finite(t.tost_lo, t.tost_hi)
                                        and -margin < t.tost_lo and t.tost_hi < margin):
        return CONTRADICTED
    return UNDECIDED


def combine(verdicts: Sequence[str]) -> str:
    """One claim's verdict from its tests': contradicted if any is, supported if all are."""
    if not verdicts:
        return UNDECIDED
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return SUPPORTED if all(v == SUPPORTED for v in verdicts) else UNDECIDED


def _meaning_note(runs: pd.DataFrame, docs: pd.DataFrame, arm: str, source: str,
                  gaps: pd.DataFrame | None, tests: list[ClaimTest]) -> str:
    """Whether ``arm``'s gain is attributed to meaning: below both controls of its source."""
    tok = arm.split("+")[0]
    controls = [f"{tok}+shuffled-{source}", f"{tok}+matched_random-{source}"]
    present = _done_arms(runs)
    missing = [c for c in controls if c not in present]
    below = []
    for c in controls:
        if c in missing:
            continue  # the controls that ran are still shown
        t = _test(runs, docs, arm, c, gaps, family=False)
        t.label += " (control)"
        tests.append(t)
        below.append(_finite(t.hi) and t.hi < 0)
    if missing:
        return (f"{arm}: its gain is not attributed to meaning: the control"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"{'were' if len(missing) > 1 else 'was'} not run.")
    main = next((t for t in tests if t.in_family and t.label.startswith(f"{arm} − ")), None)
    gain = main is not None and _finite(main.hi) and main.hi < 0
    if not gain:
        return f"{arm}: no significant gain over scratch, so nothing to attribute to meaning."
    if all(below):
        return f"{arm}: below both controls, so its gain is attributed to meaning."
    return (f"{arm}: not below both controls (same scale and spectrum, no meaning), so its "
            "gain is not attributed to meaning.")


def _init_claim(number: int, source: str, runs: pd.DataFrame, docs: pd.DataFrame,
                gaps: pd.DataFrame | None) -> ClaimRow:
    present = _done_arms(runs)
    pairs = [(f"{t}+{source}", f"{t}+scratch") for t in ("word", "bpe")
             if f"{t}+{source}" in present and f"{t}+scratch" in present]
    experiment = (f"{source} init vs scratch at the same tokenizer, held-out bpb; controls "
                  f"shuffled-{source} and matched_random-{source}")
    if not pairs:
        return _not_run(number, experiment, [f"word+{source}", "word+scratch"])
    row = ClaimRow(number, CLAIMS[number], experiment, UNDECIDED, RULES[number])
    for a, b in pairs:
        row.tests.append(_test(runs, docs, a, b, gaps))
    for a, _ in pairs:
        row.notes.append(_meaning_note(runs, docs, a, source, gaps, row.tests))
    return row


def _mean_col(runs: pd.DataFrame, arm: str, col: str) -> float:
    done = completed(runs)
    v = numeric_col(done[done["arm"] == arm], col).dropna()
    return float(v.mean()) if len(v) else math.nan


def _first_arm(runs: pd.DataFrame, vocab: str) -> str | None:
    done = completed(runs)
    prefer = [f"{vocab}+scratch"] + sorted(a for a in set(done["arm"]) if a.startswith(f"{vocab}+"))
    return next((a for a in prefer if a in set(done["arm"])), None)


def param_ratio(word_vocab: int = GPT2_WORD_VOCAB, bpe_vocab: int = GPT2_BPE_VOCAB,
                model: str = "gpt2_small") -> dict[bool, dict[str, float]]:
    """Per tied (True/False): totals and vocabulary shares of the word and BPE models at
    ``model`` shape, and the ratio of their totals (``embinit.params.param_breakdown``)."""
    from embinit.params import param_breakdown  # no torch: the closed-form counts

    out: dict[bool, dict[str, float]] = {}
    for tied in (True, False):
        cfg = dataclasses.replace(model_shape(model), tie_embeddings=tied)
        w, b = param_breakdown(cfg, word_vocab), param_breakdown(cfg, bpe_vocab)
        out[tied] = {"word": w["total"], "bpe": b["total"], "ratio": w["total"] / b["total"],
                     "word_share": (w["embedding"] + w["output_head"]) / w["total"],
                     "bpe_share": (b["embedding"] + b["output_head"]) / b["total"]}
    return out


def _study_param_ratio(runs: pd.DataFrame) -> dict[bool, dict[str, float]] | None:
    """The same at this study's shape and vocabularies (from a word and a BPE record)."""
    from embinit.config import ModelConfig
    from embinit.params import param_breakdown

    w_arm, b_arm = _first_arm(runs, "word"), _first_arm(runs, "bpe")
    if w_arm is None or b_arm is None:
        return None
    done = completed(runs)
    row = done[done["arm"] == w_arm].iloc[0]
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    shape = {k.removeprefix("model_config_"): row[k] for k in done.columns
             if k.startswith("model_config_") and k.removeprefix("model_config_") in names
             and not pd.isna(row[k])}
    vw, vb = _mean_col(runs, w_arm, "vocab_size"), _mean_col(runs, b_arm, "vocab_size")
    if not _finite(vw, vb) or not {"n_layer", "n_head", "d_model", "block_size"} <= set(shape):
        return None
    try:
        base = ModelConfig(**{k: (int(v) if k in ("n_layer", "n_head", "d_model", "block_size")
                                  else v) for k, v in shape.items()})
    except (TypeError, ValueError):
        return None
    out: dict[bool, dict[str, float]] = {}
    for tied in (True, False):
        cfg = dataclasses.replace(base, tie_embeddings=tied)
        w, b = param_breakdown(cfg, int(vw)), param_breakdown(cfg, int(vb))
        out[tied] = {"word": w["total"], "bpe": b["total"], "ratio": w["total"] / b["total"],
                     "word_share": (w["embedding"] + w["output_head"]) / w["total"],
                     "bpe_share": (b["embedding"] + b["output_head"]) / b["total"],
                     "word_vocab": vw, "bpe_vocab": vb}
    return out


def _size_claim(runs: pd.DataFrame) -> ClaimRow:
    g = param_ratio()
    row = ClaimRow(2, CLAIMS[2], "parameter counts, word vs BPE vocabulary, tied and untied, "
                   "at GPT-2 small and at this study's shape", UNDECIDED, RULES[2])
    for tied in (True, False):
        r = g[tied]
        row.tests.append(ClaimTest(
            f"GPT-2 small, {'tied' if tied else 'untied'}: word {r['word'] / 1e6:.1f}M / BPE "
            f"{r['bpe'] / 1e6:.1f}M (vocabulary share {r['word_share']:.0%} vs "
            f"{r['bpe_share']:.0%})", r["ratio"], unit="×", method="exact count"))
    row.verdict = SUPPORTED if g[True]["ratio"] >= SIZE_RATIO else CONTRADICTED
    own = _study_param_ratio(runs)
    if own is not None:
        for tied in (True, False):
            r = own[tied]
            row.tests.append(ClaimTest(
                f"this study ({int(r['word_vocab']):,} words vs {int(r['bpe_vocab']):,} BPE), "
                f"{'tied' if tied else 'untied'}: word {r['word'] / 1e6:.2f}M / BPE "
                f"{r['bpe'] / 1e6:.2f}M (vocabulary share {r['word_share']:.0%} vs "
                f"{r['bpe_share']:.0%})", r["ratio"], unit="×", method="exact count"))
    else:
        row.notes.append("This study's own ratio needs a word and a BPE arm with their model "
                         "shape recorded.")
    return row


def _class_bpb(done: pd.DataFrame, cls: str) -> pd.Series:
    """Per seed, bpb on the targets of one row class, val and test pooled."""
    nats = sum(numeric_col(done, f"{s}_by_row_class_{cls}_nats") for s in ("val", "test"))
    nbytes = sum(numeric_col(done, f"{s}_by_row_class_{cls}_bytes") for s in ("val", "test"))
    fig = nats / (math.log(2) * nbytes.where(nbytes > 0))
    return pd.Series(fig.to_numpy(), index=done["seed"].to_numpy()).dropna()


def _interval_test(label: str, values: np.ndarray, confidence: float = 0.95) -> ClaimTest:
    m, lo, hi = mean_ci(values, confidence)
    _, tlo, thi = mean_ci(values, TOST_CONFIDENCE)
    return ClaimTest(label, m, lo, hi, tlo, thi, method=f"t over {len(values)} seeds")


def _oov_claim(runs: pd.DataFrame, margin: float) -> ClaimRow:
    a, b = "word+word2vec", "word+scratch"
    experiment = ("the word arm's spelled-word (OOV) rate, and the word2vec gain in bpb on "
                  "targets with a vector row vs targets spelled in byte (fallback) rows")
    present = _done_arms(runs)
    if not {a, b} <= present:
        return _not_run(3, experiment, [a, b])
    done = completed(runs)
    rate = _mean_col(runs, a, "oov_val_spelled_word_rate")
    share = _mean_col(runs, a, "oov_val_spelled_byte_share")
    bpe = _first_arm(runs, "bpe")
    row = ClaimRow(3, CLAIMS[3], experiment, UNDECIDED, RULES[3])
    if _finite(rate):
        row.notes.append(f"{a} spells {rate:.1%} of the validation words in byte tokens "
                         + (f"({share:.1%} of its bytes)" if _finite(share) else "")
                         + (f"; {bpe} spells none (byte-level BPE has no OOV)" if bpe else "")
                         + ".")
    va, vb = (_class_bpb(done[done["arm"] == x], "vector_rows") for x in (a, b))
    fa, fb = (_class_bpb(done[done["arm"] == x], "fallback_rows") for x in (a, b))
    seeds = sorted(set(va.index) & set(vb.index) & set(fa.index) & set(fb.index))
    if len(seeds) < 2:
        row.notes.append("Not decided: the gain per row class needs `by_row_class` in the "
                         f"records of {a} and {b} on at least two common seeds"
                         f" (found {len(seeds)}).")
        return row
    g_vec = (va.loc[seeds] - vb.loc[seeds]).to_numpy()
    g_fb = (fa.loc[seeds] - fb.loc[seeds]).to_numpy()
    row.tests.append(_interval_test("gain on vector-row targets", g_vec))
    row.tests.append(_interval_test("gain on fallback-row targets", g_fb))
    d = _interval_test("D = vector-row gain − fallback-row gain", g_vec - g_fb)
    row.tests.append(d)
    row.verdict = dilution_verdict(d, margin, rate)
    return row


def _relearn_claim(runs: pd.DataFrame, docs: pd.DataFrame, gaps: pd.DataFrame | None
                   ) -> ClaimRow:
    # Untied: freezing a tied embedding freezes the output layer too, which costs whatever
    # the vectors carry. Only the untied pair isolates the input vectors.
    present = _done_arms(runs)
    a, b = "word+word2vec-frozen+untied", "word+word2vec+untied"
    tied = not {a, b} <= present and {"word+word2vec-frozen", "word+word2vec"} <= present
    if tied:
        a, b = "word+word2vec-frozen", "word+word2vec"
    experiment = ("the Word2Vec input embedding frozen for the whole run vs trained, both "
                  "with an untied output layer, held-out bpb")
    row = (ClaimRow(4, CLAIMS[4], experiment, UNDECIDED, RULES[4]) if {a, b} <= present
           else _not_run(4, experiment, [a, b]))
    if row.tested:
        row.tests.append(_test(runs, docs, a, b, gaps))
    if tied:
        row.notes.append("Tied embeddings: freezing the input rows froze the output layer "
                         "too, so this difference overstates what re-learning the input "
                         "vectors is worth (run the untied pair).")
    b = "word+word2vec"
    if b in present:
        drift = [(k, _mean_col(runs, b, f"diagnostics_drift_{k}")) for k in ("covered", "fallback")]
        parts = [f"{k} rows {v:.2f}" for k, v in drift if _finite(v)]
        base = _mean_col(runs, "word+scratch", "diagnostics_drift_fallback") \
            if "word+scratch" in present else math.nan
        if parts:
            row.notes.append(f"{b}: mean cosine between each row at init and at the end: "
                             + ", ".join(parts) + " (1 = unchanged"
                             + (f"; word+scratch's rows: {base:.2f}" if _finite(base) else "")
                             + ").")
        sims = []
        for key, name in (("wordsim353", "WordSim353"), ("simlex999", "SimLex-999")):
            i = _mean_col(runs, b, f"diagnostics_{key}_init")
            f = _mean_col(runs, b, f"diagnostics_{key}_final")
            if _finite(i, f):
                sims.append(f"{name} ρ {i:.2f} → {f:.2f}")
        if sims:
            row.notes.append(f"{b}, init → end: " + ", ".join(sims) + ".")
    return row


def _datasize_claim(runs: pd.DataFrame, docs: pd.DataFrame, margin: float,
                    gaps: pd.DataFrame | None) -> ClaimRow:
    experiment = ("the word2vec gain at each fraction of the train split run (e.g. study "
                  "`datasize`: 10%, 30%, 100%), log-linear in training bytes, extrapolated")
    gains = gain_by_fraction(runs, docs, gaps=gaps)
    word = gains[gains["tokenizer"] == "word"]
    if len(word) < 2:
        return _not_run(6, experiment, ["word+word2vec+data0.1", "word+scratch+data0.1",
                                        "word+word2vec", "word+scratch"])
    row = ClaimRow(6, CLAIMS[6], experiment, UNDECIDED, RULES[6])
    for r in word.to_dict("records"):
        row.tests.append(ClaimTest(
            f"gain at {r['fraction']:.0%} of the train split ({r['train_bytes'] / 1e6:.2f} MB)",
            r["gain"], r["lo"], r["hi"], r["tost_lo"], r["tost_hi"], r["p"],
            method=str(r["method"])))
    trend = gain_trend(word)
    if trend is None:
        row.notes.append("No trend fitted: the fractions need recorded training bytes and "
                         "intervals.")
        return row
    z = 1.959963984540054
    slope_test = ClaimTest("slope: bpb per e-fold of training bytes", trend.slope,
                           trend.slope - z * trend.slope_se, trend.slope + z * trend.slope_se,
                           method=f"weighted fit of {trend.n} points"
                           if trend.weighted else f"unweighted fit of {trend.n} points")
    row.tests.append(slope_test)
    largest = float(word["train_bytes"].max())
    ext = trend_summary(trend, largest)
    for f in (10.0, 100.0):
        g, lo, hi = ext[f"x{f:g}"]
        row.tests.append(ClaimTest(f"extrapolation: gain at {f:g}× the data "
                                   f"({largest * f / 1e6:,.0f} MB)", g, lo, hi,
                                   method="extrapolation of the fit"))
    cross = ext["zero_crossing"]
    row.notes.append(
        "Extrapolation, not measurement: the fit is a straight line in log bytes through "
        f"{trend.n} sizes of a small model"
        + (f"; it reaches zero gain at about {cross / 1e6:,.1f} MB of training text, and "
           "past that point the line's change of sign is an artefact of its form, not a "
           "prediction that the init hurts" if _finite(cross)
           else "; it does not reach zero gain ahead") + ".")
    if trend.n < 3:
        row.notes.append(f"{trend.n} data sizes: a straight line passes through them exactly, "
                         "so the slope's interval rests on the points' own intervals alone "
                         "(no check of the line's fit).")
    return row


def main_fraction(runs: pd.DataFrame) -> float:
    """The study's main data regime: the largest train fraction among its completed arms."""
    arms = set(completed(runs)["arm"]) if len(runs) else set()
    return max((split_fraction(a)[1] for a in arms), default=1.0)


def at_main_regime(frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """`frame` with the arms of the main regime named by their base label.

    A study run wholly on part of the train split (e.g. claims: data.train_fraction=0.5)
    labels every arm `<arm>+data0.5`; its claims are about those arms, so they are read
    as `<arm>`. Arms at other fractions keep their suffix (the data-size claim reads them).
    """
    if fraction >= 1.0 or frame is None or "arm" not in frame or not len(frame):
        return frame
    out = frame.copy()
    base = out["arm"].map(split_fraction)
    main = base.map(lambda bf: bf[1] == fraction)
    out.loc[main, "arm"] = base[main].map(lambda bf: bf[0])
    return out


def scorecard(study: Study, margin: float | None = None) -> list[ClaimRow]:
    """The six claims' rows for a loaded study (pure; reads nothing)."""
    m = margin if margin is not None else (
        study.settings.equivalence_margin if study.settings is not None else 0.02)
    runs, docs, gaps = study.runs, study.docs, study.doc_gaps
    main = main_fraction(runs)
    mruns, mdocs, mgaps = (at_main_regime(f, main) for f in (runs, docs, gaps))
    rows = [
        _init_claim(1, "word2vec", mruns, mdocs, mgaps),
        _size_claim(mruns),
        _oov_claim(mruns, m),
        _relearn_claim(mruns, mdocs, mgaps),
        _init_claim(5, "contextual", mruns, mdocs, mgaps),
        _datasize_claim(runs, docs, m, gaps),
    ]
    if main < 1.0:
        for r in (rows[0], rows[2], rows[3], rows[4]):
            r.notes.append(f"Every arm here trains on {main:.0%} of the train split's documents "
                           f"(labels `+data{main:g}`).")
    # The family: both one-sided shifted nulls of every verdict-bearing difference (claims 1,
    # 4, 5), so a verdict either way is Holm-controlled; the p for Δ = 0 stays descriptive.
    family = [t for r in rows for t in r.tests if t.in_family]
    for r in rows:
        for t in r.tests:
            if t.in_family:
                t.p_side = directional_p(t, (m if r.number == 4 else -m),
                                         contradicted_below=r.number != 4)
    sides = [(t, k, p) for t in family for k, p in t.p_side.items() if _finite(p)]
    adjusted = holm(np.array([p for _, _, p in sides])) if sides else np.array([])
    for (t, k, _), p in zip(sides, adjusted, strict=True):
        t.p_side_holm[k] = float(p)
    for t in family:
        t.p_holm = min(t.p_side_holm.values()) if t.p_side_holm else math.nan
    for r in rows:
        if r.number in (1, 5) and r.tested:
            for t in r.tests:
                if t.in_family:
                    t.verdict = no_gain_verdict(t, m)
            r.verdict = combine([t.verdict for t in r.tests if t.in_family])
        elif r.number == 4 and r.tested:
            r.tests[0].verdict = r.verdict = relearn_verdict(r.tests[0], m)
    return rows


def has_claim_arms(rows: Sequence[ClaimRow], runs: pd.DataFrame) -> bool:
    """A study tests some claim: a bpb claim's arms ran, or it has a word and a BPE arm."""
    if any(r.tested and r.number != 2 for r in rows):
        return True
    return _first_arm(runs, "word") is not None and _first_arm(runs, "bpe") is not None


SCORECARD_COLUMNS = ["claim", "statement", "verdict", "test", "estimate", "lo", "hi", "tost_lo",
                     "tost_hi", "p", "p_holm", "unit", "method", "test_verdict", "note"]


def scorecard_frame(rows: Sequence[ClaimRow]) -> pd.DataFrame:
    """One row per (claim, measured number): the CSV form of the scorecard."""
    out: list[Mapping[str, Any]] = []
    for r in rows:
        base = {"claim": r.number, "statement": r.claim, "verdict": r.verdict}
        if not r.tests:
            out.append({**base, "test": "", "note": " ".join(r.notes)})
        for t in r.tests:
            out.append({**base, "test": t.label, "estimate": t.estimate, "lo": t.lo, "hi": t.hi,
                        "tost_lo": t.tost_lo, "tost_hi": t.tost_hi, "p": t.p,
                        "p_holm": t.p_holm, "unit": t.unit, "method": t.method,
                        "test_verdict": t.verdict, "note": t.note})
    return pd.DataFrame(out, columns=SCORECARD_COLUMNS)


__all__ = [
    "ALPHA",
    "CLAIMS",
    "CONTRADICTED",
    "GPT2_BPE_VOCAB",
    "GPT2_WORD_VOCAB",
    "HOLM_FAMILY",
    "NOT_RUN",
    "RULES",
    "SCORECARD_COLUMNS",
    "SIZE_RATIO",
    "SUPPORTED",
    "UNDECIDED",
    "ClaimRow",
    "ClaimTest",
    "combine",
    "dilution_verdict",
    "has_claim_arms",
    "no_gain_verdict",
    "param_ratio",
    "relearn_verdict",
    "scorecard",
    "scorecard_frame",
]
