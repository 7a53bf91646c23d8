"""From run records to tidy tables: everything the report shows, as pandas DataFrames.

Reading is confined to the ``load_*`` functions at the top (summary.json,
metrics.jsonl and the resolved config of each run directory); every other function
is pure, takes DataFrames and returns DataFrames or sentences, and is tested on
fabricated records.

A study directory holds one run directory per (arm, seed)::

    experiments/<study>/<arm>/seed<k>/{summary.json, metrics.jsonl, .hydra/config.yaml}

Only runs whose summary says ``status: completed`` enter a mean. Diverged runs are
counted (and listed with the step) but never averaged; a directory without
summary.json is an unfinished run (status ``missing``), listed as incomplete.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embinit.config import ModelConfig
from embinit.errors import EmbinitError
from embinit.stats import excludes_zero, mean_ci, paired_diff
from embinit.storage import read_json, read_jsonl

COMPLETED = "completed"
DIVERGED = "diverged"
MISSING = "missing"  # a run directory without summary.json: unfinished or killed
UNREADABLE = "unreadable"  # a summary.json that is not valid JSON

HEADLINE_METRICS = (
    "val_bpb",
    "test_bpb",
    "val_bpb_oov_adjusted",
    "test_bpb_oov_adjusted",
    "val_bpb_lossless",
    "test_bpb_lossless",
)
PARAM_KEYS = ("total", "embedding", "output_head", "position", "non_embedding", "body")
CURVE_COLUMNS = (
    "arm",
    "seed",
    "status",
    "step",
    "tokens_seen",
    "bytes_seen",
    "train_loss",
    "val_loss",
    "val_bpb",
    "val_bpb_lossless",
    "lr",
    "elapsed_s",
)
OOV_CURVE_COLUMNS = ("vocab_size", "token_rate", "type_rate")
_SEED_DIR = re.compile(r"seed(\d+)")
_MODEL_CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "model"
# Fallback when conf/ is not beside the package (an installed wheel).
_BUILTIN_MODELS = {
    "gpt2_small": ModelConfig(
        name="gpt2_small",
        n_layer=12,
        n_head=12,
        d_model=768,
        block_size=1024,
        dropout=0.0,
        bias=True,
        tie_embeddings=True,
    ),
}


class AnalysisError(EmbinitError):
    """Run records that cannot be analysed as asked (names the problem and the fix)."""


class NoCompletedRunsError(AnalysisError):
    """A study directory without a single completed run: there is nothing to report."""


# ------------------------------------------------------------------------------ reading


def find_run_dirs(study_dir: str | Path) -> list[Path]:
    """``<study>/<arm>/seed<k>`` directories, sorted by arm name then seed number."""
    study = Path(study_dir)
    if not study.is_dir():
        raise AnalysisError(
            f"study directory {study} does not exist; pass experiments/<study> "
            "(the directory a sweep writes its <arm>/seed<k> run directories into)"
        )
    found: list[tuple[str, int, Path]] = []
    for arm_dir in study.iterdir():
        if not arm_dir.is_dir() or arm_dir.name.startswith("."):
            continue
        for run_dir in arm_dir.iterdir():
            m = _SEED_DIR.fullmatch(run_dir.name)
            if m and run_dir.is_dir():
                found.append((arm_dir.name, int(m.group(1)), run_dir))
    return [p for _, _, p in sorted(found)]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> one level, keys joined with '_' (lists are left out)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "_"))
        elif not isinstance(value, list):
            out[name] = value
    return out


def _read_summary(run_dir: Path) -> tuple[str, dict[str, Any] | None]:
    path = run_dir / "summary.json"
    if not path.exists():
        return MISSING, None
    try:
        summary = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return UNREADABLE, None
    if not isinstance(summary, dict):
        return UNREADABLE, None
    return str(summary.get("status") or MISSING), summary


def _identity(
    run_dir: Path, study: Path, read: tuple[str, dict[str, Any] | None]
) -> dict[str, Any]:
    """arm, seed, status and run_dir of one run; the summary wins over the path."""
    status, summary = read
    m = _SEED_DIR.fullmatch(run_dir.name)
    ident = {
        "arm": run_dir.parent.name,
        "seed": int(m.group(1)) if m else -1,
        "status": status,
        "run_dir": run_dir.relative_to(study).as_posix(),
    }
    if summary is not None:
        if summary.get("arm"):
            ident["arm"] = str(summary["arm"])
        if summary.get("seed") is not None:
            ident["seed"] = int(summary["seed"])
    return ident


def load_runs(study_dir: str | Path) -> pd.DataFrame:
    """One row per run directory: its flattened summary plus arm, seed, status, run_dir.

    Nested summary fields become ``<group>_<key>`` columns (``val_bpb``,
    ``test_bpb_oov_adjusted``, ``params_total``, ``oov_val_token_rate``,
    ``train_wall_s``, ``versions_torch`` ...); lists (``word_oov_curve``) are left out,
    see ``load_oov_curve``. ``run_dir`` is relative to the study directory.
    """
    study = Path(study_dir)
    rows: list[dict[str, Any]] = []
    for run_dir in find_run_dirs(study):
        read = _read_summary(run_dir)
        row = _flatten(read[1]) if read[1] is not None else {}
        row.update(_identity(run_dir, study, read))
        rows.append(row)
    lead = ["arm", "seed", "status", "run_dir"]
    if not rows:
        return pd.DataFrame(columns=lead)
    df = pd.DataFrame(rows)
    rest = sorted(c for c in df.columns if c not in lead)
    df = df[lead + rest]
    df["seed"] = df["seed"].astype(int)
    return df.sort_values(["arm", "seed", "run_dir"], kind="stable").reset_index(drop=True)


def load_curves(study_dir: str | Path) -> pd.DataFrame:
    """Tidy training curves: one row per (run, logged step), columns ``CURVE_COLUMNS``.

    A step logged twice (a resumed run that re-logged it) keeps its last row. Null
    values (train_loss on eval-only rows, val_* on train-only rows) become NaN.
    """
    study = Path(study_dir)
    frames: list[pd.DataFrame] = []
    for run_dir in find_run_dirs(study):
        rows = read_jsonl(run_dir / "metrics.jsonl")
        if not rows:
            continue
        ident = _identity(run_dir, study, _read_summary(run_dir))
        df = pd.DataFrame(rows)
        for col in CURVE_COLUMNS[3:]:
            df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
        df = df.dropna(subset=["step"]).drop_duplicates("step", keep="last")
        for key in ("arm", "seed", "status"):
            df[key] = ident[key]
        frames.append(df[list(CURVE_COLUMNS)])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in CURVE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out["step"] = out["step"].astype(int)
    return out.sort_values(["arm", "seed", "step"], kind="stable").reset_index(drop=True)


def load_oov_curve(study_dir: str | Path) -> pd.DataFrame:
    """The word-level vocab-size -> OOV-rate curve (a property of the corpus).

    Taken from the first completed run that has one; columns ``OOV_CURVE_COLUMNS``.
    """
    for run_dir in find_run_dirs(study_dir):
        status, summary = _read_summary(run_dir)
        if status == COMPLETED and summary and summary.get("word_oov_curve"):
            df = pd.DataFrame(summary["word_oov_curve"])
            for col in OOV_CURVE_COLUMNS:
                df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
            return df[list(OOV_CURVE_COLUMNS)].sort_values("vocab_size").reset_index(drop=True)
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in OOV_CURVE_COLUMNS})


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's resolved config: Hydra's .hydra/config.yaml, else the record's config.json.

    Hydra saves the composed config with its interpolations (``${seed}``); they are
    resolved here. One that needs Hydra's runtime cannot be, and then the record's own
    resolved config.json is used, or failing that the YAML as written.
    """
    hydra_cfg = run_dir / ".hydra" / "config.yaml"
    cfg_json = run_dir / "config.json"
    if hydra_cfg.exists():
        from omegaconf import OmegaConf

        raw = OmegaConf.load(hydra_cfg)
        try:
            return OmegaConf.to_container(raw, resolve=True)  # type: ignore[return-value]
        except Exception:
            if not cfg_json.exists():
                return OmegaConf.to_container(raw, resolve=False)  # type: ignore[return-value]
    if cfg_json.exists():
        return read_json(cfg_json)
    return None


def load_configs(study_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Resolved config of every run directory that has one, keyed by ``run_dir``."""
    study = Path(study_dir)
    out: dict[str, dict[str, Any]] = {}
    for run_dir in find_run_dirs(study):
        cfg = _read_config(run_dir)
        if cfg is not None:
            out[run_dir.relative_to(study).as_posix()] = cfg
    return out


# ------------------------------------------------------------------------------ selection


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs whose summary says completed: the only ones any mean is taken over."""
    return runs[runs["status"] == COMPLETED]


def arm_order(runs: pd.DataFrame, reference_arm: str | None = None) -> list[str]:
    """Every arm in the records: the reference first, then the rest by name."""
    arms = sorted(set(runs["arm"]))
    if reference_arm in arms:
        arms.remove(reference_arm)
        arms.insert(0, reference_arm)
    return arms


def _numeric(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def _first(df: pd.DataFrame, col: str) -> Any:
    if col not in df.columns:
        return None
    vals = df[col].dropna()
    return vals.iloc[0] if len(vals) else None


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

    Columns: arm, vocab, init, n_runs, n_seeds (completed runs), n_diverged,
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
            "vocab": _first(everything, "vocab"),
            "init": _first(everything, "init"),
            "n_runs": len(everything),
            "n_seeds": len(sub),
            "n_diverged": n_div,
            "n_incomplete": len(everything) - len(sub) - n_div,
            "seeds": ",".join(str(s) for s in sorted(sub["seed"])),
        }
        for m in metrics:
            vals = _numeric(sub, m).dropna()
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
    a = pd.DataFrame({"seed": sub["seed"], "a": _numeric(sub, metric)}).dropna()
    b = pd.DataFrame({"seed": ref["seed"], "b": _numeric(ref, metric)}).dropna()
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
            vals = _numeric(sub, src).dropna()
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
    have = runs[_numeric(runs, "params_total").notna()].copy()
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


def model_shape(model: str | ModelConfig) -> ModelConfig:
    """A ModelConfig by name: conf/model/<name>.yaml where present, else a built-in shape."""
    if isinstance(model, ModelConfig):
        return model
    path = _MODEL_CONF_DIR / f"{model}.yaml"
    if path.exists():
        from omegaconf import OmegaConf

        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    if model in _BUILTIN_MODELS:
        return _BUILTIN_MODELS[model]
    raise AnalysisError(
        f"unknown model shape {model!r}; choose one of {sorted(_BUILTIN_MODELS)} "
        "or a name under conf/model/"
    )


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
    """Per arm: vocabulary, OOV rates on val/test, `<unk>` byte share and init coverage.

    Means over completed runs (these are properties of the data and the vocabulary,
    the same in every seed). Coverage is NaN for arms initialised from scratch.
    """
    cols = {
        "vocab_size": "vocab_size",
        "oov_val_token_rate": "val_token_rate",
        "oov_val_type_rate": "val_type_rate",
        "oov_val_unk_byte_share": "val_unk_byte_share",
        "oov_test_token_rate": "test_token_rate",
        "oov_test_type_rate": "test_type_rate",
        "oov_test_unk_byte_share": "test_unk_byte_share",
        "oov_init_coverage_types": "init_coverage_types",
        "oov_init_coverage_tokens": "init_coverage_tokens",
    }
    out = _per_arm_means(runs, cols, arm_order(runs, reference_arm))
    vocab = {a: _first(runs[runs["arm"] == a], "vocab") for a in out["arm"]}
    out.insert(1, "vocab", [vocab[a] for a in out["arm"]])
    return out


def throughput_table(runs: pd.DataFrame, reference_arm: str | None = None) -> pd.DataFrame:
    """Per arm: tokens per byte of the corpus, training steps, data seen, wall time and speed.

    ``wall_s`` is the whole run (evaluations included); ``train_wall_s`` only the
    optimizer steps, which tokens_per_s and bytes_per_s are measured over (falling
    back to wall_s for records without it).
    """
    runs = runs.copy()
    train_wall = _numeric(runs, "train_train_wall_s").fillna(_numeric(runs, "train_wall_s"))
    runs["_train_wall_s"] = train_wall
    runs["_bytes_per_s"] = _numeric(runs, "train_bytes_seen") / train_wall
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
    df["diverged_at_step"] = _numeric(df, "diverged_at_step").astype("Int64")
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


# ------------------------------------------------------------------------------ verdicts


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


_METRIC_LABELS = {
    "val_bpb": "val bpb",
    "test_bpb": "test bpb",
    "val_bpb_oov_adjusted": "OOV-adjusted val bpb",
    "test_bpb_oov_adjusted": "OOV-adjusted test bpb",
    "val_bpb_lossless": "lossless val bpb",
    "test_bpb_lossless": "lossless test bpb",
}


def verdicts(
    summary: pd.DataFrame,
    reference_arm: str,
    confidence: float = 0.95,
    digits: int = 3,
    compare: Sequence[str] = ("val_bpb_lossless", "val_bpb_oov_adjusted", "val_bpb"),
) -> list[str]:
    """Sentences stating what the numbers show, generated from an ``arm_summary`` table.

    The lowest mean of each headline metric, every arm against the reference on the
    ``compare`` metrics (difference, CI, p, n, and whether the CI excludes zero), and
    the arms with diverged, incomplete or no completed runs.
    """
    out: list[str] = []
    ci = f"{confidence * 100:g}% CI"
    f = f"{{:.{digits}f}}"
    s = f"{{:+.{digits}f}}"
    # The like-for-like figure first: lossless bpb scores every tokenizer on the same
    # information; raw bpb lets word-level arms skip unknown words and whitespace.
    for m in sorted(HEADLINE_METRICS, key=lambda m: (not m.endswith("lossless"),
                                                     not m.endswith("oov_adjusted"))):
        col = f"{m}_mean"
        if col not in summary.columns or summary[col].isna().all():
            continue
        best = summary.loc[summary[col].idxmin()]
        mean, hi, n = best[col], best[f"{m}_hi"], int(best[f"{m}_n"])
        spread = f" ± {f.format(hi - mean)}, {ci}, n={n}" if np.isfinite(hi) else f"; n={n}, no CI"
        out.append(f"Lowest {_METRIC_LABELS.get(m, m)}: {best['arm']} ({f.format(mean)}{spread}).")
    ref_rows = summary[summary["arm"] == reference_arm]
    others = summary[(summary["arm"] != reference_arm) & (summary["n_seeds"] > 0)]
    if ref_rows.empty or int(ref_rows["n_seeds"].iloc[0]) == 0:
        out.append(
            f"The reference arm {reference_arm} has no completed runs: no paired comparisons."
        )
    elif len(others):
        out.append(
            f"Differences are arm minus {reference_arm}, paired by seed; bpb is lower-is-better, "
            f"so a negative difference favours the arm."
        )
        for _, row in others.iterrows():
            for m in compare:
                if f"{m}_diff" not in summary.columns:
                    continue
                out.append(_comparison(row, m, reference_arm, ci, f, s))
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
        f"{head} {s.format(d)} {unit} [{ci} {s.format(lo)}, {s.format(hi)}], {_fmt_p(p)} "
        f"(paired t-test, n={n}): the CI {verdict} zero{tail}."
    )


__all__ = [
    "COMPLETED",
    "DIVERGED",
    "HEADLINE_METRICS",
    "MISSING",
    "AnalysisError",
    "NoCompletedRunsError",
    "analytic_param_table",
    "arm_order",
    "arm_summary",
    "completed",
    "config_summary",
    "curve_band",
    "find_run_dirs",
    "incomplete_runs",
    "load_configs",
    "load_curves",
    "load_oov_curve",
    "load_runs",
    "model_shape",
    "oov_table",
    "param_table",
    "software_versions",
    "throughput_table",
    "verdicts",
]
