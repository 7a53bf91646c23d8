"""The report's design and held-out sections: each a function from tables to blocks.

Design (what each arm was given), the headline (arms against the reference on the pooled
held-out documents, and the pairs of arms study.json declares), the same per split, the
sliding-window evaluation and the bound of closed-vocabulary arms under each speller. The tables come from ``embinit.study.design``
and ``embinit.study.compare``; the sentences from ``embinit.study.report.verdicts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from embinit.study import compare as C
from embinit.study.report.doc import (
    NA,
    Block,
    Bullets,
    Heading,
    Para,
    Table,
    fmt_ci,
    fmt_df,
    fmt_int,
    fmt_num,
    fmt_p,
    is_finite,
)
from embinit.study.report.verdicts import (
    SPELLER_LABELS,
    doc_notes,
    few_docs_note,
    headline_intro,
    headline_verdicts,
)
from embinit.study.stats import TOST_CONFIDENCE

_SCOPE_LABELS = {"held-out": "held-out (val ∪ test)", "val": "validation", "test": "test"}


def fmt_flops(x: Any) -> str:
    return f"{float(x):.2e}" if is_finite(x) else NA


def _text(x: Any) -> str:
    return str(x) if x not in (None, "") and not (isinstance(x, float) and x != x) else NA


# ------------------------------------------------------------------------------ design


_BODY = {
    "yes": "yes: at each seed every arm's non-embedding parameters at step 0 hash alike "
    "(`params.body_init_sha256`), so the arms differ only in the embedding.",
    "not recorded": "not recorded (the records predate `params.body_init_sha256`).",
}


def _body_sentence(answer: str, per_seed: pd.DataFrame) -> str:
    head = "Same initial body across arms at each seed: "
    if answer == "no":
        bad = per_seed[per_seed["hashes"] > 1]
        seeds = ", ".join(str(s) for s in bad["seed"])
        return (head + f"no: at seed {seeds} the arms' step-0 body hashes differ, so part of a "
                "difference between arms may come from the body, not the embedding.")
    if answer == "partly recorded":
        missing = int(per_seed["missing"].sum())
        return head + f"partly recorded: equal where recorded; {missing} runs carry no hash."
    return head + _BODY.get(answer, answer)


def design_blocks(design: pd.DataFrame, body: tuple[str, pd.DataFrame]) -> list[Block]:
    rows = [
        [
            r["arm"], _text(r["tokenizer"]), _text(r["budget"]), fmt_num(r["epochs"], 3),
            _text(r["context"]), fmt_int(r["block_tokens"]), fmt_num(r["bytes_per_window"], 1),
            fmt_flops(r["train_flops"]), fmt_int(r["init_tokens"]), fmt_num(r["init_epochs"], 1),
            fmt_num(r["init_wall_s"], 1), fmt_flops(r["init_flops"]), fmt_flops(r["total_flops"]),
        ]
        for _, r in design.iterrows()
    ]
    absent = [
        name
        for name, cols in (
            ("budget mode", ["budget"]),
            ("context", ["context", "block_tokens", "bytes_per_window"]),
            ("training FLOPs", ["train_flops"]),
            ("initialization compute", ["init_tokens", "init_epochs", "init_wall_s", "init_flops"]),
        )
        if all(_text(v) == NA for c in cols for v in design[c])
    ]
    blocks: list[Block] = [
        Heading(2, "Design"),
        Para(
            "What each arm was given, from its records (means over completed seeds). Budget: "
            "what fixed the length of training (bytes, epochs, steps or FLOPs); epochs: training "
            "bytes seen / train split bytes; context: a window of a fixed number of tokens or of "
            "bytes, its length in tokens and the bytes it spans; FLOPs: training, and the "
            "initialization's own (training its vectors; zero for scratch); total = both."
        ),
        Table(
            ["arm", "tokenizer", "budget", "epochs", "context", "block (tokens)", "bytes/window",
             "train FLOPs", "init tokens", "init epochs", "init wall (s)", "init FLOPs",
             "total FLOPs"],
            rows,
            align="lllrlrrrrrrrr",
        ),
        Para(_body_sentence(*body)),
    ]
    if absent:
        blocks.append(Para(
            f"Not in these records (written before the field existed): {', '.join(absent)}; "
            f"shown as {NA}."
        ))
    return blocks


# ------------------------------------------------------------------------------ comparisons


def _comparison_table(
    comp: pd.DataFrame, ref: str, facts: pd.DataFrame, margin: float, confidence: float
) -> Table:
    tok = dict(zip(facts["arm"], facts["tokenizer"], strict=True))
    ci = f"{confidence:.0%} CI"
    rows = []
    for r in C.arm_rows(comp).to_dict("records"):
        is_ref = r["arm"] == ref
        cells = (f"{int(r['arm_docs'])} × {int(r['arm_seeds'])}" if r.get("arm_method") ==
                 C.COMPONENTS else f"{int(r['arm_seeds'])} seeds" if is_finite(r["bpb"]) else NA)
        rows.append([
            r["arm"],
            tok.get(r["arm"], NA),
            r["figure"],
            cells,
            fmt_ci(r["bpb"], r["bpb_lo"], r["bpb_hi"]),
            fmt_df(r.get("arm_df")),
            "(reference)" if is_ref else fmt_ci(r["diff"], r["diff_lo"], r["diff_hi"], signed=True),
            NA if is_ref else fmt_df(r.get("df")),
            fmt_p(r["p"]),
            fmt_p(r["p_holm"]) if r["primary"] else ("—" if is_ref else "(secondary)"),
            NA if is_ref else fmt_ci(r["diff"], r["tost_lo"], r["tost_hi"], signed=True),
            NA if is_ref else ("yes" if r["equivalent"] else "no"),
            "(reference)" if is_ref else r["outcome"],
        ])
    return Table(
        ["arm", "tokenizer", "figure", "documents × seeds", f"figure [{ci}]", "figure df",
         f"Δ vs {ref} [{ci}]", "Δ df", "p", "Holm p", f"Δ [{TOST_CONFIDENCE:.0%} CI]",
         f"equivalent ±{margin:g}", "outcome"],
        rows,
        align="lllrrrrrrrrll",
    )


def _cells(r: Mapping[str, Any]) -> str:
    if r["method"] == C.COMPONENTS:
        return f"{int(r['n_docs'])} × {int(r['n_seeds'])}"
    return f"{int(r['n_seeds'])} seeds" if is_finite(r["diff"]) else NA


def _pair_table(comp: pd.DataFrame, margin: float, confidence: float) -> Table | None:
    """The declared pairs of a ``heldout_comparisons`` table, or None when there are none."""
    pairs = C.pair_rows(comp)
    if pairs.empty:
        return None
    ci = f"{confidence:.0%} CI"
    rows = [
        [
            f"{r['arm']} vs {r['versus']}",
            r["figure"],
            _cells(r),
            fmt_ci(r["diff"], r["diff_lo"], r["diff_hi"], signed=True),
            fmt_df(r.get("df")),
            fmt_p(r["p"]),
            fmt_p(r["p_holm"]),
            fmt_ci(r["diff"], r["tost_lo"], r["tost_hi"], signed=True),
            "yes" if r["equivalent"] else "no",
            r["outcome"],
        ]
        for r in pairs.to_dict("records")
    ]
    return Table(
        ["comparison (a vs b)", "figure", "documents × seeds", f"Δ a − b [{ci}]", "df", "p",
         "Holm p", f"Δ [{TOST_CONFIDENCE:.0%} CI]", f"equivalent ±{margin:g}", "outcome"],
        rows,
        align="llrrrrrrll",
    )


_PAIR_NOTE = (
    "Declared in study.json as `a vs b`: the first arm minus the second, on the documents and "
    "seeds both completed, on bpb when both arms are exact and on lossless bpb otherwise; "
    "these are primary comparisons, Holm-adjusted in one family with the primary rows above."
)


def headline_blocks(
    comp: pd.DataFrame,
    ref: str,
    facts: pd.DataFrame,
    margin: float,
    names: Sequence[str],
    confidence: float = 0.95,
) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Headline: held-out bits per byte"),
        *[Para(t) for t in headline_intro(comp, ref, margin, confidence)],
        Bullets(headline_verdicts(comp, ref, facts, margin, names, confidence)),
        _comparison_table(comp, ref, facts, margin, confidence),
        Para(
            "figure: the arm's own bpb over the held-out documents with its interval; Δ: arm "
            f"minus {ref}, negative favours the arm; df: the degrees of freedom of the t "
            "quantile behind each interval (Welch–Satterthwaite for documents × seeds, n − 1 "
            "for n seeds); Holm p: adjusted across the primary comparisons; outcome: what the "
            "adjusted p and the interval support."
        ),
    ]
    pairs = _pair_table(comp, margin, confidence)
    if pairs is not None:
        blocks += [Heading(3, "Declared pairwise comparisons"), Para(_PAIR_NOTE), pairs]
    return blocks


def split_blocks(
    comps: Mapping[str, pd.DataFrame],
    ref: str,
    facts: pd.DataFrame,
    margin: float,
    confidence: float = 0.95,
) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Per split: validation and test"),
        Para(
            "The same comparisons on each split alone (fewer documents, so wider intervals; "
            "Holm-adjusted within each split). A gap between the splits larger than the "
            "differences between arms is the document variation the headline interval includes."
        ),
    ]
    for scope, comp in comps.items():
        label = _SCOPE_LABELS.get(scope, scope)
        blocks.append(Heading(3, label.capitalize()))
        few = few_docs_note(comp, ref, label)
        blocks += [Para(t) for t in ([few] if few else []) + doc_notes(comp, ref, missing=False)]
        blocks.append(_comparison_table(comp, ref, facts, margin, confidence))
        pairs = _pair_table(comp, margin, confidence)
        if pairs is not None:
            blocks += [Para("Declared pairwise comparisons (a minus b):"), pairs]
    return blocks


def sliding_blocks(sliding: pd.DataFrame, facts: pd.DataFrame) -> list[Block]:
    if sliding.empty:
        return []
    figure = {a: "bpb" if e else "lossless bpb"
              for a, e in zip(facts["arm"], facts["exact"], strict=True)}
    return [
        Heading(2, "Sliding-window evaluation"),
        Para(
            "The headline scores each held-out target once in non-overlapping windows, so "
            "targets early in a window see little context. The sliding-window evaluation "
            "scores every target with at least block - stride tokens of context. Both columns "
            "are the like-for-like figure (bpb for exact arms, lossless bpb for charged arms; "
            "the charges do not depend on the context), means over completed seeds."
        ),
        Table(
            ["arm", "split", "figure", "non-overlapping", "sliding", "sliding - non-overlapping",
             "stride (tokens)"],
            [
                [r["arm"], r["split"], figure.get(r["arm"], "bpb"), fmt_num(r["bpb"]),
                 fmt_num(r["bpb_sliding"]), fmt_num(r["gain"], signed=True), _text(r["stride"])]
                for _, r in sliding.iterrows()
            ],
            align="lllrrrr",
        ),
    ]


def speller_blocks(
    spell: pd.DataFrame, comp: pd.DataFrame, ref: str, names: Sequence[str]
) -> list[Block]:
    if spell.empty:
        return []
    by_arm = C.arm_rows(comp).set_index("arm")
    rows = []
    for _, r in spell.iterrows():
        k = r["speller"]
        row = by_arm.loc[r["arm"]] if r["arm"] in by_arm.index else None
        diff = NA
        if row is not None and is_finite(row.get(f"diff_{k}")):
            diff = fmt_ci(row[f"diff_{k}"], row[f"diff_lo_{k}"], row[f"diff_hi_{k}"], signed=True)
        rows.append([r["arm"], SPELLER_LABELS.get(k, k), fmt_num(r["val"]), fmt_num(r["test"]),
                     fmt_num(r["held-out"]), diff])
    return [
        Heading(2, "Closed-vocabulary arms under each speller"),
        Para(
            "A closed-vocabulary arm's lossless bpb charges each `<unk>` the cost of spelling "
            "the word out, and that cost depends on the speller that prices it: "
            f"{', '.join(SPELLER_LABELS.get(k, k) for k in names)}. A verdict against the "
            "reference is stated only when it holds under every speller. The held-out Δ under "
            "a speller is the headline interval moved by how far that speller's point "
            "difference lies from the records' own charges (an approximation: per-document "
            "charges are recorded under one speller)."
        ),
        Table(
            ["arm", "speller", "val lossless bpb", "test lossless bpb", "held-out lossless bpb",
             f"Δ held-out vs {ref} [95% CI]"],
            rows,
            align="llrrrr",
        ),
    ]


__all__ = [
    "design_blocks",
    "fmt_flops",
    "headline_blocks",
    "sliding_blocks",
    "speller_blocks",
    "split_blocks",
]
