"""From run records to tidy tables: pure functions, DataFrames in, DataFrames out.

Every function here takes what ``embinit.study.load`` read (the runs table, the
curves, the configs) and returns a table the report shows; nothing reads or writes
files, so each is tested on fabricated records. Means are over completed runs only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from embinit.config import ModelConfig
from embinit.study.load import (
    COMPLETED,
    DIVERGED,
    HEADLINE_METRICS,
    AnalysisError,
    arm_order,
    completed,
    first_value,
    numeric_col,
)
from embinit.study.shapes import model_shape
from embinit.study.stats import mean_ci, paired_diff

PARAM_KEYS = ("total", "embedding", "output_head", "position", "non_embedding", "body")






def _check_unique_seeds(done: pd.DataFrame) -> None:
    dup = done[done.duplicated(["arm", "seed"], keep=False)]
    if len(dup):
        shown = ", ".join(
            f"{a} seed {s} ({d})"
            for a, s, d in dup[["arm", "seed", "run_dir"]].itertuples(index=False)
        )
        raise AnalysisError(
            f"two completed runs claim the same arm and seed: {shown}; pairing by seed needs "
            "one run per (arm, seed) — move the stale run directory out of the study"
        )


# ------------------------------------------------------------------------------ summaries


def arm_summary(
    runs: pd.DataFrame,
    reference_arm: str,
    metrics: Sequence[str] = HEADLINE_METRICS,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per arm: counts, mean and CI of each metric, and the paired difference vs reference.

    Columns: arm, vocab, vocab_oov, exact (the records' flags, None where absent), init,
    n_runs, n_seeds (completed runs), n_diverged,
    n_incomplete, seeds; for each metric m: ``m_mean, m_lo, m_hi, m_n`` over the
    arm's completed runs, and ``m_diff, m_diff_lo, m_diff_hi, m_p, m_diff_n,
    m_diff_note``: arm minus reference, paired on the seeds both arms completed
    (NaN for the reference itself). Rows: reference first, then arms by name.
    """
    done = completed(runs)
    _check_unique_seeds(done)
    ref = done[done["arm"] == reference_arm]
    rows: list[dict[str, Any]] = []
    for arm in arm_order(runs, reference_arm):
        everything = runs[runs["arm"] == arm]
        sub = done[done["arm"] == arm]
        n_div = int((everything["status"] == DIVERGED).sum())
        row: dict[str, Any] = {
            "arm": arm,
            "vocab": first_value(everything, "vocab"),
            "vocab_oov": first_value(everything, "vocab_oov"),
            "exact": first_value(sub if len(sub) else everything, "exact"),
            "init": first_value(everything, "init"),
            "n_runs": len(everything),
            "n_seeds": len(sub),
            "n_diverged": n_div,
            "n_incomplete": len(everything) - len(sub) - n_div,
            "seeds": ",".join(str(s) for s in sorted(sub["seed"])),
        }
        for m in metrics:
            vals = numeric_col(sub, m).dropna()
            mean, lo, hi = mean_ci(vals.to_numpy(), confidence)
            row.update({f"{m}_mean": mean, f"{m}_lo": lo, f"{m}_hi": hi, f"{m}_n": len(vals)})
            row.update(_paired_vs_reference(sub, ref, m, arm == reference_arm, confidence))
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_vs_reference(
    sub: pd.DataFrame, ref: pd.DataFrame, metric: str, is_reference: bool, confidence: float
) -> dict[str, Any]:
    keys = ("diff", "diff_lo", "diff_hi", "p")
    out: dict[str, Any] = {f"{metric}_{k}": math.nan for k in keys}
    out[f"{metric}_diff_n"] = 0
    if is_reference:
        out[f"{metric}_diff_note"] = "reference arm"
        return out
    a = pd.DataFrame({"seed": sub["seed"], "a": numeric_col(sub, metric)}).dropna()
    b = pd.DataFrame({"seed": ref["seed"], "b": numeric_col(ref, metric)}).dropna()
    pairs = a.merge(b, on="seed").sort_values("seed")
    res = paired_diff(pairs["a"].to_numpy(), pairs["b"].to_numpy(), confidence)
    notes = [str(res["note"])] if res["note"] else []
    if len(pairs) < max(len(a), len(b)):
        common = ",".join(str(s) for s in pairs["seed"]) or "none"
        notes.append(f"paired on common seeds only: {common}")
    out.update(
        {
            f"{metric}_diff": res["mean_diff"],
            f"{metric}_diff_lo": res["lo"],
            f"{metric}_diff_hi": res["hi"],
            f"{metric}_p": res["p_value"],
            f"{metric}_diff_n": int(res["n"]),  # type: ignore[call-overload]
            f"{metric}_diff_note": "; ".join(notes),
        }
    )
    return out


def curve_band(
    curves: pd.DataFrame,
    x: str = "bytes_seen",
    y: str = "val_bpb",
    confidence: float = 0.95,
    completed_only: bool = True,
) -> pd.DataFrame:
    """Mean and CI of ``y`` across seeds at each logged step, per arm.

    Seeds are aligned on ``step``; only steps every seed of the arm logged ``y`` at are
    kept, so each point averages the same runs. The x position is the step itself or,
    for another column (bytes_seen, tokens_seen), its mean over the seeds at that step.
    Columns: arm, step, <x> (unless x is step), n, mean, lo, hi; lo/hi are NaN with one seed.
    """
    cols = ["arm", "step"] + ([x] if x != "step" else []) + ["n", "mean", "lo", "hi"]
    df = curves
    if completed_only and "status" in df.columns:
        df = df[df["status"] == COMPLETED]
    df = df.dropna(subset=[y])
    rows: list[dict[str, Any]] = []
    for arm, arm_df in df.groupby("arm", sort=True):
        n_seeds = arm_df["seed"].nunique()
        for step, g in arm_df.groupby("step", sort=True):
            if g["seed"].nunique() < n_seeds:
                continue
            mean, lo, hi = mean_ci(g[y].to_numpy(dtype="float64"), confidence)
            row: dict[str, Any] = {"arm": arm, "step": int(step)}
            if x != "step":
                row[x] = float(g[x].mean())
            row.update(n=len(g), mean=mean, lo=lo, hi=hi)
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _per_arm_means(
    runs: pd.DataFrame, columns: Mapping[str, str], order: Iterable[str]
) -> pd.DataFrame:
    """Mean over each arm's completed runs of ``columns`` (source -> output name)."""
    done = completed(runs)
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        row: dict[str, Any] = {"arm": arm, "n_seeds": len(sub)}
        for src, name in columns.items():
            vals = numeric_col(sub, src).dropna()
            row[name] = float(vals.mean()) if len(vals) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["arm", "n_seeds", *columns.values()])


def _stack_parts(
    total: float, embedding: float, output_head: float, position: float, tied: bool
) -> dict[str, float]:
    """Split a parameter count into parts that add up to ``total``.

    A tied output head shares the embedding matrix, so it adds nothing; ``body`` is
    what remains (the transformer blocks and the final norm).
    """
    head = 0.0 if tied else output_head
    return {
        "embedding": embedding,
        "output_head": head,
        "position": position,
        "body": total - embedding - head - position,
        "total": total,
        "vocab_share": (embedding + head) / total if total else math.nan,
    }


def param_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Parameter counts per arm from the records, as stackable parts that sum to the total.

    Columns: arm, vocab_size, tied, embedding, output_head (0 when tied), position,
    body (= total - embedding - output_head - position), total, vocab_share
    ((embedding + output_head) / total). Uses a completed run where one exists.
    """
    cols = [
        "arm",
        "vocab_size",
        "tied",
        "embedding",
        "output_head",
        "position",
        "body",
        "total",
        "vocab_share",
    ]
    if "params_total" not in runs.columns:
        return pd.DataFrame(columns=cols)
    have = runs[numeric_col(runs, "params_total").notna()].copy()
    have["_pref"] = (have["status"] != COMPLETED).astype(int)
    rows = []
    for arm in arm_order(have):
        r = have[have["arm"] == arm].sort_values(["_pref", "seed"], kind="stable").iloc[0]

        def num(col: str, r: pd.Series = r) -> float:
            v = pd.to_numeric(r.get(col), errors="coerce")
            return 0.0 if pd.isna(v) else float(v)

        tied_val = r.get("model_config_tie_embeddings")
        tied = (
            bool(tied_val)
            if tied_val is not None and not pd.isna(tied_val)
            else num("params_output_head") == 0
        )
        parts = _stack_parts(
            num("params_total"),
            num("params_embedding"),
            num("params_output_head"),
            num("params_position"),
            tied,
        )
        rows.append({"arm": arm, "vocab_size": int(num("vocab_size")), "tied": tied, **parts})
    df = pd.DataFrame(rows, columns=cols)
    for c in ("embedding", "output_head", "position", "body", "total"):
        df[c] = df[c].astype("int64")
    return df


def analytic_param_table(
    arm_vocab_sizes: Mapping[str, int],
    word_sizes: Sequence[int] = (50000, 100000, 200000),
    model: str | ModelConfig = "gpt2_small",
) -> pd.DataFrame:
    """What each vocabulary would cost at a fixed model shape, tied and untied.

    One row per (entry, tied) for each arm's vocabulary size and each hypothetical
    word-level size, from ``embinit.params.param_breakdown``. Columns: label, source
    (arm | word size), vocab_size, tied, the breakdown's keys (total, embedding,
    output_head, position, non_embedding, body), and the stackable parts
    ``stack_output_head`` (0 when tied), ``stack_body`` and ``vocab_share``.
    """
    from embinit.params import param_breakdown  # written alongside the model; imported lazily

    base = model_shape(model)
    entries = [(arm, int(v), "arm") for arm, v in arm_vocab_sizes.items()]
    entries += [(f"word-level {int(v):,}", int(v), "word size") for v in word_sizes]
    rows = []
    for label, vocab_size, source in entries:
        for tied in (True, False):
            cfg = dataclasses.replace(base, tie_embeddings=tied)
            p = param_breakdown(cfg, vocab_size)
            parts = _stack_parts(p["total"], p["embedding"], p["output_head"], p["position"], tied)
            rows.append(
                {
                    "label": label,
                    "source": source,
                    "model": base.name,
                    "vocab_size": vocab_size,
                    "tied": tied,
                    **{k: int(p[k]) for k in PARAM_KEYS},
                    "stack_output_head": int(parts["output_head"]),
                    "stack_body": int(parts["body"]),
                    "vocab_share": parts["vocab_share"],
                }
            )
    return pd.DataFrame(rows)


def oov_table(runs: pd.DataFrame, reference_arm: str | None = None) -> pd.DataFrame:
    """Per arm: vocabulary, OOV rates on val/test, `<unk>` byte share, the shares of words
    and of bytes spelled out in byte tokens (word level with byte fallback; 0 for other
    vocabularies) and init coverage.

    Means over completed runs (these are properties of the data and the vocabulary,
    the same in every seed). Coverage is NaN for arms initialised from scratch; the
    spelled shares are NaN in records written before they were.
    """
    cols = {
        "vocab_size": "vocab_size",
        "oov_val_token_rate": "val_token_rate",
        "oov_val_type_rate": "val_type_rate",
        "oov_val_unk_byte_share": "val_unk_byte_share",
        "oov_test_token_rate": "test_token_rate",
        "oov_test_type_rate": "test_type_rate",
        "oov_test_unk_byte_share": "test_unk_byte_share",
        "oov_val_spelled_word_rate": "val_spelled_word_rate",
        "oov_val_spelled_byte_share": "val_spelled_byte_share",
        "oov_test_spelled_word_rate": "test_spelled_word_rate",
        "oov_test_spelled_byte_share": "test_spelled_byte_share",
        "oov_init_coverage_types": "init_coverage_types",
        "oov_init_coverage_tokens": "init_coverage_tokens",
    }
    out = _per_arm_means(runs, cols, arm_order(runs, reference_arm))
    vocab = {a: first_value(runs[runs["arm"] == a], "vocab") for a in out["arm"]}
    out.insert(1, "vocab", [vocab[a] for a in out["arm"]])
    return out


def throughput_table(runs: pd.DataFrame, reference_arm: str | None = None) -> pd.DataFrame:
    """Per arm: tokens per byte of the corpus, training steps, data seen, wall time and speed.

    ``wall_s`` is the whole run (evaluations included); ``train_wall_s`` only the
    optimizer steps, which tokens_per_s and bytes_per_s are measured over (falling
    back to wall_s for records without it).
    """
    runs = runs.copy()
    train_wall = numeric_col(runs, "train_train_wall_s").fillna(numeric_col(runs, "train_wall_s"))
    runs["_train_wall_s"] = train_wall
    runs["_bytes_per_s"] = numeric_col(runs, "train_bytes_seen") / train_wall
    cols = {
        "data_tokens_per_byte": "tokens_per_byte",
        "train_steps": "steps",
        "train_tokens_seen": "tokens_seen",
        "train_bytes_seen": "bytes_seen",
        "train_wall_s": "wall_s",
        "_train_wall_s": "train_wall_s",
        "train_tokens_per_s": "tokens_per_s",
        "_bytes_per_s": "bytes_per_s",
    }
    return _per_arm_means(runs, cols, arm_order(runs, reference_arm))


def incomplete_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run that is not completed: arm, seed, status, diverged_at_step, run_dir."""
    cols = ["arm", "seed", "status", "diverged_at_step", "run_dir"]
    df = runs[runs["status"] != COMPLETED].copy()
    df["diverged_at_step"] = numeric_col(df, "diverged_at_step").astype("Int64")
    return df[cols].sort_values(["arm", "seed"], kind="stable").reset_index(drop=True)


def software_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """Each ``versions_*`` field of the completed runs and its distinct values."""
    done = completed(runs)
    rows = []
    for col in sorted(c for c in done.columns if c.startswith("versions_")):
        vals = sorted({str(v) for v in done[col].dropna()})
        if vals:
            rows.append({"package": col.removeprefix("versions_"), "versions": ", ".join(vals)})
    return pd.DataFrame(rows, columns=["package", "versions"])


# ------------------------------------------------------------------------------ configs


def _dotted(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def config_summary(
    configs: Mapping[str, Mapping[str, Any]], runs: pd.DataFrame
) -> tuple[dict[str, Any], pd.DataFrame, list[str]]:
    """Split the runs' resolved configs into what the study shares and what arms change.

    Returns (shared, per_arm, by_seed): ``shared`` is the nested config every run has
    in common, minus the seed; ``per_arm`` has one row per dotted key that differs
    between arms but not within one (columns key, then one per arm, values as text);
    ``by_seed`` names the keys that vary within an arm (the seed and what follows it).
    """
    arm_of = dict(zip(runs["run_dir"], runs["arm"], strict=True))
    seed_of = dict(zip(runs["run_dir"], runs["seed"], strict=True))
    flat = {rd: _dotted(cfg) for rd, cfg in configs.items() if rd in arm_of}
    if not flat:
        return {}, pd.DataFrame(columns=["key"]), []
    keys = sorted(set().union(*flat.values()))
    shared: dict[str, Any] = {}
    per_arm_rows: list[dict[str, Any]] = []
    by_seed: list[str] = []
    arms = sorted({arm_of[rd] for rd in flat})
    missing = object()
    several_seeds = len({seed_of[rd] for rd in flat}) > 1
    for key in keys:
        values = {rd: f.get(key, missing) for rd, f in flat.items()}
        follows_seed = (
            several_seeds
            and key.endswith("seed")
            and all(v == seed_of[rd] for rd, v in values.items())
        )
        if key == "seed" or follows_seed:
            by_seed.append(key)
            continue
        distinct = {json.dumps(v, sort_keys=True, default=str) for v in values.values()}
        if len(distinct) == 1 and next(iter(values.values())) is not missing:
            shared[key] = next(iter(values.values()))
            continue
        per_arm: dict[str, Any] = {"key": key}
        for arm in arms:
            arm_vals = {
                json.dumps(v, sort_keys=True, default=str) if v is not missing else "(absent)"
                for rd, v in values.items()
                if arm_of[rd] == arm
            }
            if len(arm_vals) > 1:
                by_seed.append(key)
                break
            per_arm[arm] = next(iter(arm_vals)).strip('"')
        else:
            per_arm_rows.append(per_arm)
    return _nest(shared), pd.DataFrame(per_arm_rows, columns=["key", *arms]), by_seed




__all__ = [
    "PARAM_KEYS",
    "analytic_param_table",
    "arm_summary",
    "config_summary",
    "curve_band",
    "incomplete_runs",
    "oov_table",
    "param_table",
    "software_versions",
    "throughput_table",
]
