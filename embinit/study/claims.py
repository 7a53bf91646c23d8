"""The seed's claims, one by one, judged from the run records: the claims scorecard.

Each claim gets one ``ClaimRow``: the claim in a sentence, the experiment that tests it,
the measured numbers (``ClaimTest``: estimate and 95% interval each), a verdict
(``SUPPORTED``, ``CONTRADICTED`` or ``UNDECIDED``) and the decision rule that produced it,
stated in ``RULES`` and printed in the report. A claim whose arms were not run gets a row
that names the arms that would test it. Differences in bpb are arm minus comparison over
the held-out documents (``compare.compare_arms``: document bootstrap + seed variance, or
Student t over seeds for records without per-document losses); the differences a verdict
rests on are Holm-adjusted together, each counted once (``HOLM_FAMILY``, ``holm_family``).
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
from embinit.study.stats import TOST_CONFIDENCE, Interval, contrast_interval, holm, mean_ci

SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "not decided at this scale"
NOT_RUN = "not tested"  # the arms that test the claim are not in this study
ALPHA = 0.05
SIZE_RATIO = 1.2  # claim 2: "much larger" means at least this many times the parameters
GPT2_BPE_VOCAB = 50_257
GPT2_WORD_VOCAB = 100_000
HOLM_FAMILY = ("the scorecard's bpb differences that carry a verdict (claims 1, 4 and 5), "
               "each counted once, with the smaller of its two one-sided p-values")
# Claim 4: the mean cosine between each covered row at init and at the end (drift_covered)
# below which the trained arm re-learned its vectors (more new direction than old), and at
# or above which it kept them (refined, not re-learned).
DRIFT_RELEARNED = 0.5
DRIFT_KEPT = 0.8

RULES: dict[int, str] = {
    1: "Per tokenizer, Δ = <tok>+word2vec − <tok>+scratch (bpb), margin m = the study's "
       "equivalence margin. Contradicted if the one-sided test of \"Δ ≥ −m\" rejects it "
       "(a gain larger than m), supported if the one-sided test of \"Δ ≤ −m\" rejects it (no "
       "gain of m or more; this includes equivalence within ±m and a harmful init); otherwise "
       "not decided. At most one of a difference's two nulls is true, so each difference "
       "enters the Holm family once, with the smaller of its two one-sided p-values (t with "
       "the interval's df; its side says which verdict it can give): Holm over the "
       "verdict-bearing differences of claims 1, 4 and 5, and that side's null is rejected "
       "when its adjusted p < 0.05. The claim is contradicted if any tokenizer's test is, "
       "supported if every one is. Beside the margin, the gain is weighed in scratch compute "
       "from each seed's training curves (periodic validation bpb on the evaluation subset): "
       "the multiple of its steps at which <tok>+scratch reaches the init arm's final value "
       "(more than 1×, beyond its whole run, where it never does), and the fraction of its "
       "own steps at which the init arm reaches scratch's final value; they describe, the "
       "verdict is the margin's. A gain is attributed to meaning only when the arm is also "
       "below both controls of the same source (shuffled and matched_random: 95% CI of arm − "
       "control wholly below 0).",
    2: f"Parameters of the word model / the BPE model at GPT-2 small shape (V = "
       f"{GPT2_WORD_VOCAB:,} words vs {GPT2_BPE_VOCAB:,} BPE tokens, tied head). Supported "
       f"if the ratio is ≥ {SIZE_RATIO:g}×, contradicted if below (exact counts, no "
       "interval; untying the head only widens the gap). The study's own arms are shown too.",
    3: "D = gain on covered-row targets − gain on fallback-row targets, gain = "
       "word+word2vec − word+scratch in bpb (model nats) per class of the predicted token's "
       "row, val and test pooled. Covered rows received a vector; word+scratch records the "
       "same partition (the rows Word2Vec trained here would cover at its init settings: a "
       "token with at least init.min_count training occurrences, or its lowercase form), and "
       "the two arms' targets per class must agree document by document, else not decided. "
       "Fallback rows are the byte rows that spell an OOV word; in-vocabulary rows without a "
       "vector (random rows for known words) are shown apart, not in D. The interval is "
       "documents × seeds: the contrast of the four class figures over the same held-out "
       "documents (one bootstrap draw of the documents for all, plus the per-seed variance, "
       "t with Welch–Satterthwaite df, the documents counted by their effective number). "
       "Records without per-document row classes fall back to Student t over seeds "
       "(labelled so); records older than the covered/uncovered split use the rows eligible "
       "for a vector, and only where Word2Vec covered every eligible row. Supported if D's "
       "95% CI lies wholly below −m (the gain is larger by more than m where the token has a "
       "vector: byte-spelled OOV words dilute it) and the word arm spells some words in "
       "bytes; contradicted if D's 95% CI lies wholly above 0 or its 90% CI inside ±m; "
       "otherwise not decided. Only the word half of the claim is tested: that sub-words "
       "handle OOV gracefully is not (BPE has no OOV to compare).",
    4: "Δ = word+word2vec-frozen+untied − word+word2vec+untied (bpb): the input vectors "
       "frozen or trained, the output layer untied and trained in both (a tied frozen "
       "embedding would freeze the output layer too), both arms' gradients clipped over the "
       "same parameters (the frozen rows' gradient counts in the norm and is never applied). "
       "\"Re-learned\" needs both (i) keeping the vectors costs more than m: the one-sided "
       "test of \"Δ ≤ +m\" rejects it (Holm as in claim 1), and (ii) the trained arm moves "
       "them away from their init: the mean cosine between each covered row at init and at "
       f"the end (its drift_covered) is below {DRIFT_RELEARNED:g} in every seed. Supported "
       "if both hold; contradicted if the test of \"Δ ≥ +m\" rejects it (the vectors serve "
       "as they are), or if (i) holds while the covered rows keep a mean cosine of at least "
       f"{DRIFT_KEPT:g} to their init in every seed (the model refines the vectors, it does "
       "not re-learn them); otherwise not decided, as when the records carry no drift. "
       "Similarity scores and the scratch arm's drift describe.",
    5: "As claim 1 with the contextual (MiniLM, the offline 'Ada' stand-in) init: Δ = "
       "<tok>+contextual − <tok>+scratch. Supported (unsuitable) when a gain of m or more is "
       "rejected, contradicted when a gain beyond m is established, tests, Holm and compute "
       "as in claim 1; controls as in claim 1.",
    6: "The word2vec gain (word+word2vec − word+scratch) at each train fraction, fitted "
       "log-linearly against training bytes (weighted by 1/se²). The slope's and the "
       "extrapolations' intervals use t at the Welch–Satterthwaite df of the points' own "
       "variance estimates (each gain's interval records its df), never normal quantiles "
       "(two points fix the line exactly); not drawn when a point's df is unknown. Always "
       "not decided at this scale: a model 100-1000x smaller on megabytes of text cannot "
       "decide a claim about ~100M parameters; the trend and its extrapolation are reported "
       "as evidence to weigh, and values beyond the largest training size are an "
       "extrapolation.",
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
    n_docs: int = 0  # held-out documents of a documents x seeds interval (0: seeds only)
    n_docs_eff: float = math.nan  # their effective number (stats.effective_docs)
    # One-sided p-values of the shifted nulls a verdict rests on: {"contradicts" |
    # "supports": p} (see `directional_p`), and after Holm the side of the smaller one
    # alone, the one hypothesis the difference brings to the family (see `holm_family`).
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
                     note=str(r.get("note") or ""), df=float(r.get("df", math.nan)),
                     n_docs=int(r.get("n_docs") or 0),
                     n_docs_eff=float(r.get("n_docs_eff", math.nan)))


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


def holm_family(tests: Sequence[ClaimTest]) -> None:
    """Holm over the verdict-bearing differences, each counted once.

    Of a difference's two one-sided shifted nulls at most one is true, so it brings one
    hypothesis to the family: the side with the smaller p (which verdict it could give).
    Holm runs over those k p-values; ``p_side_holm`` keeps the adjusted p of that side only
    (the other side is not tested), ``p_holm`` is it. A true null is rejected only when it
    is its pair's smaller p, so the union bound runs over at most k true nulls and the
    family-wise error stays at alpha. A test without one-sided p-values is left out.
    """
    chosen: list[tuple[ClaimTest, str, float]] = []
    for t in tests:
        sides = sorted((p, k) for k, p in t.p_side.items() if _finite(p))
        t.p_side_holm, t.p_holm = {}, math.nan
        if sides:
            p, k = sides[0]
            chosen.append((t, k, p))
    adjusted = holm(np.array([p for _, _, p in chosen])) if chosen else np.array([])
    for (t, k, _), p in zip(chosen, adjusted, strict=True):
        t.p_side_holm = {k: float(p)}
        t.p_holm = float(p)


def relearn_verdict(t: ClaimTest, margin: float, drift: Sequence[float] = ()) -> str:
    """Claim 4 (see ``RULES``): Δ = frozen − trained, ``drift`` the trained arm's
    drift_covered per seed (mean cosine of each covered row at init and at the end).

    Contradicted when "Δ ≥ m" is rejected (freezing costs less than m). When "Δ ≤ m" is
    rejected (freezing costs more than m): supported if every seed's drift is below
    ``DRIFT_RELEARNED`` (the vectors were moved away: re-learned), contradicted if every
    seed's is at least ``DRIFT_KEPT`` (kept and refined); otherwise, and without drift,
    not decided.
    """
    if not t.p_side:
        t.p_side = directional_p(t, margin, contradicted_below=False)
    side = _side_verdict(t)
    if side != SUPPORTED:
        return side
    d = [float(x) for x in drift if _finite(x)]
    if d and all(x < DRIFT_RELEARNED for x in d):
        return SUPPORTED
    if d and all(x >= DRIFT_KEPT for x in d):
        return CONTRADICTED
    return UNDECIDED


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


# ------------------------------------------------------------------------------ compute


def first_reach(steps: Sequence[float], values: Sequence[float], target: float) -> float:
    """The first step at which a curve reaches ``target`` or below, linearly interpolated
    between its evaluation points; NaN if it never does. ``steps`` ascending."""
    x, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if not len(x) or not _finite(target):
        return math.nan
    if y[0] <= target:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] <= target:
            return float(x[i - 1] + (y[i - 1] - target) / (y[i - 1] - y[i]) * (x[i] - x[i - 1]))
    return math.nan


def _val_curve(curves: pd.DataFrame, arm: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    c = curves[(curves["arm"] == arm) & (curves["seed"] == seed)
               & (curves["status"] == "completed")]
    c = c.dropna(subset=["val_bpb"]).sort_values("step")
    return c["step"].to_numpy(float), c["val_bpb"].to_numpy(float)


def compute_equivalent(curves: pd.DataFrame, arm: str, scratch: str) -> pd.DataFrame:
    """Per seed both arms completed: how much scratch compute ``arm``'s result is worth,
    from the periodic validation bpb of each run's curve (same tokenizer and model, so a
    step is the same compute in both).

    Columns seed, scratch_multiple (the scratch step at which scratch first reaches ``arm``'s
    final periodic val bpb, over scratch's last step; inf when it never does within its
    run: more than its whole run), arm_fraction (the step at which ``arm`` first reaches
    scratch's final value, over ``arm``'s last step; inf when never).
    """
    rows = []
    if curves is None or not len(curves):
        return pd.DataFrame(columns=["seed", "scratch_multiple", "arm_fraction"])
    seeds = sorted(set(curves.loc[curves["arm"] == arm, "seed"])
                   & set(curves.loc[curves["arm"] == scratch, "seed"]))
    for seed in seeds:
        (xa, ya), (xs, ys) = _val_curve(curves, arm, seed), _val_curve(curves, scratch, seed)
        if len(xa) < 2 or len(xs) < 2 or xa[-1] <= 0 or xs[-1] <= 0:
            continue
        reach_s, reach_a = first_reach(xs, ys, ya[-1]), first_reach(xa, ya, ys[-1])
        rows.append({"seed": int(seed),
                     "scratch_multiple": reach_s / xs[-1] if _finite(reach_s) else math.inf,
                     "arm_fraction": reach_a / xa[-1] if _finite(reach_a) else math.inf})
    return pd.DataFrame(rows, columns=["seed", "scratch_multiple", "arm_fraction"])


def _multiples(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}×" if np.isfinite(v) else "> 1×" for v in values)


def compute_note(curves: pd.DataFrame, arm: str, scratch: str) -> str | None:
    """The sentence for the scorecard: ``compute_equivalent`` in words (None without curves)."""
    eq = compute_equivalent(curves, arm, scratch)
    if not len(eq):
        return None
    seeds = ", ".join(str(s) for s in eq["seed"])
    ms, fs = list(eq["scratch_multiple"]), list(eq["arm_fraction"])
    if all(np.isinf(m) for m in ms):
        first = (f"{scratch} never reaches {arm}'s final val bpb within its run, so that "
                 "result is worth more than scratch's whole run (> 1× its steps; how much "
                 "more lies beyond its curve)")
    else:
        first = f"{scratch} reaches {arm}'s final val bpb at {_multiples(ms)} its steps"
    if all(np.isinf(f) for f in fs):
        second = f"{arm} never reaches {scratch}'s final val bpb within its run"
    else:
        second = f"{arm} reaches {scratch}'s final val bpb at {_multiples(fs)} its own steps"
    return (f"Compute (each seed's periodic val bpb on the evaluation subset; seeds {seeds}): "
            f"{first}; {second}.")


# ------------------------------------------------------------------------------ claims


def _init_claim(number: int, source: str, runs: pd.DataFrame, docs: pd.DataFrame,
                gaps: pd.DataFrame | None, curves: pd.DataFrame | None = None) -> ClaimRow:
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
    for a, b in pairs:
        note = compute_note(curves, a, b) if curves is not None else None
        if note:
            row.notes.append(note)
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


# Row classes of `by_row_class` (see embinit.record.SplitResult): rows that received a vector,
# in-vocabulary rows that did not, byte rows spelling an OOV word; records older than the
# covered/uncovered split have only ELIGIBLE (= covered + uncovered), the rows that could.
COVERED, UNCOVERED, FALLBACK, ELIGIBLE = ("covered_rows", "uncovered_rows", "fallback_rows",
                                         "vector_rows")
PARTITIONS_DIFFER = "the row partitions differ"
_HELD_OUT = ("val", "test")


def _class_sum(done: pd.DataFrame, cls: str, what: str) -> pd.Series:
    return sum(numeric_col(done, f"{s}_by_row_class_{cls}_{what}") for s in _HELD_OUT)


def _class_bpb(done: pd.DataFrame, cls: str) -> pd.Series:
    """Per seed, bpb (model nats) on the targets of one row class, val and test pooled."""
    nats, nbytes = _class_sum(done, cls, "nats"), _class_sum(done, cls, "bytes")
    fig = nats / (math.log(2) * nbytes.where(nbytes > 0))
    return pd.Series(fig.to_numpy(), index=done["seed"].to_numpy()).dropna()


def _class_tokens(done: pd.DataFrame, cls: str) -> pd.Series:
    """Per seed, the targets of one row class, val and test pooled."""
    return pd.Series(_class_sum(done, cls, "tokens").to_numpy(), index=done["seed"].to_numpy())


def _interval_test(label: str, values: np.ndarray, confidence: float = 0.95,
                   why: str = "") -> ClaimTest:
    m, lo, hi = mean_ci(values, confidence)
    _, tlo, thi = mean_ci(values, TOST_CONFIDENCE)
    method = f"t over {len(values)} seeds" + (f" ({why})" if why else "")
    return ClaimTest(label, m, lo, hi, tlo, thi, method=method,
                     df=len(values) - 1 if _finite(lo) else math.nan)


def _iv_test(label: str, iv: Interval) -> ClaimTest:
    return ClaimTest(label, iv.estimate, iv.lo, iv.hi, iv.tost_lo, iv.tost_hi, iv.p_value,
                     df=iv.df, n_docs=iv.n_docs, n_docs_eff=iv.n_docs_eff, method=C.COMPONENTS)


def _run_class_docs(summary: Mapping[str, Any] | None, classes: Sequence[str]
                    ) -> tuple[list[tuple[str, Any]], dict[str, dict[str, np.ndarray]]] | None:
    """One run's held-out documents (keys (split, id), or (split, position) without ids) and
    per class its per-document {"nats", "bytes", "tokens"}; None where the record has no
    per-document row classes (``doc_by_row_class``)."""
    keys: list[tuple[str, Any]] = []
    cols: dict[str, dict[str, list[float]]] = {c: {"nats": [], "bytes": [], "tokens": []}
                                               for c in classes}
    for split in _HELD_OUT:
        res = (summary or {}).get(split)
        per_doc = res.get("doc_by_row_class") if isinstance(res, Mapping) else None
        if not isinstance(per_doc, Mapping) or any(c not in per_doc for c in classes):
            return None
        n = len(per_doc[classes[0]].get("nats") or [])
        ids = res.get("doc_ids")
        keys += [(split, str(i)) for i in ids] if ids is not None and len(ids) == n else \
            [(split, j) for j in range(n)]
        for c in classes:
            for what in ("nats", "bytes", "tokens"):
                vals = per_doc[c].get(what)
                if vals is None or len(vals) != n:
                    return None
                cols[c][what] += [float(v) for v in vals]
    return keys, {c: {k: np.asarray(v) for k, v in d.items()} for c, d in cols.items()}


def _class_doc_cells(done: pd.DataFrame, summaries: Mapping[str, Mapping[str, Any]],
                     arms: Sequence[str], seeds: Sequence[int], classes: Sequence[str]
                     ) -> tuple[dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None, str]:
    """Per (arm, class), seeds x documents of model nats and bytes, every run's documents in
    the first run's order; (None, why) when some record lacks per-document row classes,
    the runs were scored on different documents, or the arms' classes hold different
    targets in a document (their row partitions differ)."""
    aligned: dict[tuple[str, int], dict[str, dict[str, np.ndarray]]] = {}
    order: list[tuple[str, Any]] | None = None
    for arm in arms:
        for seed in seeds:
            rd = done.loc[(done["arm"] == arm) & (done["seed"] == seed), "run_dir"]
            got = _run_class_docs(summaries.get(str(rd.iloc[0])) if len(rd) else None, classes)
            if got is None:
                return None, "no per-document row classes in these records"
            keys, cols = got
            order = keys if order is None else order
            if len(keys) != len(order) or set(keys) != set(order):
                return None, f"{arm} seed {seed} was scored on other held-out documents"
            at = {k: i for i, k in enumerate(keys)}
            idx = np.array([at[k] for k in order], dtype=int)
            aligned[(arm, seed)] = {c: {w: v[idx] for w, v in cols[c].items()} for c in classes}
    for arm in arms[1:]:
        for seed in seeds:
            for c in classes:
                if not np.array_equal(aligned[(arm, seed)][c]["tokens"],
                                      aligned[(arms[0], seed)][c]["tokens"]):
                    return None, (f"{PARTITIONS_DIFFER}: {arm} and {arms[0]} put "
                                  f"different targets in {c} (seed {seed})")
    return {(arm, c): (np.vstack([aligned[(arm, s)][c]["nats"] for s in seeds]),
                       np.vstack([aligned[(arm, s)][c]["bytes"] for s in seeds]))
            for arm in arms for c in classes}, ""


def _oov_claim(runs: pd.DataFrame, margin: float,
               summaries: Mapping[str, Mapping[str, Any]] | None = None) -> ClaimRow:
    a, b = "word+word2vec", "word+scratch"
    experiment = ("the word arm's spelled-word (OOV) rate, and the word2vec gain in bpb on "
                  "targets whose row received a vector vs targets spelled in byte (fallback) "
                  "rows")
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
    pair = done[done["arm"].isin([a, b])]
    split_recorded = all(numeric_col(pair, f"{s}_by_row_class_{COVERED}_tokens").notna().all()
                         for s in _HELD_OUT)
    vec = COVERED if split_recorded else ELIGIBLE
    va, vb = (_class_bpb(done[done["arm"] == x], vec) for x in (a, b))
    fa, fb = (_class_bpb(done[done["arm"] == x], FALLBACK) for x in (a, b))
    seeds = sorted(set(va.index) & set(vb.index) & set(fa.index) & set(fb.index))
    if len(seeds) < 2:
        row.notes.append("Not decided: the gain per row class needs `by_row_class` in the "
                         f"records of {a} and {b} on at least two common seeds"
                         f" (found {len(seeds)}).")
        return row
    if not split_recorded:
        cov = numeric_col(done[done["arm"] == a], "oov_init_coverage_types").dropna()
        if len(cov) and (cov >= 1.0).all():
            row.notes.append("These records predate the covered/uncovered split of "
                             "`by_row_class`: its vector rows are the rows eligible for a "
                             f"vector, which here are the covered rows ({a} covered every "
                             "eligible row).")
        else:
            row.notes.append("Not decided: these records predate the covered/uncovered split "
                             "of `by_row_class`, and their vector rows (eligible for a vector) "
                             f"are not all covered ({a} covers "
                             + (f"{100 * cov.min():.6g}%" if len(cov) else "an unrecorded share")
                             + " of them), so the gain where a token has a vector is not "
                             "measured.")
            return row
    ta, tb = (_class_tokens(done[done["arm"] == x], vec) for x in (a, b))
    if not np.array_equal(ta.loc[seeds].to_numpy(), tb.loc[seeds].to_numpy()):
        row.notes.append(f"Not decided: {a} and {b} put different numbers of targets in "
                         f"{vec} ({int(ta.loc[seeds[0]])} vs {int(tb.loc[seeds[0]])} at seed "
                         f"{seeds[0]}): their rows are not split the same way, so the gain per "
                         "class would compare different targets.")
        return row
    what = "covered-row" if vec == COVERED else "vector-row"
    cells, why = (_class_doc_cells(done, summaries or {}, [a, b], seeds, [vec, FALLBACK, UNCOVERED])
                  if vec == COVERED else (None, "no per-document row classes in these records"))
    if why.startswith(PARTITIONS_DIFFER):
        row.notes.append(f"Not decided: {why}, so the gain per class would compare different "
                         "targets.")
        return row
    if cells is not None and all((cells[(x, c)][1].sum(axis=1) > 0).all()
                                 for x in (a, b) for c in (vec, FALLBACK)):
        def gain(c: str) -> Interval:
            return contrast_interval([cells[(a, c)][0], cells[(b, c)][0]],
                                     [cells[(a, c)][1], cells[(b, c)][1]], [1.0, -1.0],
                                     allow_empty=True)

        row.tests.append(_iv_test(f"gain on {what} targets", gain(vec)))
        row.tests.append(_iv_test("gain on fallback-row targets", gain(FALLBACK)))
        d = _iv_test(f"D = {what} gain − fallback-row gain", contrast_interval(
            [cells[(a, vec)][0], cells[(b, vec)][0], cells[(a, FALLBACK)][0],
             cells[(b, FALLBACK)][0]],
            [cells[(a, vec)][1], cells[(b, vec)][1], cells[(a, FALLBACK)][1],
             cells[(b, FALLBACK)][1]], [1.0, -1.0, -1.0, 1.0], allow_empty=True))
        row.tests.append(d)
        if all((cells[(x, UNCOVERED)][1].sum(axis=1) > 0).all() for x in (a, b)):
            row.tests.append(_iv_test("gain on uncovered in-vocabulary targets (random rows "
                                      "for known words; not in D)", gain(UNCOVERED)))
    else:
        if cells is not None:
            why = "a row class without targets in some seed's documents"
        g_vec = (va.loc[seeds] - vb.loc[seeds]).to_numpy()
        g_fb = (fa.loc[seeds] - fb.loc[seeds]).to_numpy()
        row.tests.append(_interval_test(f"gain on {what} targets", g_vec, why=why))
        row.tests.append(_interval_test("gain on fallback-row targets", g_fb, why=why))
        d = _interval_test(f"D = {what} gain − fallback-row gain", g_vec - g_fb, why=why)
        row.tests.append(d)
        if vec == COVERED:
            ua, ub = (_class_bpb(done[done["arm"] == x], UNCOVERED) for x in (a, b))
            both = [s for s in seeds if s in ua.index and s in ub.index]
            if len(both) >= 2:
                row.tests.append(_interval_test(
                    "gain on uncovered in-vocabulary targets (random rows for known words; "
                    "not in D)", (ua.loc[both] - ub.loc[both]).to_numpy(), why=why))
        row.notes.append("Seeds only: this interval has no document component (" + why
                         + "), so it is narrower than the others'.")
    row.verdict = dilution_verdict(d, margin, rate)
    return row


def _drift(runs: pd.DataFrame, arm: str, key: str) -> list[float]:
    """Per seed, ``diagnostics_drift_<key>`` of an arm's completed runs (finite values)."""
    done = completed(runs)
    v = numeric_col(done[done["arm"] == arm], f"diagnostics_drift_{key}").dropna()
    return [float(x) for x in v]


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
                  "with an untied output layer, held-out bpb; how far the trained arm moves "
                  "its vectors from their init")
    row = (ClaimRow(4, CLAIMS[4], experiment, UNDECIDED, RULES[4]) if {a, b} <= present
           else _not_run(4, experiment, [a, b]))
    if row.tested:
        row.tests.append(_test(runs, docs, a, b, gaps))
    if tied:
        row.notes.append("Tied embeddings: freezing the input rows froze the output layer "
                         "too, so this difference overstates what re-learning the input "
                         "vectors is worth (run the untied pair).")
    # The trained arm of the pair: its drift is (ii) of the rule.
    if b in present:
        drift = _drift(runs, b, "covered")
        scratch = b.replace("word2vec", "scratch", 1)
        base = _drift(runs, scratch if scratch in present else "word+scratch", "fallback")
        if drift:
            row.notes.append(
                f"{b}: mean cosine between each covered row at init and at the end, per seed: "
                + ", ".join(f"{v:.2f}" for v in drift) + " (1 = unchanged; re-learned below "
                f"{DRIFT_RELEARNED:g}, kept at {DRIFT_KEPT:g} or above"
                + (f"; {scratch if scratch in present else 'word+scratch'}'s rows, learned from "
                   f"a random init: {np.mean(base):.2f}" if base else "") + ").")
        elif row.tested:
            row.notes.append(f"{b}'s records carry no drift diagnostics, so whether it "
                             "re-learned its vectors is not measured.")
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
            method=str(r["method"]), df=float(r.get("df", math.nan))))
    trend = gain_trend(word)
    if trend is None:
        row.notes.append("No trend fitted: the fractions need recorded training bytes and "
                         "intervals.")
        return row
    s_lo, s_hi = trend.slope_interval()
    fit = f"{'weighted' if trend.weighted else 'unweighted'} fit of {trend.n} points"
    row.tests.append(ClaimTest("slope: bpb per e-fold of training bytes", trend.slope, s_lo,
                               s_hi, df=trend.slope_df,
                               method=f"{fit}, t at {_df_text(trend.slope_df)}"))
    largest = float(word["train_bytes"].max())
    ext = trend_summary(trend, largest)
    for f in (10.0, 100.0):
        g, lo, hi, df = ext[f"x{f:g}"]
        row.tests.append(ClaimTest(f"extrapolation: gain at {f:g}× the data "
                                   f"({largest * f / 1e6:,.0f} MB)", g, lo, hi, df=df,
                                   method=f"extrapolation of the fit, t at {_df_text(df)}"))
    if not _finite(s_lo):
        row.notes.append("No interval for the slope or the extrapolations: a point's gain has "
                         "no df for its variance, and a normal quantile would claim that "
                         "variance is known.")
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
                         "(no check of the line's fit), with t at the Welch–Satterthwaite df "
                         "of their variance estimates.")
    return row


def _df_text(df: float) -> str:
    if not _finite(df):
        return "an unknown df (not drawn)"
    return f"{df:.0f} df" if float(df).is_integer() else f"{df:.1f} df"


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
    mruns, mdocs, mgaps, mcurves = (at_main_regime(f, main)
                                    for f in (runs, docs, gaps, study.curves))
    rows = [
        _init_claim(1, "word2vec", mruns, mdocs, mgaps, mcurves),
        _size_claim(mruns),
        _oov_claim(mruns, m, study.summaries),
        _relearn_claim(mruns, mdocs, mgaps),
        _init_claim(5, "contextual", mruns, mdocs, mgaps, mcurves),
        _datasize_claim(runs, docs, m, gaps),
    ]
    if main < 1.0:
        for r in (rows[0], rows[2], rows[3], rows[4]):
            r.notes.append(f"Every arm here trains on {main:.0%} of the train split's documents "
                           f"(labels `+data{main:g}`).")
    # The family: every verdict-bearing difference (claims 1, 4, 5) once, with the smaller of
    # its two one-sided shifted-null p's (`holm_family`); the p for Δ = 0 stays descriptive.
    family = [t for r in rows for t in r.tests if t.in_family]
    for r in rows:
        for t in r.tests:
            if t.in_family:
                t.p_side = directional_p(t, (m if r.number == 4 else -m),
                                         contradicted_below=r.number != 4)
    holm_family(family)
    for r in rows:
        if r.number in (1, 5) and r.tested:
            for t in r.tests:
                if t.in_family:
                    t.verdict = no_gain_verdict(t, m)
            r.verdict = combine([t.verdict for t in r.tests if t.in_family])
        elif r.number == 4 and r.tested:
            trained = r.tests[0].label.split(" − ")[-1]
            r.tests[0].verdict = r.verdict = relearn_verdict(
                r.tests[0], m, _drift(mruns, trained, "covered"))
    return rows


def has_claim_arms(rows: Sequence[ClaimRow], runs: pd.DataFrame) -> bool:
    """A study tests some claim: a bpb claim's arms ran, or it has a word and a BPE arm."""
    if any(r.tested and r.number != 2 for r in rows):
        return True
    return _first_arm(runs, "word") is not None and _first_arm(runs, "bpe") is not None


SCORECARD_COLUMNS = ["claim", "statement", "verdict", "test", "estimate", "lo", "hi", "tost_lo",
                     "tost_hi", "p", "p_holm", "df", "n_docs", "n_docs_eff", "unit", "method",
                     "test_verdict", "note"]


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
                        "p_holm": t.p_holm, "df": t.df, "n_docs": t.n_docs,
                        "n_docs_eff": t.n_docs_eff, "unit": t.unit, "method": t.method,
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
    "compute_equivalent",
    "compute_note",
    "dilution_verdict",
    "first_reach",
    "has_claim_arms",
    "holm_family",
    "no_gain_verdict",
    "param_ratio",
    "relearn_verdict",
    "scorecard",
    "scorecard_frame",
]
