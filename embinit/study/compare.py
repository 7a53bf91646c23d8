"""Arms against the reference on the held-out documents: pure functions, tables out.

The figure compared is the one that is like for like across tokenizers: bpb for exact
arms (BPE; word-level with byte fallback), where it needs no external charge, and lossless
bpb for charged arms (closed-vocabulary word level, which is charged the spelling of its
``<unk>`` words and the whitespace its tokens drop). Per document, that is
``(nats + charges) / (ln 2 bytes)``, charges being zero for exact arms.

With per-document losses in the records, intervals and p-values combine a document
and a seed variance component with t at Welch-Satterthwaite degrees of freedom
(``embinit.study.stats.paired_interval``; the document component's df counts the
documents' effective number, column ``n_docs_eff``), documents paired by id (by position where a
record has no ids, their bytes checked either way). Without usable per-document losses
(older records; a charged record without its per-document charges; records that do not
align) they come from Student t over seeds alone, which ignores how few documents there
are, and the row says why; arms scored on different documents are not compared. Either way p-values are Holm-adjusted across the study's primary comparisons and
equivalence is TOST at the study's margin. The primary comparisons are declared in
study.json: an arm against the reference, or two arms against each other ("a vs b", e.g.
the init effect at a fixed tokenizer), compared the same way. ``heldout_comparisons``
returns one row per arm, then one per declared pair; ``outcome`` says what a row supports,
and the verdict sentences only put it in words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embinit.study.load import (
    COMPLETED,
    NO_DOC_LOSSES,
    arm_order,
    completed,
    first_value,
    numeric_col,
)
from embinit.study.stats import (
    TOST_CONFIDENCE,
    bpb_interval,
    equivalent,
    holm,
    mean_ci,
    paired_diff,
    paired_interval,
)

SCOPES: dict[str, tuple[str, ...]] = {"held-out": ("val", "test"), "val": ("val",), "test": ("test",)}
COMPONENTS = "variance components"  # documents x seeds, see stats.paired_interval
SEED_T = "seed t"
# Why a comparison's documents were not paired (column ``doc_status``; empty when paired).
DOCS_MISSING = "no documents"  # an arm's records lack usable per-document losses: seed t
DOCS_REFUSED = "not paired"  # the records cannot be aligned document by document: seed t
DOCS_INCONSISTENT = "inconsistent"  # not the same held-out documents: no comparison
ALPHA = 0.05
# What a row supports (column ``outcome``).
LOWER, HIGHER, NOT_SIGNIFICANT = "lower", "higher", "not significant"
SPELLER_DEPENDENT, NO_COMPARISON, REFERENCE = "depends on the speller", "no comparison", "reference"
PAIR_SEP = " vs "  # study.json primary: "<arm> vs <arm>"






# ------------------------------------------------------------------------------ arm facts


def spellers(runs: pd.DataFrame) -> list[str]:
    """The spellers any record prices `<unk>` spellings under (``*_bpb_lossless_by_speller_*``)."""
    found = set()
    for split in SCOPES["held-out"]:
        prefix = f"{split}_bpb_lossless_by_speller_"
        found |= {c.removeprefix(prefix) for c in runs.columns if c.startswith(prefix)}
    return sorted(found, key=lambda k: (k != "unigram", k))


def is_exact(flag: Any, vocab: Any, oov: Any) -> bool:
    """The record's ``exact`` flag; without one, exact for BPE and for word level with
    ``vocab_oov == "bytes"`` (byte fallback), charged otherwise."""
    if flag is not None and not (isinstance(flag, float) and math.isnan(flag)):
        return bool(flag)
    return vocab == "bpe" or oov == "bytes"


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
        vocab, oov, size = first_value(src, "vocab"), first_value(src, "vocab_oov"), first_value(src, "vocab_size")
        exact = is_exact(first_value(src, "exact"), vocab, oov)
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
        fig = numeric_col(done, f"{split}_bpb_lossless").fillna(numeric_col(done, f"{split}_bpb"))
        if speller is not None:
            fig = numeric_col(done, f"{split}_bpb_lossless_by_speller_{speller}").fillna(fig)
        nbytes = numeric_col(done, f"{split}_bytes")
        num += fig * nbytes
        den += nbytes
    return pd.Series((num / den).to_numpy(), index=done["seed"].to_numpy()).dropna()


@dataclass(frozen=True)
class _ArmDocs:
    """One arm's documents over some seeds and splits: ``tables[i]`` is seed i's rows in the
    order of ``keys`` ((split, doc_id) when every run records ids, else (split, position))."""

    arm: str
    keys: list[tuple[str, Any]]
    with_ids: bool
    tables: list[pd.DataFrame]


@dataclass(frozen=True)
class _Cells:
    """(nats + charges) and bytes as seeds x documents per arm, and how they were paired."""

    nats: list[np.ndarray]
    nbytes: list[np.ndarray]
    note: str


def _gap(gaps: pd.DataFrame | None, arm: str, seed: int, split: str) -> str:
    if gaps is not None and len(gaps):
        g = gaps[(gaps["arm"] == arm) & (gaps["seed"] == seed) & (gaps["split"] == split)]
        if len(g):
            return str(g["reason"].iloc[0])
    return NO_DOC_LOSSES


def _split_keys(keys: Sequence[tuple[str, Any]], split: str) -> list[Any]:
    return [k for s, k in keys if s == split]


def _arm_docs(
    docs: pd.DataFrame, gaps: pd.DataFrame | None, arm: str, seeds: Sequence[int],
    splits: Sequence[str],
) -> tuple[_ArmDocs | None, str, str]:
    """(the arm's documents, "", "") or (None, doc status, why) when its records cannot be
    paired document by document over these seeds and splits."""
    sub = docs[(docs["arm"] == arm) & docs["split"].isin(splits)]
    lacking = [(s, sp) for s in seeds for sp in splits
               if not ((sub["seed"] == s) & (sub["split"] == sp)).any()]
    if lacking:
        reasons = {_gap(gaps, arm, s, sp) for s, sp in lacking}
        if len(lacking) == len(seeds) * len(splits) and len(reasons) == 1:
            return None, DOCS_MISSING, f"{arm}: {reasons.pop()}"
        s, sp = lacking[0]
        return None, DOCS_MISSING, f"{arm} (seed {s}, {sp}): {_gap(gaps, arm, s, sp)}"
    rank = {sp: i for i, sp in enumerate(splits)}
    tables = []
    for s in seeds:
        g = sub[sub["seed"] == s]
        tables.append(g.assign(_rank=g["split"].map(rank)).sort_values(["_rank", "doc"],
                                                                       kind="stable"))
    with_ids = all(g["doc_id"].notna().all() for g in tables)
    col = "doc_id" if with_ids else "doc"
    for s, g in zip(seeds, tables, strict=True):
        dup = g[g.duplicated(["split", col], keep=False)]
        if len(dup):
            what = f"document id {dup[col].iloc[0]}" if with_ids else f"position {dup[col].iloc[0]}"
            return None, DOCS_REFUSED, (
                f"{arm} (seed {s}, {dup['split'].iloc[0]}): {what} appears more than once; the "
                "record is damaged"
            )
    keys = list(zip(tables[0]["split"], tables[0][col], strict=True))
    aligned = []
    for s, g in zip(seeds, tables, strict=True):
        for sp in splits:
            mine = _split_keys(list(zip(g["split"], g[col], strict=True)), sp)
            first = _split_keys(keys, sp)
            if set(mine) != set(first):
                return None, DOCS_INCONSISTENT, (
                    f"{arm}: seeds {seeds[0]} and {s} were scored on different {sp} documents "
                    f"({len(first)} and {len(mine)} documents, {len(set(first) ^ set(mine))} "
                    "not in both)"
                )
        g = g.set_index(["split", col]).loc[keys].reset_index()
        if aligned:
            first, mine = aligned[0]["bytes"].to_numpy(), g["bytes"].to_numpy()
            if not np.array_equal(first, mine):
                bad = int(np.flatnonzero(first != mine)[0])
                sp, k = keys[bad]
                return None, DOCS_INCONSISTENT if with_ids else DOCS_REFUSED, (
                    f"{arm}: document {k} of {sp} has {int(first[bad])} bytes at seed "
                    f"{seeds[0]} but {int(mine[bad])} at seed {s}"
                )
        aligned.append(g)
    return _ArmDocs(arm, keys, with_ids, aligned), "", ""


def _mismatch(a: _ArmDocs, b: _ArmDocs, splits: Sequence[str]) -> tuple[str, str]:
    """("", "") when b's documents are a's, else (doc status, why)."""
    for sp in splits:
        ka, kb = _split_keys(a.keys, sp), _split_keys(b.keys, sp)
        if a.with_ids and b.with_ids and set(ka) != set(kb):
            return DOCS_INCONSISTENT, (
                f"{a.arm} and {b.arm} were scored on different {sp} documents "
                f"({len(set(ka) - set(kb))} ids only in {a.arm}, {len(set(kb) - set(ka))} "
                f"only in {b.arm}): the records do not describe the same held-out text"
            )
        if len(ka) != len(kb):
            return DOCS_REFUSED, (
                f"{_no_ids(a, b)} and the arms have different numbers of {sp} documents "
                f"({len(ka)} and {len(kb)}), so they cannot be paired by position"
            )
    return "", ""


def _no_ids(*arms: _ArmDocs) -> str:
    who = [d.arm for d in arms if not d.with_ids]
    return f"{', '.join(who)} record{'s' if len(who) == 1 else ''} no document ids"


def _doc_cells(
    docs: pd.DataFrame, gaps: pd.DataFrame | None, arms: Sequence[str], seeds: Sequence[int],
    splits: Sequence[str],
) -> tuple[_Cells | None, str, str]:
    """Per arm, seeds x documents of (nats + charges) and of bytes, the documents in the
    first arm's order; or (None, doc status, why not).

    Documents pair by (split, id) when every run records ids, else by position within the
    split (said in the note). A paired document must have the same bytes in both arms (the
    same text): a mismatch means the records are misaligned, and they are not paired.
    """
    found: list[_ArmDocs] = []
    for arm in arms:
        d, status, why = _arm_docs(docs, gaps, arm, seeds, splits)
        if d is None:
            return None, status, why
        found.append(d)
    note = ""
    if len(found) == 2:
        a, b = found
        status, why = _mismatch(a, b, splits)
        if status:
            return None, status, why
        by_id = a.with_ids and b.with_ids
        if by_id:
            b = _ArmDocs(b.arm, a.keys, True,
                         [t.set_index(["split", "doc_id"]).loc[a.keys].reset_index()
                          for t in b.tables])
        ab, bb = a.tables[0]["bytes"].to_numpy(), b.tables[0]["bytes"].to_numpy()
        if not np.array_equal(ab, bb):
            bad = int(np.flatnonzero(ab != bb)[0])
            sp, k = a.keys[bad]
            if by_id:
                return None, DOCS_INCONSISTENT, (
                    f"document {k} of {sp} has {int(ab[bad])} bytes in {a.arm} but "
                    f"{int(bb[bad])} in {b.arm}: the same id names different texts"
                )
            return None, DOCS_REFUSED, (
                f"{_no_ids(a, b)}, and by position document {k} of {sp} has {int(ab[bad])} "
                f"bytes in {a.arm} but {int(bb[bad])} in {b.arm}: the positions do not align"
            )
        if not by_id:
            note = f"paired by position ({_no_ids(a, b)}; every document's bytes agree)"
        found = [a, b]
    nats = [np.array([(t["nats"] + t["charge"]).to_numpy(float) for t in d.tables])
            for d in found]
    nbytes = [np.array([t["bytes"].to_numpy(float) for t in d.tables]) for d in found]
    if any((x <= 0).any() for x in nbytes):
        return None, DOCS_REFUSED, "a document with no bytes: the record is damaged"
    return _Cells(nats, nbytes, note), "", ""


# ------------------------------------------------------------------------------ comparisons


def _nan_row(keys: Iterable[str]) -> dict[str, Any]:
    return {k: math.nan for k in keys}


_NUM = ("bpb", "bpb_lo", "bpb_hi", "arm_df", "diff", "diff_lo", "diff_hi", "df", "tost_lo",
        "tost_hi", "p")


def _own_figure(
    done: pd.DataFrame, docs: pd.DataFrame, gaps: pd.DataFrame | None, arm: str,
    splits: Sequence[str], confidence: float,
) -> dict[str, Any]:
    seeds = sorted(int(s) for s in done["seed"])
    cells, status, why = _doc_cells(docs, gaps, [arm], seeds, splits)
    if cells is not None:
        b = bpb_interval(cells.nats[0], cells.nbytes[0], confidence)
        return {"bpb": b.estimate, "bpb_lo": b.lo, "bpb_hi": b.hi, "arm_df": b.df,
                "arm_seeds": len(seeds), "arm_docs": b.n_docs, "arm_docs_eff": b.n_docs_eff,
                "arm_method": COMPONENTS, "arm_doc_status": "", "arm_note": cells.note}
    mean, lo, hi = mean_ci(seed_figure(done, splits).to_numpy(), confidence)
    return {"bpb": mean, "bpb_lo": lo, "bpb_hi": hi,
            "arm_df": len(seeds) - 1 if np.isfinite(lo) else math.nan, "arm_seeds": len(seeds),
            "arm_docs": 0, "arm_docs_eff": math.nan, "arm_method": SEED_T,
            "arm_doc_status": status, "arm_note": why}


def _versus(
    a_done: pd.DataFrame,
    r_done: pd.DataFrame,
    docs: pd.DataFrame,
    gaps: pd.DataFrame | None,
    arm: str,
    ref: str,
    splits: Sequence[str],
    confidence: float,
) -> dict[str, Any]:
    common = sorted(int(s) for s in set(a_done["seed"]) & set(r_done["seed"]))
    out: dict[str, Any] = {"n_seeds": len(common), "n_docs": 0, "n_docs_eff": math.nan,
                           "method": "", "note": "", "doc_status": ""}
    if not common:
        out["note"] = "no seed in common"
        return out
    cells, status, why = _doc_cells(docs, gaps, [arm, ref], common, splits)
    if cells is not None:
        (an, rn), (ab, rb) = cells.nats, cells.nbytes
        b = paired_interval(an, rn, ab, rb, confidence)
        out.update(diff=b.estimate, diff_lo=b.lo, diff_hi=b.hi, df=b.df, tost_lo=b.tost_lo,
                   tost_hi=b.tost_hi, p=b.p_value, n_docs=b.n_docs, n_docs_eff=b.n_docs_eff,
                   method=COMPONENTS, note=cells.note)
        return out
    out.update(doc_status=status, note=why)
    if status == DOCS_INCONSISTENT:
        return out  # not the same held-out text: no figure of the difference is like for like
    a = seed_figure(a_done, splits)
    r = seed_figure(r_done, splits)
    both = sorted(set(a.index) & set(r.index))
    out["n_seeds"] = len(both)
    if not both:
        out["note"] = "; ".join(x for x in (why, "no seed in common with the figure") if x)
        return out
    res = paired_diff(a.loc[both].to_numpy(), r.loc[both].to_numpy(), confidence)
    tost = paired_diff(a.loc[both].to_numpy(), r.loc[both].to_numpy(), TOST_CONFIDENCE)
    out.update(diff=res["mean_diff"], diff_lo=res["lo"], diff_hi=res["hi"],
               df=float(res["df"]) if np.isfinite(res["lo"]) else math.nan,
               tost_lo=tost["lo"], tost_hi=tost["hi"], p=res["p_value"], method=SEED_T,
               note="; ".join(x for x in (why, str(res["note"])) if x))
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
    return any(numeric_col(done, f"{s}_bpb_lossless_by_speller_{k}").notna().any()
               for s in splits for k in names)


def outcome(row: Mapping[str, Any], margin: float, names: Sequence[str] = (),
            alpha: float = ALPHA) -> tuple[str, bool]:
    """(what the row supports, equivalent within ±margin) for one comparison row.

    Significant when the p-value (Holm-adjusted for a primary comparison) is below alpha
    and the CI excludes zero; then lower or higher by the sign. A result that is not
    significant is just that. A significant row with per-speller columns (``diff_<k>`` ...)
    is decided only if every speller's interval excludes zero on the same side; else it
    depends on the speller. Equivalent only when every TOST interval lies inside the margin.
    """
    d, lo, hi = row.get("diff", math.nan), row.get("diff_lo", math.nan), row.get("diff_hi", math.nan)
    if not np.isfinite(d):
        return NO_COMPARISON, False
    ks = [k for k in names if np.isfinite(row.get(f"diff_{k}", math.nan))]
    tosts = [(row.get("tost_lo", math.nan), row.get("tost_hi", math.nan))]
    tosts += [(row[f"tost_lo_{k}"], row[f"tost_hi_{k}"]) for k in ks]
    equiv = all(equivalent(a, b, margin) for a, b in tosts)
    p = row.get("p_holm") if row.get("primary") else row.get("p")
    p = math.nan if p is None else float(p)
    if not (np.isfinite(p) and p < alpha):
        return NOT_SIGNIFICANT, equiv
    below, above = np.isfinite(hi) and hi < 0, np.isfinite(lo) and lo > 0
    if not (below or above):
        return NOT_SIGNIFICANT, equiv
    for k in ks:
        k_lo, k_hi = row[f"diff_lo_{k}"], row[f"diff_hi_{k}"]
        same = (np.isfinite(k_hi) and k_hi < 0) if below else (np.isfinite(k_lo) and k_lo > 0)
        if not same:
            return SPELLER_DEPENDENT, equiv
    return (LOWER if below else HIGHER), equiv


def declared(
    primary: Sequence[str], arms: Sequence[str], reference_arm: str
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """study.json ``primary`` read against the arms present: (arms compared with the
    reference, pairs ``(a, b)`` compared with each other, entries not compared here).

    An entry is ``"<arm>"`` (against ``reference_arm``) or ``"<arm> vs <arm>"``. A pair
    with the reference on either side is the first form (``"a"``, ``"a vs <reference>"``
    and ``"<reference> vs a"`` are one comparison, shown as a minus the reference), and
    ``"b vs a"`` after ``"a vs b"`` is the same pair; an entry naming an arm without run
    directories, the reference alone, or an arm against itself is not compared. Order is
    kept and every comparison is counted once.
    """
    present = set(arms)
    singles: list[str] = []
    pairs: list[tuple[str, str]] = []
    absent: list[str] = []
    for entry in primary:
        parts = str(entry).split()
        single = None
        if len(parts) == 3 and parts[1] == PAIR_SEP.strip():
            a, b = parts[0], parts[2]
            if a in present and b in present and a != b:
                if reference_arm in (a, b):
                    single = b if a == reference_arm else a
                else:
                    if (a, b) not in pairs and (b, a) not in pairs:
                        pairs.append((a, b))
                    continue
        elif len(parts) == 1 and parts[0] in present and parts[0] != reference_arm:
            single = parts[0]
        if single is not None:
            if single not in singles:
                singles.append(single)
            continue
        if str(entry) not in absent:
            absent.append(str(entry))
    return singles, pairs, absent


def _compare(
    a_done: pd.DataFrame,
    b_done: pd.DataFrame,
    docs: pd.DataFrame,
    gaps: pd.DataFrame | None,
    a: str,
    b: str,
    splits: Sequence[str],
    confidence: float,
    names: Sequence[str],
) -> dict[str, Any]:
    """Arm a minus arm b on their per-document figures (``_versus``), with the per-speller
    columns when either arm prices `<unk>` spellings under several spellers."""
    out = _versus(a_done, b_done, docs, gaps, a, b, splits, confidence)
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
    gaps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per arm (reference first): its figure and the difference to the reference;
    then one row per declared pair ``"a vs b"`` of ``primary`` (column ``pair``).

    ``scope``: ``held-out`` (val and test documents pooled), ``val`` or ``test``. Columns:
    arm, scope, versus (the arm subtracted: the reference, or a pair's second arm), exact,
    figure (``bpb`` or ``lossless bpb``: an arm row's own figure, a pair row's compared
    figure, bpb only when both arms are exact), bpb/bpb_lo/bpb_hi/arm_df (an arm's own
    figure, CI and the t quantile's degrees of freedom; arm_method, arm_seeds, arm_docs,
    arm_doc_status, arm_note; NaN in pair rows), diff/diff_lo/diff_hi/df (arm minus versus,
    CI at ``confidence``, its degrees of freedom), tost_lo/tost_hi (at ``TOST_CONFIDENCE``),
    p, p_holm (Holm over the primary comparisons: the ``primary`` arms and pairs, every
    non-reference arm when ``primary`` is empty; a primary comparison without a p-value
    counts in the family as p = 1 and keeps a NaN p_holm), primary, pair, n_seeds/n_docs
    (the cells paired), n_docs_eff (their effective number of documents,
    ``stats.effective_docs``: the D of the document component's df; arm_docs_eff for an arm's
    own figure; NaN without per-document losses), method (``variance components`` or ``seed t``), doc_status (why the
    documents were not paired: ``DOCS_MISSING``, ``DOCS_REFUSED`` (both seed t),
    ``DOCS_INCONSISTENT`` (no comparison); empty when paired), note (that reason, or how the
    documents were paired), and per speller k where an arm is charged diff_k, diff_lo_k ...
    (the interval moved by how far the speller's point difference lies from the records'
    own); then outcome and equivalent. ``gaps``: ``load.load_doc_gaps``, why a run has no
    per-document rows. See ``declared`` for how ``primary`` is read.
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
        row.update(n_seeds=0, n_docs=0, n_docs_eff=math.nan, method="", doc_status="", note="",
                   arm_seeds=0, arm_docs=0, arm_docs_eff=math.nan, arm_method="",
                   arm_doc_status="", arm_note="", primary=arm in family, pair=False)
        if len(a_done):
            row.update(_own_figure(a_done, docs, gaps, arm, splits, confidence))
        if arm == reference_arm:
            row["note"] = "reference arm"
        elif len(a_done) and len(r_done):
            row.update(_compare(a_done, r_done, docs, gaps, arm, reference_arm, splits,
                                confidence, names))
        rows.append(row)
    for a, b in pairs:
        a_done, b_done = done[done["arm"] == a], done[done["arm"] == b]
        both = bool(exact.get(a, False)) and bool(exact.get(b, False))
        row = {"arm": a, "scope": scope, "versus": b, "exact": both}
        row.update(_nan_row(_NUM))
        row["figure"] = "bpb" if both else "lossless bpb"
        row.update(n_seeds=0, n_docs=0, n_docs_eff=math.nan, method="", doc_status="", note="",
                   primary=True, pair=True)
        if len(a_done) and len(b_done):
            row.update(_compare(a_done, b_done, docs, gaps, a, b, splits, confidence, names))
        else:
            row["note"] = "no completed runs"
        rows.append(row)
    df = pd.DataFrame(rows)
    in_family = df["primary"].to_numpy(bool)
    df["p_holm"] = math.nan
    # Every declared comparison counts in m; one without a p-value enters as p = 1.
    p_family = df.loc[in_family, "p"].to_numpy(float)
    adjusted = holm(np.where(np.isfinite(p_family), p_family, 1.0))
    df.loc[in_family, "p_holm"] = np.where(np.isfinite(p_family), adjusted, math.nan)
    decided = [
        (REFERENCE, False) if r["arm"] == reference_arm and not r["pair"]
        else outcome(r, margin, names)
        for r in df.to_dict("records")
    ]
    df["outcome"] = [o for o, _ in decided]
    df["equivalent"] = [e for _, e in decided]
    return df


def compare_arms(
    runs: pd.DataFrame,
    docs: pd.DataFrame,
    a: str,
    b: str,
    scope: str = "held-out",
    confidence: float = 0.95,
    gaps: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Arm a minus arm b on the like-for-like figure, as a ``heldout_comparisons`` row would
    give it (diff, diff_lo, diff_hi, df, tost_lo, tost_hi, p, n_seeds, n_docs, n_docs_eff,
    method, doc_status, note); diff NaN with a note when either arm has no completed run."""
    done = completed(runs)
    a_done, b_done = done[done["arm"] == a], done[done["arm"] == b]
    if not len(a_done) or not len(b_done):
        missing = [x for x, d in ((a, a_done), (b, b_done)) if not len(d)]
        return {**_nan_row(_NUM), "n_seeds": 0, "n_docs": 0, "n_docs_eff": math.nan,
                "method": "", "doc_status": "",
                "note": f"no completed runs of {', '.join(missing)}"}
    out = {**_nan_row(_NUM), **_versus(a_done, b_done, docs, gaps, a, b, SCOPES[scope],
                                       confidence)}
    return out


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
    "COMPONENTS",
    "DOCS_INCONSISTENT",
    "DOCS_MISSING",
    "DOCS_REFUSED",
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
    "compare_arms",
    "comparison_figure",
    "declared",
    "heldout_comparisons",
    "is_exact",
    "outcome",
    "pair_rows",
    "seed_figure",
    "spellers",
]
