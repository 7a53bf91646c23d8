"""Reading a study directory: the consumer wing's only input side.

A study directory holds one run directory per (arm, seed)::

    experiments/<study>/<arm>/seed<k>/{summary.json, metrics.jsonl, .hydra/config.yaml}

The ``load_*`` functions read summary.json, metrics.jsonl and the resolved config of
each run directory into DataFrames; ``load_study`` bundles them into a ``Study``.
Everything downstream (``embinit.study.tables``, ``embinit.study.report``) is pure.

Only runs whose summary says ``status: completed`` enter a mean. Diverged runs are
counted (and listed with the step) but never averaged; a directory without
summary.json is an unfinished run (status ``missing``), listed as incomplete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embinit.errors import EmbinitError
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


# ------------------------------------------------------------------------------ the study


@dataclass
class Study:
    """Everything the report reads from a study directory."""

    name: str
    runs: pd.DataFrame
    curves: pd.DataFrame
    oov_curve: pd.DataFrame
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_study(study_dir: str | Path) -> Study:
    """Read a study directory's run records (the report's only I/O on the input side)."""
    path = Path(study_dir)
    return Study(
        name=path.resolve().name,
        runs=load_runs(path),
        curves=load_curves(path),
        oov_curve=load_oov_curve(path),
        configs=load_configs(path),
    )


def check_has_completed(study: Study) -> None:
    """Raise NoCompletedRunsError, saying what was found, when no run completed."""
    runs = study.runs
    if len(runs) and (runs["status"] == COMPLETED).any():
        return
    if not len(runs):
        found = "no <arm>/seed<k> run directories"
    else:
        counts = runs["status"].value_counts().sort_index()
        found = (
            f"{len(runs)} run directories ("
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + ")"
        )
    raise NoCompletedRunsError(
        f"study {study.name!r} has no completed runs: found {found}. Run the study first "
        "(make sweep STUDY=<name>) or point at the directory that holds <arm>/seed<k>/summary.json"
    )


def reference_arm_for(study: Study, requested: str | None = None) -> str:
    """The arm differences are taken against: as requested, else the study config's, else
    bpe+scratch, else the first arm by name."""
    arms = arm_order(study.runs)
    if requested is not None:
        if requested not in arms:
            raise AnalysisError(
                f"--reference {requested!r} is not an arm of this study; choose one of {arms}"
            )
        return requested
    for cfg in study.configs.values():
        ref = (cfg.get("study") or {}).get("reference_arm")
        if ref in arms:
            return str(ref)
    return "bpe+scratch" if "bpe+scratch" in arms else arms[0]


__all__ = [
    "COMPLETED",
    "CURVE_COLUMNS",
    "DIVERGED",
    "HEADLINE_METRICS",
    "MISSING",
    "OOV_CURVE_COLUMNS",
    "UNREADABLE",
    "AnalysisError",
    "NoCompletedRunsError",
    "Study",
    "arm_order",
    "check_has_completed",
    "completed",
    "find_run_dirs",
    "load_configs",
    "load_curves",
    "load_oov_curve",
    "load_runs",
    "load_study",
    "reference_arm_for",
]
