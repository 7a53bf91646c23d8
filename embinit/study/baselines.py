"""Count-based baselines and regime coordinates, as the report reads them from run records.

A GPT arm that scores worse than an n-gram model fitted on its own training tokens has not
yet learned what counting alone gives; a comparison between such arms is about a head start,
not about the seed's ~100M model. The producer scores interpolated Kneser–Ney models of
orders 2–5 on every held-out document (summary `baselines.ngram`, per document, in the
split's document order); this module pools them like the arms (val ∪ test, nats plus the
same lossless charges over the same bytes), sets each arm against the best n-gram of its
tokenizer (paired over documents × the arm's seeds), and tabulates the runs' regime
coordinates (summary `regime`) beside the seed's.

Arms share a baseline when they share a token stream: the same token cache and the same
train fraction (the n-gram counts the same train tokens the arm trains on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from embinit.record import COMPLETED
from embinit.regime import seed_coordinates
from embinit.study.load import AnalysisError
from embinit.study.stats import bpb_interval, paired_interval

HELDOUT = ("val", "test")
BEATS, BELOW, UNDECIDED = "beats", "below", "not distinguishable"
NGRAM_COLUMNS = ["stream", "tokenizer", "order", "bpb", "lo", "hi", "n_docs", "train_tokens",
                 "arms"]
VERSUS_COLUMNS = ["arm", "stream", "tokenizer", "order", "ngram_bpb", "arm_bpb", "diff", "lo",
                  "hi", "n_seeds", "n_docs", "outcome"]
REGIME_COLUMNS = ["arm", "tokens_per_nonembedding_param", "tokens_per_param", "epochs",
                  "embedding_share", "row_occurrences_median", "row_occurrences_p10",
                  "row_occurrences_mean", "rows_never_seen", "spelled_word_rate",
                  "beyond_fresh_epochs", "n_seeds"]


def stream_key(summary: Mapping[str, Any]) -> str:
    """The token stream a run trained on: its token cache entry and its train fraction."""
    cache = str((summary.get("data") or {}).get("token_cache") or "?").rstrip("/")
    frac = float((summary.get("arm_spec") or {}).get("train_fraction") or 1.0)
    return f"{cache.rsplit('/', 1)[-1]}@{frac:g}"


def _baseline_rows(summary: Mapping[str, Any], stream: str) -> list[dict[str, Any]]:
    ngram = (summary.get("baselines") or {}).get("ngram") or {}
    rows = []
    for order, by_split in (ngram.get("orders") or {}).items():
        for split in HELDOUT:
            res, base = by_split.get(split), summary.get(split) or {}
            if not res or base.get("doc_bytes") is None:
                continue
            nats, nbytes = res["doc_nats"], base["doc_bytes"]
            charges = base.get("doc_charge_nats") or [0.0] * len(nats)
            ids = base.get("doc_ids") or [None] * len(nats)
            if not len(nats) == len(nbytes) == len(charges) == len(ids):
                raise AnalysisError(
                    f"summary of {summary.get('arm')} seed {summary.get('seed')}: "
                    f"baselines.ngram order {order} {split} has {len(nats)} documents, the "
                    f"split {len(nbytes)}; the record is damaged — rerun it")
            rows += [{"stream": stream, "order": int(order), "split": split, "doc": i,
                      "doc_id": d, "nats": float(n), "charge": float(c), "bytes": int(b),
                      "train_tokens": int(ngram.get("train_tokens") or 0)}
                     for i, (d, n, c, b) in enumerate(zip(ids, nats, charges, nbytes,
                                                          strict=True))]
    return rows


def baseline_docs(summaries: Mapping[str, Mapping[str, Any]]) -> tuple[pd.DataFrame,
                                                                       dict[str, list[str]]]:
    """Per-document n-gram losses, one copy per token stream, and the arms of each stream.

    Every completed summary names its stream; the first one carrying `baselines` supplies
    the stream's rows (the baselines depend on the stream alone, not on the arm or seed).
    """
    rows: list[dict[str, Any]] = []
    arms: dict[str, list[str]] = {}
    seen: set[str] = set()
    for _, s in sorted(summaries.items()):
        if s.get("status") != COMPLETED:
            continue
        key = stream_key(s)
        if s.get("arm") not in arms.setdefault(key, []):
            arms[key].append(str(s.get("arm")))
        if key not in seen and s.get("baselines"):
            new = _baseline_rows(s, key)
            if new:
                rows += new
                seen.add(key)
    cols = ["stream", "order", "split", "doc", "doc_id", "nats", "charge", "bytes",
            "train_tokens"]
    return pd.DataFrame(rows, columns=cols), {k: v for k, v in arms.items() if k in seen}


def _held_out(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["split"].isin(HELDOUT)].sort_values(["split", "doc"], kind="stable")


def ngram_table(bdocs: pd.DataFrame, arms: Mapping[str, Sequence[str]],
                labels: Mapping[str, str], confidence: float = 0.95) -> pd.DataFrame:
    """Held-out bpb (val ∪ test, charges included) of every stream's n-gram orders, with a
    documents-only interval (a count model has no seed)."""
    rows = []
    for (stream, order), g in bdocs.groupby(["stream", "order"], sort=True):
        h = _held_out(g)
        iv = bpb_interval([(h["nats"] + h["charge"]).to_numpy()], h["bytes"].to_numpy(),
                          confidence)
        members = list(arms.get(stream, []))
        rows.append({"stream": stream, "tokenizer": labels.get(stream, stream),
                     "order": int(order), "bpb": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                     "n_docs": len(h), "train_tokens": int(h["train_tokens"].iloc[0]),
                     "arms": ", ".join(members)})
    return pd.DataFrame(rows, columns=NGRAM_COLUMNS)


def best_orders(table: pd.DataFrame) -> dict[str, int]:
    """The lowest-bpb order of each stream."""
    return {s: int(g.loc[g["bpb"].idxmin(), "order"]) for s, g in table.groupby("stream")}


def versus_ngram(docs: pd.DataFrame, bdocs: pd.DataFrame, arms: Mapping[str, Sequence[str]],
                 table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Each arm minus the best n-gram of its stream, over the same held-out documents and
    the arm's seeds (the n-gram's losses repeat on every seed row: its figure has no seed
    variance, the arm's does). Negative: the arm beats counting."""
    best = best_orders(table)
    labels = dict(zip(table["stream"], table["tokenizer"], strict=False))
    rows = []
    for stream, members in arms.items():
        if stream not in best:
            continue
        ref = _held_out(bdocs[(bdocs["stream"] == stream) & (bdocs["order"] == best[stream])])
        ref_cells = (ref["nats"] + ref["charge"]).to_numpy()
        ng = float(table[(table["stream"] == stream)
                         & (table["order"] == best[stream])]["bpb"].iloc[0])
        for arm in members:
            a = docs[(docs["arm"] == arm) & docs["split"].isin(HELDOUT)]
            seeds = sorted(a["seed"].unique())
            mats, ok = [], bool(seeds)
            for seed in seeds:
                cells = _held_out(a[a["seed"] == seed])
                same = (len(cells) == len(ref)
                        and (cells["bytes"].to_numpy() == ref["bytes"].to_numpy()).all())
                ok = ok and same
                mats.append((cells["nats"] + cells["charge"]).to_numpy() if same else None)
            if not ok:
                continue  # documents do not line up (another stream): no paired figure
            iv = paired_interval(np.vstack(mats), np.tile(ref_cells, (len(seeds), 1)),
                                 ref["bytes"].to_numpy(), confidence=confidence)
            outcome = BEATS if iv.hi < 0 else BELOW if iv.lo > 0 else UNDECIDED
            rows.append({"arm": arm, "stream": stream, "tokenizer": labels.get(stream, stream),
                         "order": best[stream], "ngram_bpb": ng, "arm_bpb": ng + iv.estimate,
                         "diff": iv.estimate, "lo": iv.lo, "hi": iv.hi, "n_seeds": len(seeds),
                         "n_docs": len(ref), "outcome": outcome})
    return pd.DataFrame(rows, columns=VERSUS_COLUMNS)


def regime_table(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Each arm's regime coordinates (summary `regime`), means over its completed seeds."""
    done = runs[runs["status"] == COMPLETED] if "status" in runs else runs
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        if not len(sub) or "regime_tokens_per_nonembedding_param" not in sub:
            continue
        row: dict[str, Any] = {"arm": arm, "n_seeds": len(sub)}
        for col in REGIME_COLUMNS[1:-1]:
            vals = pd.to_numeric(sub.get(f"regime_{col}"), errors="coerce") \
                if f"regime_{col}" in sub else pd.Series(dtype=float)
            row[col] = float(vals.mean()) if vals.notna().any() else math.nan
        row["beyond_fresh_epochs"] = bool(row["beyond_fresh_epochs"] > 0) \
            if not math.isnan(row["beyond_fresh_epochs"]) else False
        rows.append(row)
    return pd.DataFrame(rows, columns=REGIME_COLUMNS)


def seed_table() -> pd.DataFrame:
    """The seed's coordinates (GPT-2 small, BPE 50,257 / 100k words, 300M and 3B tokens)."""
    return pd.DataFrame(seed_coordinates())


__all__ = ["BEATS", "BELOW", "UNDECIDED", "baseline_docs", "best_orders", "ngram_table",
           "regime_table", "seed_table", "stream_key", "versus_ngram"]
