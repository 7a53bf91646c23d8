"""Verdicts: the sentences that state what the tables show.

Generated, never hand-written, so the prose cannot drift from the numbers.
``headline_verdicts`` words the held-out comparisons of ``embinit.study.compare``: each
arm against the reference, and each pair of arms study.json declares, on the like-for-like
figure, with its interval, raw and Holm-adjusted p, and what that supports (lower, higher,
not significant, equivalent within the margin, or not decided because it depends on the
speller); a sentence never claims more than its interval, and "tied" is never said. ``verdicts`` is the longer,
exploratory list over every metric from an ``arm_summary`` table (seed-only intervals,
unadjusted p), which names a lowest arm only among arms whose figures are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from embinit.study import compare as C
from embinit.study.load import HEADLINE_METRICS, NO_DOC_LOSSES
from embinit.study.report.doc import fmt_df, fmt_p
from embinit.study.stats import BOOTSTRAP_B, TOST_CONFIDENCE, excludes_zero

SPELLER_LABELS = {"unigram": "unigram", "ngram": "n-gram"}
FEW_DOCS = 30  # below this many documents, a table's intervals come with a caution

_METRIC_LABELS = {
    "val_bpb": "val bpb",
    "test_bpb": "test bpb",
    "val_bpb_oov_adjusted": "OOV-adjusted val bpb",
    "test_bpb_oov_adjusted": "OOV-adjusted test bpb",
    "val_bpb_lossless": "lossless val bpb",
    "test_bpb_lossless": "lossless test bpb",
}


def _facts_from_summary(summary: pd.DataFrame) -> pd.DataFrame:
    def col(name: str) -> pd.Series:
        return summary[name] if name in summary.columns else pd.Series(None, index=summary.index)

    vocab, oov, flag = col("vocab"), col("vocab_oov"), col("exact")
    return pd.DataFrame({
        "arm": summary["arm"],
        "tokenizer": [str(v) + (f"/{o}" if isinstance(o, str) and o else "")
                      for v, o in zip(vocab, oov, strict=True)],
        "exact": [C.is_exact(f, v, o) for f, v, o in zip(flag, vocab, oov, strict=True)],
        "lowercase": False,
        "by_speller": False,
    })


def _comparable(facts: pd.DataFrame, arms: Sequence[str]) -> bool:
    """Raw figures compare across these arms: one tokenizer, or every arm exact."""
    f = facts[facts["arm"].isin(arms)]
    return f["tokenizer"].nunique() <= 1 or bool(f["exact"].all())


def verdicts(
    summary: pd.DataFrame,
    reference_arm: str,
    confidence: float = 0.95,
    digits: int = 3,
    compare: Sequence[str] = ("val_bpb_lossless", "val_bpb_oov_adjusted", "val_bpb"),
    facts: pd.DataFrame | None = None,
) -> list[str]:
    """Sentences stating what the numbers show, generated from an ``arm_summary`` table.

    The lowest mean of each headline metric, when the arms' figures are comparable (one
    tokenizer, or every arm exact: see ``embinit.study.compare.arm_facts``, by default
    read from the summary's vocab column); every arm against the reference on the
    ``compare`` metrics (difference, seed-only CI, unadjusted p, n, and whether the CI
    excludes zero), across tokenizers on the lossless figure only; and the arms with
    diverged, incomplete or no completed runs.
    """
    facts = _facts_from_summary(summary) if facts is None else facts
    out: list[str] = []
    ci = f"{confidence * 100:g}% CI"
    f = f"{{:.{digits}f}}"
    s = f"{{:+.{digits}f}}"
    with_runs = list(summary.loc[summary["n_seeds"] > 0, "arm"])
    if _comparable(facts, with_runs):
        for m in sorted(HEADLINE_METRICS, key=lambda m: (not m.endswith("lossless"),
                                                         not m.endswith("oov_adjusted"))):
            col = f"{m}_mean"
            if col not in summary.columns or summary[col].isna().all():
                continue
            best = summary.loc[summary[col].idxmin()]
            mean, hi, n = best[col], best[f"{m}_hi"], int(best[f"{m}_n"])
            spread = (f" ± {f.format(hi - mean)}, {ci}, n={n}" if np.isfinite(hi)
                      else f"; n={n}, no CI")
            out.append(
                f"Lowest mean {_METRIC_LABELS.get(m, m)}: {best['arm']} ({f.format(mean)}{spread})."
            )
    elif len(with_runs) > 1:
        out.append(
            "No arm is named lowest here: the arms have different tokenizers and not all are "
            "exact, so their raw figures are not comparable; the headline above compares each "
            "arm with the reference on the like-for-like figure."
        )
    ref_rows = summary[summary["arm"] == reference_arm]
    others = summary[(summary["arm"] != reference_arm) & (summary["n_seeds"] > 0)]
    if ref_rows.empty or int(ref_rows["n_seeds"].iloc[0]) == 0:
        out.append(
            f"The reference arm {reference_arm} has no completed runs: no paired comparisons."
        )
    elif len(others):
        out.append(
            f"Differences are arm minus {reference_arm}, paired by seed; bpb is lower-is-better, "
            "so a negative difference favours the arm. Exploratory: these intervals vary the "
            "seed only and the p-values are not adjusted for the number of comparisons; the "
            "headline above is the confirmatory comparison."
        )
        info = facts.set_index("arm")
        for _, row in others.iterrows():
            arm = row["arm"]
            same = _comparable(facts, [arm, reference_arm])
            skipped = []
            for m in compare:
                if f"{m}_diff" not in summary.columns:
                    continue
                if not same and not m.endswith("lossless"):
                    skipped.append(_DIFF_UNITS.get(m, m))
                    continue
                if m.endswith("lossless") and not same and (
                    _fact(info, arm, "by_speller") or _fact(info, reference_arm, "by_speller")
                ):
                    out.append(
                        f"{arm} vs {reference_arm}: the lossless figure of a closed-vocabulary "
                        "arm depends on the speller; see the headline and the speller table."
                    )
                    continue
                out.append(_comparison(row, m, reference_arm, ci, f, s)
                           + _lowercase_note(info, (arm, reference_arm)))
            if skipped:
                out.append(
                    f"{arm} vs {reference_arm}: {' and '.join(skipped)} not compared "
                    "(different tokenizers; these figures leave part of the text uncharged)."
                )
    else:
        out.append(f"No arm other than {reference_arm} has completed runs: nothing to compare.")
    for _, row in summary.iterrows():
        arm, n_runs = row["arm"], int(row["n_runs"])
        if int(row["n_seeds"]) == 0:
            out.append(
                f"{arm}: no completed runs ({n_runs} run director{'y' if n_runs == 1 else 'ies'})."
            )
        if int(row["n_diverged"]):
            out.append(
                f"{arm}: {int(row['n_diverged'])} of {n_runs} runs diverged and are excluded from every mean."
            )
        if int(row["n_incomplete"]):
            out.append(
                f"{arm}: {int(row['n_incomplete'])} of {n_runs} runs are incomplete "
                "(running, failed or without summary.json) and are excluded."
            )
    return out


_DIFF_UNITS = {
    "val_bpb": "bpb",
    "test_bpb": "test bpb",
    "val_bpb_oov_adjusted": "OOV-adjusted bpb",
    "test_bpb_oov_adjusted": "OOV-adjusted test bpb",
    "val_bpb_lossless": "lossless bpb",
    "test_bpb_lossless": "lossless test bpb",
}


def _comparison(row: pd.Series, m: str, ref: str, ci: str, f: str, s: str) -> str:
    unit = _DIFF_UNITS.get(m, m)
    head = f"{row['arm']} vs {ref}:"
    d, lo, hi, p = row[f"{m}_diff"], row[f"{m}_diff_lo"], row[f"{m}_diff_hi"], row[f"{m}_p"]
    n = int(row[f"{m}_diff_n"])
    note = str(row.get(f"{m}_diff_note") or "")
    tail = f" ({note})" if "common seeds" in note else ""
    if n == 0 or not np.isfinite(d):
        return f"{head} no seeds with {unit} in common; no paired comparison."
    if n == 1:
        return f"{head} {s.format(d)} {unit} on the one common seed: no CI or p-value (needs n >= 2){tail}."
    if not np.isfinite(p):
        return (
            f"{head} {s.format(d)} {unit} on every one of n={n} seeds: the differences are identical, "
            f"so the paired t-test is undefined{tail}."
        )
    verdict = "excludes" if excludes_zero(lo, hi) else "includes"
    return (
        f"{head} {s.format(d)} {unit} [{ci} {s.format(lo)}, {s.format(hi)}], {fmt_p(p, labelled=True)} "
        f"(paired t-test, n={n}): the CI {verdict} zero{tail}."
    )


def _fact(info: pd.DataFrame, arm: str, key: str) -> bool:
    return bool(info.loc[arm, key]) if arm in info.index and key in info.columns else False


def _lowercase_note(info: pd.DataFrame, arms: Sequence[str]) -> str:
    low = [a for a in arms if _fact(info, a, "lowercase")]
    if not low:
        return ""
    who, verb = ", ".join(low), "lowercases" if len(low) == 1 else "lowercase"
    return (
        f" Note: {who} {verb} its text (`vocab.lowercase`), so case is never charged: that "
        "figure is not lossless, and it favours the lowercased arm."
    )


# ------------------------------------------------------------------------------ headline


def _num(x: Any, digits: int = 3, signed: bool = True) -> str:
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def _iv(lo: Any, hi: Any, digits: int = 3) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    return f"[{_num(lo, digits)}, {_num(hi, digits)}]"


def _cells(row: Mapping[str, Any]) -> str:
    n = int(row["n_seeds"])
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    df = fmt_df(row.get("df", math.nan))
    if row["method"] == C.COMPONENTS:
        return f"{int(row['n_docs'])} documents × {seeds}, t with {df} df"
    return f"t over {seeds}, {df} df"


def _label(row: Mapping[str, Any], ref: str) -> str:
    return f"{row['arm']} vs {row.get('versus') or ref}"


def _reason(row: Mapping[str, Any]) -> str:
    """Why a seed-t row's documents were not paired: its note up to any t-test note."""
    return str(row["note"]).split("; ")[0]


def _join(items: Sequence[str]) -> str:
    return "; ".join(items)


def few_docs_note(comp: pd.DataFrame, ref: str, what: str = "held-out") -> str | None:
    """The caution for a table whose document component rests on few documents, or None."""
    rows = _others(comp, ref)
    paired = rows[rows["method"] == C.COMPONENTS]
    if not len(paired) or int(paired["n_docs"].min()) >= FEW_DOCS:
        return None
    n = int(paired["n_docs"].min())
    eff = (f" ({float(paired['n_docs_eff'].min()):.1f} effective, by bytes)"
           if "n_docs_eff" in paired and paired["n_docs_eff"].notna().any() else "")
    return (
        f"Only {n} {what} document{'s' if n != 1 else ''}{eff}: the document component is "
        "estimated "
        "from so few (a bootstrap over D documents gives about (D − 1)/D of the usual variance "
        "estimate, and the degrees of freedom come from that estimate too), so the intervals "
        "are approximate; read them with that in mind."
    )


def doc_notes(comp: pd.DataFrame, ref: str, missing: bool = True) -> list[str]:
    """Sentences on every comparison not paired document by document, and why: records
    that do not describe the same documents (no comparison), records that cannot be
    aligned, records without usable per-document losses (``missing``), and the pairs
    paired by position."""
    others = _others(comp, ref).to_dict("records")
    own = C.arm_rows(comp).to_dict("records")
    out = []
    bad = [f"{_label(r, ref)}: {r['note']}" for r in others
           if r.get("doc_status") == C.DOCS_INCONSISTENT]
    bad += [f"{r['arm']}'s own figure (Student t over seeds): {r['arm_note']}" for r in own
            if r.get("arm_doc_status") == C.DOCS_INCONSISTENT]
    if bad:
        out.append(
            "Warning: inconsistent records. " + _join(bad) + ". Comparisons between arms "
            "scored on different held-out documents are not made; check that every run "
            "evaluated the same data split."
        )
    refused = [f"{_label(r, ref)} ({r['note']})" for r in others
               if r.get("doc_status") == C.DOCS_REFUSED]
    refused += [f"{r['arm']}'s own figure ({r['arm_note']})" for r in own
                if r.get("arm_doc_status") == C.DOCS_REFUSED]
    if refused:
        out.append(
            "Not paired document by document, so Student t over seeds alone: "
            + _join(refused) + "."
        )
    lacking = [r for r in others if r.get("doc_status") == C.DOCS_MISSING]
    if missing and lacking:
        reasons = list(dict.fromkeys(
            [_reason(r) for r in lacking]
            + [str(r["arm_note"]) for r in own if r.get("arm_doc_status") == C.DOCS_MISSING]
        ))
        bare = {f"{r['arm']}: {NO_DOC_LOSSES}" for r in own if r.get("arm_seeds")}
        if len(lacking) == len(others) and set(reasons) <= bare:
            which = "These records carry no per-document losses, so their intervals and p-values"
        else:
            which = (f"Without usable per-document losses ({_join(reasons)}), the intervals "
                     f"and p-values of {', '.join(_label(r, ref) for r in lacking)}")
        out.append(
            f"{which} are Student t over seeds alone, which ignores the variation between the "
            "few held-out documents and understates the uncertainty."
        )
    by_position = [f"{_label(r, ref)} {r['note']}" for r in others
                   if r.get("method") == C.COMPONENTS and r.get("note")]
    if by_position:
        out.append(_join(by_position) + ".")
    return out


def headline_intro(
    comp: pd.DataFrame, ref: str, margin: float, confidence: float = 0.95
) -> list[str]:
    """The sentences that say how the headline comparisons were made (method, figure,
    family, equivalence), from a ``heldout_comparisons`` table."""
    others = _others(comp, ref)
    methods = set(others["method"]) - {""}
    family = int(others["primary"].sum())
    tost = f"{TOST_CONFIDENCE:.0%}"
    out = [
        "Held-out here means the validation and test documents pooled: no model selection uses "
        "the validation split in these runs (no early stopping, no tuning on it), so both "
        "splits are held out; each is also shown on its own below.",
        "Each arm is scored on bpb where it is exact (no external charge: BPE, word level with "
        "byte fallback) and on lossless bpb where it is charged (closed vocabulary: the "
        "spelling of `<unk>` words and the dropped whitespace are added), so the figures "
        "compare across tokenizers; raw bpb is never compared across tokenizers.",
    ]
    if C.COMPONENTS in methods:
        q, qt = f"{(1 + confidence) / 2:g}", f"{(1 + TOST_CONFIDENCE) / 2:g}"
        out.append(
            f"Intervals ({confidence:.0%}) and p-values add two variance components. Δ is the "
            "difference of the two arms' bpb over every (seed, document) cell both completed, "
            "each arm's bpb being Σ(nats + charges) / (ln 2 · Σ bytes) over those cells. The "
            "document component v_doc is the variance of Δ over "
            f"{BOOTSTRAP_B:,} bootstrap resamples of the D documents alone (every seed kept, "
            "the same documents drawn for both arms, fixed RNG seed); the seed component is "
            "v_seed = s²/S, s² being the sample variance over the S seeds of the per-seed "
            "differences Δ_s, each over every document (v_seed = 0 when S = 1). SE = √(v_doc + "
            "v_seed), with Welch–Satterthwaite degrees of freedom df = (v_doc + v_seed)² / "
            "(v_seed²/(S − 1) + v_doc²/(D_eff − 1)) (D_eff − 1 when S = 1), D_eff = (Σ b_d)² "
            "/ Σ b_d² being the byte-weighted effective number of documents (Kish: documents "
            "of unequal size carry less information than as many equal ones), shown in the "
            "tables; the "
            f"interval is Δ ± t_{{{q}, df}} · SE, p is two-sided from t with df degrees of "
            f"freedom, and the {tost} interval for equivalence is Δ ± t_{{{qt}, df}} · SE. An "
            "arm's own figure gets its interval the same way from its bpb."
        )
    few = few_docs_note(comp, ref)
    if few:
        out.append(few)
    out += doc_notes(comp, ref)
    out.append(
        f"p-values are Holm-adjusted across the {family} primary comparison"
        f"{'s' if family != 1 else ''} (study.json `primary`: an arm against {ref}, or "
        f"two arms against each other; else every arm against {ref}; one without a p-value "
        "still counts, as p = 1); an arm is called lower or higher only when its adjusted p "
        "(raw p for a secondary comparison) is below 0.05 and its interval excludes zero. "
        f"Equivalence within ±{margin:g} bpb is claimed only when the {tost} interval lies "
        f"inside (-{margin:g}, +{margin:g}) (TOST at α = 0.05); otherwise a difference that is "
        "not significant is reported as such, with its interval."
    )
    return out


def _speller_part(row: Mapping[str, Any], names: Sequence[str]) -> str:
    parts = [
        f"{SPELLER_LABELS.get(k, k)}: {_num(row[f'diff_{k}'])} "
        f"{_iv(row[f'diff_lo_{k}'], row[f'diff_hi_{k}'])}"
        for k in names
        if np.isfinite(row.get(f"diff_{k}", math.nan))
    ]
    return ", ".join(parts)


def headline_sentence(
    row: Mapping[str, Any],
    ref: str,
    figure: str,
    margin: float,
    names: Sequence[str] = (),
    confidence: float = 0.95,
    lowercase_note: str = "",
) -> str:
    """One arm against ``ref`` (the reference, or a declared pair's second arm), from a
    ``heldout_comparisons`` row."""
    arm, out = row["arm"], row["outcome"]
    head = f"{arm} vs {ref}"
    if out == C.NO_COMPARISON or not np.isfinite(row["diff"]):
        why = str(row.get("note") or "") if row.get("doc_status") == C.DOCS_INCONSISTENT else ""
        return f"{head}: no comparison ({why})." if why else f"{head}: no seeds in common, no comparison."
    d, lo, hi = row["diff"], row["diff_lo"], row["diff_hi"]
    ci = f"{confidence:.0%} CI"
    p = fmt_p(row["p"], labelled=True)
    holm = (f", Holm-adjusted {fmt_p(row['p_holm'], labelled=True)}" if row["primary"]
            else "; secondary, outside the Holm family")
    text = (f"{head}: {_num(d)} {figure} [{ci} {_num(lo)}, {_num(hi)}], "
            f"{p}{holm} ({_cells(row)})")
    tost = f"{TOST_CONFIDENCE:.0%} CI {_iv(row['tost_lo'], row['tost_hi'])}"
    speller = _speller_part(row, names)
    tested = row.get("p_holm") if row["primary"] else row.get("p")
    if out == C.LOWER:
        text += (f": {arm} is lower (better) by {_num(-hi, signed=False)} to "
                 f"{_num(-lo, signed=False)} {figure} ({ci}, unadjusted)")
    elif out == C.HIGHER:
        text += (f": {arm} is higher (worse) by {_num(lo, signed=False)} to "
                 f"{_num(hi, signed=False)} {figure} ({ci}, unadjusted)")
    elif out == C.SPELLER_DEPENDENT:
        text += f": not decided: depends on the speller ({speller})"
    elif tested is None or not np.isfinite(tested):
        why = str(row.get("note") or "") or "no test"
        text += f": no p-value ({why}), so not called significant (CI {_iv(lo, hi)})"
    elif row["primary"] and excludes_zero(lo, hi) and float(row["p"]) < C.ALPHA:
        text += f": not significant after the Holm adjustment (the unadjusted {ci} excludes zero)"
    else:
        text += f": not significant (CI {_iv(lo, hi)})"
    if out in (C.LOWER, C.HIGHER) and speller:
        text += f", under every speller ({speller})"
    if row["equivalent"]:
        text += f"; equivalent within ±{margin:g} bpb ({tost} inside the margin)"
    elif out == C.NOT_SIGNIFICANT:
        text += f"; not shown equivalent within ±{margin:g} bpb ({tost})"
    return text + "." + lowercase_note


def headline_verdicts(
    comp: pd.DataFrame,
    ref: str,
    facts: pd.DataFrame,
    margin: float,
    names: Sequence[str] = (),
    confidence: float = 0.95,
) -> list[str]:
    """One sentence per comparison, from a ``heldout_comparisons`` table: the primary arms
    against the reference, the declared pairs, then the secondary arms; each says what its
    interval and p support, no more."""
    info = facts.set_index("arm")
    arms = C.arm_rows(comp)
    arms = arms[arms["arm"] != ref]
    ordered = pd.concat([arms[arms["primary"]], C.pair_rows(comp), arms[~arms["primary"]]])
    out = []
    for r in ordered.to_dict("records"):
        versus = str(r.get("versus") or ref)
        out.append(headline_sentence(
            r, versus, C.comparison_figure(facts, r["arm"], versus), margin, names, confidence,
            _lowercase_note(info, (r["arm"], versus)),
        ))
    return out


def _others(comp: pd.DataFrame, ref: str) -> pd.DataFrame:
    """Every comparison row of a ``heldout_comparisons`` table (all but the reference's own)."""
    arms = C.arm_rows(comp)
    return pd.concat([arms[arms["arm"] != ref], C.pair_rows(comp)])


__all__ = [
    "doc_notes",
    "few_docs_note",
    "headline_intro",
    "headline_sentence",
    "headline_verdicts",
    "verdicts",
]
