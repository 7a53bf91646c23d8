"""What each arm was given: budget, context, compute and the initial body, from the records.

A comparison of initializations is fair only if the arms saw the same data budget and
context and started from the same body; the Design section of the report shows what the
records say about each. Pure functions, DataFrames in and out; fields older records lack
come out NaN (shown as not recorded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from embinit.study.compare import SCOPES, seed_figure
from embinit.study.load import completed

DESIGN_COLUMNS = [
    "arm", "tokenizer", "budget", "epochs", "context", "block_tokens", "bytes_per_window",
    "train_flops", "init_tokens", "init_epochs", "init_wall_s", "init_flops", "total_flops",
]


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def _distinct(df: pd.DataFrame, col: str) -> str:
    if col not in df.columns:
        return ""
    return ", ".join(sorted({str(v) for v in df[col].dropna()}))


def design_table(runs: pd.DataFrame, facts: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per arm (means over completed seeds): the budget mode, epochs of the train split seen
    (records without ``train.epochs``: bytes seen / train bytes), the context mode, block in
    tokens and the bytes a window spans, training FLOPs, the initialization's compute (tokens,
    epochs, wall seconds, FLOPs; zero for scratch) and total FLOPs (init + training)."""
    done = completed(runs)
    tok = dict(zip(facts["arm"], facts["tokenizer"], strict=True))
    rows: list[dict[str, Any]] = []
    for arm in order:
        sub = done[done["arm"] == arm]
        epochs = _num(sub, "train_epochs").fillna(
            _num(sub, "train_bytes_seen") / _num(sub, "data_train_bytes")
        )
        train_flops = _mean(_num(sub, "train_flops"))
        init_flops = _mean(_num(sub, "init_compute_flops"))
        rows.append({
            "arm": arm,
            "tokenizer": tok.get(arm, ""),
            "budget": _distinct(sub, "train_budget"),
            "epochs": _mean(epochs),
            "context": _distinct(sub, "context_mode"),
            "block_tokens": _mean(_num(sub, "context_block_tokens")),
            "bytes_per_window": _mean(_num(sub, "context_bytes_per_window")),
            "train_flops": train_flops,
            "init_tokens": _mean(_num(sub, "init_compute_train_tokens")),
            "init_epochs": _mean(_num(sub, "init_compute_epochs")),
            "init_wall_s": _mean(_num(sub, "init_compute_wall_s")),
            "init_flops": init_flops,
            "total_flops": train_flops + init_flops,
        })
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


def body_init_check(runs: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Whether the arms start from the same body at each seed (``params.body_init_sha256``).

    Returns (answer, per seed): answer is ``yes`` (every completed run has a hash and, at each
    seed, all arms share it), ``no`` (some seed has two), ``partly recorded`` (equal where
    recorded, missing in some runs) or ``not recorded``; per seed: seed, arms, hashes
    (distinct values), missing (runs without one).
    """
    done = completed(runs)
    col = "params_body_init_sha256"
    hashes = done[col] if col in done.columns else pd.Series(None, index=done.index, dtype=object)
    rows = []
    for seed, g in done.assign(_h=hashes).groupby("seed", sort=True):
        have = g["_h"].dropna()
        rows.append({"seed": int(seed), "arms": int(g["arm"].nunique()),
                     "hashes": int(have.nunique()), "missing": int(len(g) - len(have))})
    per_seed = pd.DataFrame(rows, columns=["seed", "arms", "hashes", "missing"])
    if per_seed.empty or hashes.notna().sum() == 0:
        return "not recorded", per_seed
    if (per_seed["hashes"] > 1).any():
        return "no", per_seed
    return ("partly recorded" if per_seed["missing"].any() else "yes"), per_seed


def sliding_table(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per arm and split (means over completed seeds): the non-overlapping figure, the
    sliding-window one, their difference and the stride (tokens). Both are the like-for-like
    figure: ``bpb_sliding`` includes the lossless charges, as ``bpb_lossless`` does (= bpb
    for exact arms). Empty when no record has ``bpb_sliding``."""
    cols = ["arm", "split", "bpb", "bpb_sliding", "gain", "stride"]
    done = completed(runs)
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        for split in SCOPES["held-out"]:
            sliding = _num(sub, f"{split}_bpb_sliding")
            if sliding.isna().all():
                continue
            both = sliding.notna()
            lossless = _num(sub, f"{split}_bpb_lossless").fillna(_num(sub, f"{split}_bpb"))
            bpb = _mean(lossless[both])
            sl = _mean(sliding[both])
            rows.append({"arm": arm, "split": split, "bpb": bpb, "bpb_sliding": sl,
                         "gain": sl - bpb, "stride": _distinct(sub, f"{split}_sliding_stride")})
    return pd.DataFrame(rows, columns=cols)


def speller_table(runs: pd.DataFrame, order: Sequence[str], names: Sequence[str]) -> pd.DataFrame:
    """Per charged arm with per-speller figures and speller k: lossless bpb on val, test and
    held-out (pooled, byte-weighted), means over completed seeds."""
    cols = ["arm", "speller", "val", "test", "held-out"]
    done = completed(runs)
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        if not any(_num(sub, f"{s}_bpb_lossless_by_speller_{k}").notna().any()
                   for s in SCOPES["held-out"] for k in names):
            continue
        for k in names:
            row: dict[str, Any] = {"arm": arm, "speller": k}
            for scope, splits in SCOPES.items():
                fig = seed_figure(sub, splits, k)
                row[scope] = float(fig.mean()) if len(fig) else math.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


__all__ = ["DESIGN_COLUMNS", "body_init_check", "design_table", "sliding_table", "speller_table"]
