"""The report's top (claims scorecard, or a three-line summary), and the factorial,
diagnostics and data-size sections: tables from ``embinit.study.claims``,
``embinit.study.regimes`` and ``embinit.study.diagnostics`` to document blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from embinit.study import compare as C
from embinit.study.claims import HOLM_FAMILY, NOT_RUN, RULES, ClaimRow, ClaimTest
from embinit.study.diagnostics import GLOVE_NOTE
from embinit.study.regimes import Trend, trend_summary
from embinit.study.report.doc import (
    NA,
    Block,
    Bullets,
    Heading,
    Image,
    Para,
    Table,
    fmt_ci,
    fmt_df,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
    is_finite,
)

GLOVE_MARK = " ‡"
_METHODS = {C.COMPONENTS: "documents × seeds",
            C.SEED_T: "t over seeds (no per-document losses)"}


# ------------------------------------------------------------------------------ the top


def _test_text(t: ClaimTest) -> str:
    if t.unit == "×":
        return f"{t.label}: {fmt_num(t.estimate, 2)}×"
    est = fmt_ci(t.estimate, t.lo, t.hi, signed=True)
    p = ""
    if t.in_family and is_finite(t.p):
        p = f", shifted-null Holm {fmt_p(t.p_holm, labelled=True)}"
    elif is_finite(t.p):
        p = f", {fmt_p(t.p, labelled=True)}"
    how = f"; {_METHODS.get(t.method, t.method)}" if t.method else ""
    if t.method == C.COMPONENTS and t.n_docs:
        eff = f", {fmt_num(t.n_docs_eff, 1)} effective" if is_finite(t.n_docs_eff) else ""
        how = f"; documents × seeds ({t.n_docs} documents{eff})"
    tail = f" → {t.verdict}" if t.verdict and t.in_family else ""
    return f"{t.label}: {est} {t.unit}{p}{how}{tail}"


def scorecard_blocks(rows: Sequence[ClaimRow], margin: float) -> list[Block]:
    """The claims scorecard: one table row per claim, then the decision rules verbatim."""
    table = []
    for r in rows:
        tests = "; ".join(_test_text(t) for t in r.tests)
        measured = " ".join([tests + "." if tests else "", *r.notes]).strip() or NA
        table.append([str(r.number), r.claim, r.experiment, measured, r.verdict])
    return [
        Heading(2, "Claims scorecard"),
        Para(
            "Each claim of the seed, the experiment that tests it, what the run records "
            "measure (estimate [95% CI]; bpb differences are arm minus comparison over the "
            "held-out documents, negative favours the first arm) and the verdict its decision "
            "rule gives: supported, contradicted, or not decided at this scale; "
            f"'{NOT_RUN}' names the arms that would test it. Equivalence margin m = ±{margin:g} "
            f"bpb; p-values are Holm-adjusted over {HOLM_FAMILY}."
        ),
        Table(["#", "claim", "experiment", "measured [95% CI]", "verdict"], table,
              align="lllll"),
        Heading(3, "Decision rules"),
        Bullets([f"({n}) {rule}" for n, rule in RULES.items()]),
    ]


def summary_blocks(comp: pd.DataFrame, ref: str) -> list[Block]:
    """Three lines for a study that tests none of the seed's claims."""
    others = C.arm_rows(comp)
    others = others[others["arm"] != ref]
    lower = list(others.loc[others["outcome"] == C.LOWER, "arm"])
    higher = list(others.loc[others["outcome"] == C.HIGHER, "arm"])
    undecided = [a for a in others["arm"] if a not in lower and a not in higher]
    return [
        Heading(2, "Summary"),
        Bullets([
            f"Shown: {', '.join(lower) or 'no arm'} lower (better) and "
            f"{', '.join(higher) or 'no arm'} higher than {ref} on held-out bpb (headline "
            "below, Holm-adjusted).",
            f"Not shown: a difference for {', '.join(undecided) or 'no other arm'} "
            "(not significant, or no comparison).",
            "Not tested here: the seed's claims (no scorecard): they need the arms "
            "bpe/word × scratch/word2vec and their controls (`make sweep STUDY=claims`).",
        ]),
    ]


# ------------------------------------------------------------------------------ factorial


def factorial_blocks(effects: pd.DataFrame, confidence: float = 0.95) -> list[Block]:
    if effects.empty:
        return []
    ci = f"{confidence:.0%} CI"
    rows = [[r["effect"], fmt_ci(r["estimate"], r["lo"], r["hi"], signed=True), fmt_df(r["df"]),
             fmt_p(r["p"]),
             _docs_cell(r["n_docs"], r.get("n_docs_eff"), r["n_seeds"])
             if r["method"] == C.COMPONENTS else f"{int(r['n_seeds'])} seeds"]
            for r in effects.to_dict("records")]
    return [
        Heading(2, "Factorial: tokenizer × init"),
        Para(
            "The 2×2 of bpe/word × scratch/word2vec as contrasts of the four arms' bpb over the "
            "same (seed, document) cells: tokenizer = ½[(word+scratch + word+word2vec) − "
            "(bpe+scratch + bpe+word2vec)], init = ½[(bpe+word2vec + word+word2vec) − "
            "(bpe+scratch + word+scratch)], interaction = (word+word2vec − word+scratch) − "
            "(bpe+word2vec − bpe+scratch). Intervals add a document component (one bootstrap "
            "draw of the documents for all four arms) and a seed component (the per-seed "
            "contrasts' variance), t with Welch–Satterthwaite df, the documents counted by their "
            "effective number (Σ bytes)² / Σ bytes², shown in brackets; p unadjusted. Negative "
            "favours word, word2vec, or word2vec more on words than on BPE."
        ),
        Table(["effect", f"Δ bpb [{ci}]", "df", "p", "documents (effective) × seeds"], rows,
              align="lrrrr"),
    ]


def _docs_cell(n_docs: Any, n_eff: Any, n_seeds: Any) -> str:
    """"9 (8.5) × 3": documents, their effective number (Kish, by bytes) and seeds."""
    eff = f" ({fmt_num(n_eff, 1)})" if is_finite(n_eff) else ""
    return f"{int(n_docs)}{eff} × {int(n_seeds)}"


# ------------------------------------------------------------------------------ diagnostics


def diagnostics_blocks(
    diag: pd.DataFrame, step0: pd.DataFrame, nbrs: Sequence[Mapping[str, Any]],
) -> list[Block]:
    if diag.empty and step0.empty and not nbrs:
        return []
    blocks: list[Block] = [Heading(2, "Embedding diagnostics")]
    if not diag.empty:
        def pair(r: Mapping[str, Any], k: str, pct: bool = False) -> str:
            f: Callable[[Any], str] = (lambda x: fmt_pct(x, 1)) if pct else fmt_num
            a, b = r[f"{k}_init"], r[f"{k}_final"]
            if not (is_finite(a) or is_finite(b)):
                return NA
            return f"{f(a)} → {f(b)}"

        rows = [[r["arm"], str(int(r["n_seeds"])),
                 pair(r, "wordsim353"), fmt_int(r["wordsim353_n"]),
                 pair(r, "simlex999"), fmt_int(r["simlex999_n"]),
                 pair(r, "analogy", pct=True), fmt_int(r["analogy_n"]),
                 fmt_num(r["drift_covered"]), fmt_num(r["drift_fallback"])]
                for r in diag.to_dict("records")]
        blocks += [
            Para(
                "The input embedding at init → at the end, means over seeds: WordSim353 and "
                "SimLex-999 Spearman ρ and Google-analogy accuracy on the pairs / questions "
                "covered (n; for BPE arms a word is the mean of its tokens' rows), and drift: "
                "mean cosine between each row at init and at the end, for rows from vectors "
                "and for fallback rows (1 = unchanged)."
            ),
            Table(["arm", "seeds", "WordSim353 ρ", "n", "SimLex-999 ρ", "n", "analogy",
                   "n", "drift (vector rows)", "drift (fallback rows)"], rows),
        ]
    for nb in nbrs:
        rows = [[p, ", ".join(a) or NA, ", ".join(b) or NA] for p, a, b in nb["probes"]]
        blocks += [Heading(3, f"Nearest neighbours: {nb['arm']}, seed {nb['seed']}"),
                   Table(["probe", "at init", "at the end"], rows, align="lll")]
    if not step0.empty:
        flagged = list(step0.loc[step0["flagged"].astype(bool), "arm"])
        rows = [[r["arm"], str(int(r["n_seeds"])), fmt_num(r["loss"]), fmt_num(r["ln_vocab"]),
                 fmt_num(r["excess"], signed=True), fmt_num(r["tolerance"]),
                 f"yes ({int(r['n_flagged'])} of {int(r['n_seeds'])})" if r["flagged"] else "no"]
                for r in step0.to_dict("records")]
        blocks += [
            Heading(3, "Golden check: step-0 loss ≈ ln V"),
            Para(
                "Before any update a model that knows nothing predicts every token about "
                "uniformly, so its validation loss should be close to ln V (nats per token); "
                "an init that starts far above it is flagged (excess = loss − ln V beyond the "
                "tolerance). Means over seeds."
            ),
            Table(["arm", "seeds", "step-0 loss", "ln V", "excess", "tolerance", "flagged"],
                  rows),
            Para("Flagged: " + ", ".join(flagged) + ": these arms start far above ln V; read "
                 "their early curves with that in mind." if flagged
                 else "No arm is flagged."),
        ]
    return blocks


# ------------------------------------------------------------------------------ data size


def datasize_blocks(
    table: pd.DataFrame, gains: pd.DataFrame, trends: Mapping[str, Trend | None],
    png: bytes | None, confidence: float = 0.95,
) -> list[Block]:
    if table.empty:
        return []
    ci = f"{confidence:.0%} CI"
    rows = [[r["arm"], fmt_num(r["fraction"], 2), fmt_int(r["train_bytes"]),
             fmt_ci(r["bpb"], r["bpb_lo"], r["bpb_hi"]), str(int(r["n_seeds"]))]
            for r in table.to_dict("records")]
    blocks: list[Block] = [
        Heading(2, "Data size"),
        Para("Arms run on fractions of the train split (same validation and test documents): "
             "their held-out bpb, and the pretrained init's gain at each size."),
    ]
    if png is not None:
        caption = ("Held-out bpb against training bytes per arm (log x), and the init's gain "
                   f"(init minus scratch) against training bytes, {ci}.")
        blocks += [Image("datasize.png", caption, png), Para(caption)]
    blocks.append(Table(["arm", "fraction", "training bytes", f"held-out bpb [{ci}]",
                         "seeds"], rows))
    if not gains.empty:
        grows = [[r["tokenizer"], fmt_num(r["fraction"], 2), fmt_int(r["train_bytes"]),
                  fmt_ci(r["gain"], r["lo"], r["hi"], signed=True), fmt_p(r["p"])]
                 for r in gains.to_dict("records")]
        blocks.append(Table(["tokenizer", "fraction", "training bytes",
                             f"gain: init − scratch [{ci}]", "p"], grows))
    for tok, tr in trends.items():
        if tr is None:
            continue
        largest = float(gains.loc[gains["tokenizer"] == tok, "train_bytes"].max())
        ext = trend_summary(tr, largest)
        s_lo, s_hi = tr.slope_interval()
        parts = [f"{tok}: gain = {tr.intercept:+.3f} {tr.slope:+.3f} · ln(bytes / "
                 f"{fmt_int(2.718281828459045 ** tr.center)}) bpb "
                 f"({'weighted by 1/se²' if tr.weighted else 'unweighted'}, {tr.n} sizes), "
                 f"slope 95% CI {_ci_text(s_lo, s_hi, tr.slope_df)}."]
        for f in (10.0, 100.0):
            g, lo, hi, df = ext[f"x{f:g}"]
            parts.append(f"Extrapolation to {f:g}× the data: {g:+.3f} {_ci_text(lo, hi, df)}.")
        blocks.append(Para(" ".join(parts) + " Beyond the largest size run this is an "
                           "extrapolation of a straight line in log bytes, not a measurement."))
    return blocks


def _ci_text(lo: float, hi: float, df: float) -> str:
    """[lo, hi] (t, df), or why there is none: a point's df unknown."""
    if not (is_finite(lo) and is_finite(hi)):
        return "not drawn (a point's interval has no df to build a t quantile from)"
    return f"[{lo:+.3f}, {hi:+.3f}] (t, {fmt_df(df)} df)"


# ------------------------------------------------------------------------------ GloVe


def mark_glove(blocks: Sequence[Block], arms: Sequence[str]) -> list[Block]:
    """Every GloVe arm named in a table's first column, a bullet or a heading gets
    ``GLOVE_MARK``, and each such block is followed by ``GLOVE_NOTE`` (GloVe 6B has probably
    seen the corpus)."""
    glove = sorted((a for a in arms if "glove" in a), key=len, reverse=True)
    if not glove:
        return list(blocks)
    # Longest names first, and never inside a longer label (word+glove in word+glove-raw).
    pattern = re.compile("|".join(re.escape(a) for a in glove) + r"(?![\w+-])")
    note = Para(f"‡ {GLOVE_NOTE}")

    def mark(text: str) -> tuple[str, bool]:
        out, n = pattern.subn(lambda m: m.group(0) + GLOVE_MARK, text)
        return out, n > 0

    out: list[Block] = []
    for b in blocks:
        hit = False
        if isinstance(b, Table):
            rows = []
            for row in b.rows:
                first, h = mark(row[0]) if row else ("", False)
                hit |= h
                rows.append([first, *row[1:]] if row else row)
            b = Table(b.header, rows, b.align)
        elif isinstance(b, Bullets):
            items = []
            for item in b.items:
                item, h = mark(item)
                hit |= h
                items.append(item)
            b = Bullets(items)
        elif isinstance(b, Heading):
            text, hit = mark(b.text)
            b = Heading(b.level, text)
        out.append(b)
        if hit:
            out.append(note)
    return out


__all__ = [
    "GLOVE_MARK",
    "datasize_blocks",
    "diagnostics_blocks",
    "factorial_blocks",
    "mark_glove",
    "scorecard_blocks",
    "summary_blocks",
]
