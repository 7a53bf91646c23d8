"""Arms against the reference on the held-out documents: pure functions, tables out.

The figure compared is the one that is like for like across tokenizers: bpb for exact
arms (BPE; word-level with byte fallback), where it needs no external charge, and lossless
bpb for charged arms (closed-vocabulary word level, which is charged the spelling of its
``<unk>`` words and the whitespace its tokens drop). Per document, that is
``(nats + charges) / (ln 2 bytes)``, charges being zero for exact arms.

With per-document losses in the records, intervals and p-values come from the paired
bootstrap over documents x seeds (``embinit.study.stats.paired_bootstrap``); without them
(older records) from Student t over seeds alone, which ignores how few documents there
are. Either way p-values are Holm-adjusted across the study's primary comparisons and
equivalence is TOST at the study's margin. The primary comparisons are declared in
study.json: an arm against the reference, or two arms against each other ("a vs b", e.g.
the init effect at a fixed tokenizer), compared the same way. ``heldout_comparisons``
returns one row per arm, then one per declared pair; ``outcome`` says what a row supports,
and the verdict sentences only put it in words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from embinit.study.load import COMPLETED, arm_order, completed
from embinit.study.stats import (
    TOST_CONFIDENCE,
    bootstrap_bpb,
    equivalent,
    holm,
    mean_ci,
    paired_bootstrap,
    paired_diff,
)

SCOPES: dict[str, tuple[str, ...]] = {"held-out": ("val", "test"), "val": ("val",), "test": ("test",)}
BOOTSTRAP = "bootstrap"
SEED_T = "seed t"
ALPHA = 0.05
# What a row supports (column ``outcome``).
LOWER, HIGHER, NOT_SIGNIFICANT = "lower", "higher", "not significant"
SPELLER_DEPENDENT, NO_COMPARISON, REFERENCE = "depends on the speller", "no comparison", "reference"
PAIR_SEP = " vs "  # study.json primary: "<arm> vs <arm>"


def _col(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def _first(df: pd.DataFrame, col: str) -> Any:
    if col not in df.columns:
        return None
    vals = df[col].dropna()
    return vals.iloc[0] if len(vals) else None


# ------------------------------------------------------------------------------ arm facts


def spellers(runs: pd.DataFrame) -> list[str]:
    """The spellers any record prices `<unk>` spellings under (``*_bpb_lossless_by_speller_*``)."""
    found = set()
    for split in SCOPES["held-out"]:
        prefix = f"{split}_bpb_lossless_by_speller_"
        found |= {c.removeprefix(prefix) for c in runs.columns if c.startswith(prefix)}
    return sorted(found, key=lambda k: (k != "unigram", k))


FACT_COLUMNS = ["arm", "vocab", "vocab_oov", "tokenizer", "exact", "lowercase", "by_speller"]


def arm_facts(
    runs: pd.DataFrame, configs: Mapping[str, Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """Per arm: vocab, vocab_oov, tokenizer, exact, lowercase, by_speller.

    ``exact``: the record's flag; records without it are exact for BPE and for word level
    with ``vocab_oov == "bytes"``, charged otherwise (older word-level arms had `<unk>`).
    ``tokenizer``: vocab, oov handling and size, e.g. ``word/unk 16,384``. ``lowercase``:
    ``vocab.lowercase`` in any run's config (case is then never charged: not lossless).
    ``by_speller``: the records price `<unk>` spellings under more than one speller.
    """
    run_arm = dict(zip(runs["run_dir"], runs["arm"], strict=True))
    lower: dict[str, bool] = {}
    for rd, cfg in (configs or {}).items():
        if rd in run_arm and bool((cfg.get("vocab") or {}).get("lowercase")):
            lower[run_arm[rd]] = True
    rows = []
    for arm in arm_order(runs):
        sub = runs[runs["arm"] == arm]
        done = sub[sub["status"] == COMPLETED]
        src = done if len(done) else sub
        vocab, oov, size = _first(src, "vocab"), _first(src, "vocab_oov"), _first(src, "vocab_size")
        flag = _first(src, "exact")
        exact = bool(flag) if flag is not None else (vocab == "bpe" or oov == "bytes")
        tok = str(vocab or "?") + (f"/{oov}" if oov else "")
        if size is not None and not pd.isna(size):
            tok += f" {int(size):,}"
        by_speller = any(
            c.startswith(f"{s}_bpb_lossless_by_speller_") and src[c].notna().any()
            for s in SCOPES["held-out"] for c in src.columns
        )
        rows.append({"arm": arm, "vocab": vocab, "vocab_oov": oov, "tokenizer": tok,
                     "exact": exact, "lowercase": lower.get(arm, False),
                     "by_speller": by_speller})
    return pd.DataFrame(rows, columns=FACT_COLUMNS)


# ------------------------------------------------------------------------------ cells


def seed_figure(done: pd.DataFrame, splits: Sequence[str], speller: str | None = None) -> pd.Series:
    """Each run's figure over ``splits`` from the split totals, byte-weighted: lossless
    (under ``speller`` where the record has one; = bpb for exact arms), indexed by seed."""
    num = pd.Series(0.0, index=done.index)
    den = pd.Series(0.0, index=done.index)
    for split in splits:
        fig = _col(done, f"{split}_bpb_lossless").fillna(_col(done, f"{split}_bpb"))
        if speller is not None:
            fig = _col(done, f"{split}_bpb_lossless_by_speller_{speller}").fillna(fig)
        nbytes = _col(done, f"{split}_bytes")
        num += fig * nbytes
        den += nbytes
    return pd.Series((num / den).to_numpy(), index=done["seed"].to_numpy()).dropna()


def _doc_cells(
    docs: pd.DataFrame, arms: Sequence[str], seeds: Sequence[int], splits: Sequence[str]
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """(nats + charges, bytes) as seeds x documents per arm, documents aligned by (split,
    doc_id) in the first arm's order; None unless every (arm, seed) has the same documents."""
    if not len(seeds):
        return None
    sub = docs[docs["arm"].isin(arms) & docs["seed"].isin(seeds) & docs["split"].isin(splits)]
    keys: list[Any] = []
    tables: dict[tuple[str, int], pd.DataFrame] = {}
    for arm in arms:
        for seed in seeds:
            g = sub[(sub["arm"] == arm) & (sub["seed"] == seed)]
            g = g.assign(_rank=g["split"].map({s: i for i, s in enumerate(splits)}))
            g = g.sort_values(["_rank", "doc"], kind="stable").set_index(["split", "doc_id"])
            if g.empty or g.index.has_duplicates or set(g["_rank"]) != set(range(len(splits))):
                return None
            if not keys:
                keys = list(g.index)
            elif len(g) != len(keys) or set(g.index) != set(keys):
                return None
            tables[(arm, seed)] = g
    nats, nbytes = [], []
    for arm in arms:
        rows = [tables[(arm, s)].loc[keys] for s in seeds]
        nats.append(np.array([(r["nats"] + r["charge"]).to_numpy(float) for r in rows]))
        nbytes.append(np.array([r["bytes"].to_numpy(float) for r in rows]))
    if any((b <= 0).any() for b in nbytes):
        return None
    return nats, nbytes


def _doc_seeds(docs: pd.DataFrame, arm: str, splits: Sequence[str]) -> set[int]:
    sub = docs[(docs["arm"] == arm) & docs["split"].isin(splits)]
    have = sub.groupby("seed")["split"].nunique()
    return {int(s) for s, n in have.items() if n == len(splits)}


# ------------------------------------------------------------------------------ comparisons


def _nan_row(keys: Iterable[str]) -> dict[str, Any]:
    return {k: math.nan for k in keys}


_NUM = ("bpb", "bpb_lo", "bpb_hi", "diff", "diff_lo", "diff_hi", "tost_lo", "tost_hi", "p")


def _own_figure(
    done: pd.DataFrame, docs: pd.DataFrame, arm: str, splits: Sequence[str], confidence: float
) -> dict[str, Any]:
    seeds = sorted(int(s) for s in done["seed"])
    cells = _doc_cells(docs, [arm], seeds, splits) if set(seeds) <= _doc_seeds(docs, arm, splits) else None
    if cells is not None:
        b = bootstrap_bpb(cells[0][0], cells[1][0], confidence)
        return {"bpb": b.estimate, "bpb_lo": b.lo, "bpb_hi": b.hi, "arm_seeds": len(seeds),
                "arm_docs": b.n_docs, "arm_method": BOOTSTRAP}
    mean, lo, hi = mean_ci(seed_figure(done, splits).to_numpy(), confidence)
    return {"bpb": mean, "bpb_lo": lo, "bpb_hi": hi, "arm_seeds": len(seeds), "arm_docs": 0,
            "arm_method": SEED_T}


def _versus(
    a_done: pd.DataFrame,
    r_done: pd.DataFrame,
    docs: pd.DataFrame,
    arm: str,
    ref: str,
    splits: Sequence[str],
    confidence: float,
) -> dict[str, Any]:
    common = sorted(set(a_done["seed"]) & set(r_done["seed"]))
    out: dict[str, Any] = {"n_seeds": len(common), "n_docs": 0, "method": "", "note": ""}
    with_docs = _doc_seeds(docs, arm, splits) & _doc_seeds(docs, ref, splits)
    cells = _doc_cells(docs, [arm, ref], common, splits) if set(common) <= with_docs else None
    if cells is not None:
        (an, rn), (ab, rb) = cells
        b = paired_bootstrap(an, rn, ab, rb, confidence)
        out.update(diff=b.estimate, diff_lo=b.lo, diff_hi=b.hi, tost_lo=b.tost_lo,
                   tost_hi=b.tost_hi, p=b.p_value, n_docs=b.n_docs, method=BOOTSTRAP)
        return out
    a = seed_figure(a_done, splits)
    r = seed_figure(r_done, splits)
    both = sorted(set(a.index) & set(r.index))
    out["n_seeds"] = len(both)
    if not both:
        out["note"] = "no seed in common"
        return out
    res = paired_diff(a.loc[both].to_numpy(), r.loc[both].to_numpy(), confidence)
    tost = paired_diff(a.loc[both].to_numpy(), r.loc[both].to_numpy(), TOST_CONFIDENCE)
    out.update(diff=res["mean_diff"], diff_lo=res["lo"], diff_hi=res["hi"], tost_lo=tost["lo"],
               tost_hi=tost["hi"], p=res["p_value"], method=SEED_T, note=str(res["note"]))
    return out


def _speller_shifts(
    a_done: pd.DataFrame, r_done: pd.DataFrame, seeds: Sequence[int], splits: Sequence[str],
    names: Sequence[str],
) -> dict[str, float]:
    """Per speller, the point difference on the common seeds from the split totals, and how
    far it lies from the difference under the records' own lossless figure."""
    def pooled(done: pd.DataFrame, speller: str | None) -> float:
        fig = seed_figure(done, splits, speller)
        return float(fig.loc[[s for s in seeds if s in fig.index]].mean())

    base = pooled(a_done, None) - pooled(r_done, None)
    return {k: pooled(a_done, k) - pooled(r_done, k) - base for k in names}


def _has_spellers(done: pd.DataFrame, splits: Sequence[str], names: Sequence[str]) -> bool:
    return any(_col(done, f"{s}_bpb_lossless_by_speller_{k}").notna().any()
               for s in splits for k in names)


def outcome(row: Mapping[str, Any], margin: float, names: Sequence[str] = (),
            alpha: float = ALPHA) -> tuple[str, bool]:
    """(what the row supports, equivalent within ±margin) for one arm-vs-reference row.

    Significant when the p-value (Holm-adjusted for a primary comparison) is below alpha
    and the CI excludes zero; then lower or higher by the sign. A row with per-speller
    columns (``diff_<k>`` ...) is decided only if every speller's interval agrees; else it
    depends on the speller. Equivalent only when every TOST interval lies inside the margin.
    """
    d, lo, hi = row.get("diff", math.nan), row.get("diff_lo", math.nan), row.get("diff_hi", math.nan)
    if not np.isfinite(d):
        return NO_COMPARISON, False
    ks = [k for k in names if np.isfinite(row.get(f"diff_{k}", math.nan))]
    ivs = [(lo, hi)] + [(row[f"diff_lo_{k}"], row[f"diff_hi_{k}"]) for k in ks]
    tosts = [(row.get("tost_lo", math.nan), row.get("tost_hi", math.nan))]
    tosts += [(row[f"tost_lo_{k}"], row[f"tost_hi_{k}"]) for k in ks]
    equiv = all(equivalent(a, b, margin) for a, b in tosts)
    signs = {np.sign(row[f"diff_{k}"]) for k in ks} | {np.sign(d)}
    if len(signs) > 1:
        return SPELLER_DEPENDENT, equiv
    p = row.get("p_holm") if row.get("primary") else row.get("p")
    p = math.nan if p is None else float(p)
    below = [np.isfinite(b) and b < 0 for _, b in ivs]
    above = [np.isfinite(a) and a > 0 for a, _ in ivs]
    significant = np.isfinite(p) and p < alpha
    if significant and (all(below) or all(above)):
        return (LOWER if all(below) else HIGHER), equiv
    if significant and (below[0] or above[0]):
        return SPELLER_DEPENDENT, equiv
    return NOT_SIGNIFICANT, equiv


def declared(
    primary: Sequence[str], arms: Sequence[str], reference_arm: str
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """study.json ``primary`` read against the arms present: (arms compared with the
    reference, pairs ``(a, b)`` compared with each other, entries not compared here).

    An entry is ``"<arm>"`` (against ``reference_arm``) or ``"<arm> vs <arm>"``. A pair
    whose second arm is the reference is the first form; an entry naming an arm without
    run directories, the reference alone, or an arm against itself is not compared.
    Order is kept and repeats are dropped.
    """
    present = set(arms)
    singles: list[str] = []
    pairs: list[tuple[str, str]] = []
    absent: list[str] = []
    for entry in primary:
        parts = str(entry).split()
        if len(parts) == 3 and parts[1] == PAIR_SEP.strip():
            a, b = parts[0], parts[2]
            if a in present and b in present and a != b:
                if b == reference_arm:
                    if a not in singles:
                        singles.append(a)
                elif (a, b) not in pairs:
                    pairs.append((a, b))
                continue
        elif len(parts) == 1 and parts[0] in present and parts[0] != reference_arm:
            if parts[0] not in singles:
                singles.append(parts[0])
            continue
        if str(entry) not in absent:
            absent.append(str(entry))
    return singles, pairs, absent


def _compare(
    a_done: pd.DataFrame,
    b_done: pd.DataFrame,
    docs: pd.DataFrame,
    a: str,
    b: str,
    splits: Sequence[str],
    confidence: float,
    names: Sequence[str],
) -> dict[str, Any]:
    """Arm a minus arm b on their per-document figures (``_versus``), with the per-speller
    columns when either arm prices `<unk>` spellings under several spellers."""
    out = _versus(a_done, b_done, docs, a, b, splits, confidence)
    if np.isfinite(out.get("diff", math.nan)) and (
        _has_spellers(a_done, splits, names) or _has_spellers(b_done, splits, names)
    ):
        common = sorted(set(a_done["seed"]) & set(b_done["seed"]))
        for k, shift in _speller_shifts(a_done, b_done, common, splits, names).items():
            for col in ("diff", "diff_lo", "diff_hi", "tost_lo", "tost_hi"):
                out[f"{col}_{k}"] = out[col] + shift
    return out


def heldout_comparisons(
    runs: pd.DataFrame,
    docs: pd.DataFrame,
    reference_arm: str,
    scope: str = "held-out",
    primary: Sequence[str] = (),
    margin: float = 0.02,
    confidence: float = 0.95,
    facts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per arm (reference first): its figure and the difference to the reference;
    then one row per declared pair ``"a vs b"`` of ``primary`` (column ``pair``).

    ``scope``: ``held-out`` (val and test documents pooled), ``val`` or ``test``. Columns:
    arm, scope, versus (the arm subtracted: the reference, or a pair's second arm), exact,
    figure (``bpb`` or ``lossless bpb``: an arm row's own figure, a pair row's compared
    figure, bpb only when both arms are exact), bpb/bpb_lo/bpb_hi (an arm's own figure and
    CI, arm_method/arm_seeds/arm_docs; NaN in pair rows), diff/diff_lo/diff_hi (arm minus
    versus, CI at ``confidence``), tost_lo/tost_hi (at ``TOST_CONFIDENCE``), p, p_holm
    (Holm over the primary comparisons: the ``primary`` arms and pairs, every non-reference
    arm when ``primary`` is empty), primary, pair, n_seeds/n_docs (the cells paired),
    method (``bootstrap`` or ``seed t``), note, and per speller k where an arm is charged
    diff_k, diff_lo_k ... (the interval moved by how far the speller's point difference
    lies from the records' own); then outcome and equivalent. See ``declared`` for how
    ``primary`` is read.
    """
    splits = SCOPES[scope]
    facts = arm_facts(runs) if facts is None else facts
    exact = dict(zip(facts["arm"], facts["exact"], strict=True))
    done = completed(runs)
    arms = arm_order(runs, reference_arm)
    singles, pairs, _ = declared(primary, arms, reference_arm)
    family = singles if primary else [a for a in arms if a != reference_arm]
    names = spellers(runs)
    r_done = done[done["arm"] == reference_arm]
    rows: list[dict[str, Any]] = []
    for arm in arms:
        a_done = done[done["arm"] == arm]
        row: dict[str, Any] = {"arm": arm, "scope": scope, "versus": reference_arm,
                               "exact": bool(exact.get(arm, False))}
        row.update(_nan_row(_NUM))
        row["figure"] = "bpb" if row["exact"] else "lossless bpb"
        row.update(n_seeds=0, n_docs=0, method="", note="", primary=arm in family, pair=False)
        if len(a_done):
            row.update(_own_figure(a_done, docs, arm, splits, confidence))
        if arm == reference_arm:
            row["note"] = "reference arm"
        elif len(a_done) and len(r_done):
            row.update(_compare(a_done, r_done, docs, arm, reference_arm, splits, confidence,
                                names))
        rows.append(row)
    for a, b in pairs:
        a_done, b_done = done[done["arm"] == a], done[done["arm"] == b]
        both = bool(exact.get(a, False)) and bool(exact.get(b, False))
        row = {"arm": a, "scope": scope, "versus": b, "exact": both}
        row.update(_nan_row(_NUM))
        row["figure"] = "bpb" if both else "lossless bpb"
        row.update(n_seeds=0, n_docs=0, method="", note="", primary=True, pair=True)
        if len(a_done) and len(b_done):
            row.update(_compare(a_done, b_done, docs, a, b, splits, confidence, names))
        else:
            row["note"] = "no completed runs"
        rows.append(row)
    df = pd.DataFrame(rows)
    in_family = df["primary"].to_numpy(bool)
    df["p_holm"] = math.nan
    df.loc[in_family, "p_holm"] = holm(df.loc[in_family, "p"].to_numpy(float))
    decided = [
        (REFERENCE, False) if r["arm"] == reference_arm and not r["pair"]
        else outcome(r, margin, names)
        for r in df.to_dict("records")
    ]
    df["outcome"] = [o for o, _ in decided]
    df["equivalent"] = [e for _, e in decided]
    return df


def arm_rows(comp: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``heldout_comparisons`` table that compare an arm with the reference
    (the reference's own row included)."""
    return comp[~comp["pair"].astype(bool)] if "pair" in comp.columns else comp


def pair_rows(comp: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``heldout_comparisons`` table that compare two declared arms."""
    return comp[comp["pair"].astype(bool)] if "pair" in comp.columns else comp.iloc[:0]


def comparison_figure(facts: pd.DataFrame, arm: str, ref: str) -> str:
    """The figure two arms are compared on: bpb when both are exact, else lossless bpb."""
    exact = dict(zip(facts["arm"], facts["exact"], strict=True))
    return "bpb" if exact.get(arm) and exact.get(ref) else "lossless bpb"


__all__ = [
    "ALPHA",
    "BOOTSTRAP",
    "FACT_COLUMNS",
    "HIGHER",
    "LOWER",
    "NOT_SIGNIFICANT",
    "NO_COMPARISON",
    "PAIR_SEP",
    "REFERENCE",
    "SCOPES",
    "SEED_T",
    "SPELLER_DEPENDENT",
    "arm_facts",
    "arm_rows",
    "comparison_figure",
    "declared",
    "heldout_comparisons",
    "outcome",
    "pair_rows",
    "seed_figure",
    "spellers",
]
