"""Reading a study directory: the consumer wing's only input side.

A study directory holds one run directory per (arm, seed) and the study's settings::

    experiments/<study>/study.json
    experiments/<study>/<arm>/seed<k>/{summary.json, metrics.jsonl, config.json}

Every file is read through the record contract, ``embinit.record`` (``find_runs``,
``read_summary``, ``read_metrics``, ``read_config``, ``read_study_settings``), never
opened here. The ``load_*`` functions turn the records into DataFrames; ``load_study``
reads each run once and bundles everything into a ``Study``. Everything downstream
(``embinit.study.tables``, ``embinit.study.report``) is pure.

Only runs whose summary says ``status: completed`` enter a mean. Diverged runs are
counted (and listed with the step) but never averaged; a directory without
summary.json is an unfinished run (status ``missing``), listed as incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embinit.errors import EmbinitError
from embinit.record import (
    COMPLETED,
    DIVERGED,
    MISSING,
    STUDY_FILE,
    UNREADABLE,
    RunRef,
    StudySettings,
    find_runs,
    read_config,
    read_metrics,
    read_study_settings,
    read_summary,
)

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
SPLITS = ("val", "test")
# Per-document losses of one held-out split (new records): one row per (run, split, document).
DOC_COLUMNS = ("arm", "seed", "split", "doc", "doc_id", "nats", "charge", "bytes")
# A completed run's split without usable per-document losses, and why.
DOC_GAP_COLUMNS = ("arm", "seed", "split", "reason")
NO_DOC_LOSSES = "no per-document losses in its records"
NO_DOC_CHARGES = (
    "per-document losses without their lossless charges (`doc_charge_nats`) in a record "
    "that is not exact, so its per-document figure is unknown"
)
STUDY_JSON_UNREADABLE = "study.json is unreadable: defaults used"


class AnalysisError(EmbinitError):
    """Run records that cannot be analysed as asked (names the problem and the fix)."""


class NoCompletedRunsError(AnalysisError):
    """A study directory without a single completed run: there is nothing to report."""


# ------------------------------------------------------------------------------ reading


def _run_refs(study_dir: str | Path) -> list[RunRef]:
    study = Path(study_dir)
    if not study.is_dir():
        raise AnalysisError(
            f"study directory {study} does not exist; pass experiments/<study> "
            "(the directory a sweep writes its <arm>/seed<k> run directories into)"
        )
    return find_runs(study)


def find_run_dirs(study_dir: str | Path) -> list[Path]:
    """``<study>/<arm>/seed<k>`` directories, sorted by arm name then seed number."""
    return [r.dir for r in _run_refs(study_dir)]


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


@dataclass(frozen=True)
class _Read:
    """One run directory as read: where it is, its summary (None if absent) and identity."""

    dir: Path
    status: str
    summary: dict[str, Any] | None
    ident: dict[str, Any]  # arm, seed, status, run_dir; the summary wins over the path


def _read_runs(study_dir: str | Path) -> list[_Read]:
    study = Path(study_dir)
    out = []
    for ref in _run_refs(study):
        status, summary = read_summary(ref.dir)
        ident: dict[str, Any] = {
            "arm": ref.arm,
            "seed": ref.seed,
            "status": status,
            "run_dir": ref.dir.relative_to(study).as_posix(),
        }
        if summary is not None:
            if summary.get("arm"):
                ident["arm"] = str(summary["arm"])
            if summary.get("seed") is not None:
                ident["seed"] = int(summary["seed"])
        out.append(_Read(ref.dir, status, summary, ident))
    return out


def _runs_frame(read: list[_Read]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for r in read:
        # Baselines are per-document lists under nested orders: the baselines module
        # reads them from the raw summaries, the flat table leaves them out.
        row = (_flatten({k: v for k, v in r.summary.items() if k != "baselines"})
               if r.summary is not None else {})
        row.update(r.ident)
        rows.append(row)
    lead = ["arm", "seed", "status", "run_dir"]
    if not rows:
        return pd.DataFrame(columns=lead)
    df = pd.DataFrame(rows)
    rest = sorted(c for c in df.columns if c not in lead)
    df = df[lead + rest]
    df["seed"] = df["seed"].astype(int)
    return df.sort_values(["arm", "seed", "run_dir"], kind="stable").reset_index(drop=True)


def load_runs(study_dir: str | Path) -> pd.DataFrame:
    """One row per run directory: its flattened summary plus arm, seed, status, run_dir.

    Nested summary fields become ``<group>_<key>`` columns (``val_bpb``,
    ``test_bpb_oov_adjusted``, ``params_total``, ``oov_val_token_rate``,
    ``train_wall_s``, ``versions_torch`` ...); lists (``word_oov_curve``, the per-document
    ``doc_*`` losses) are left out, see ``load_oov_curve`` and ``load_docs``. ``run_dir``
    is relative to the study directory.
    """
    return _runs_frame(_read_runs(study_dir))


def _curves_frame(read: list[_Read]) -> pd.DataFrame:
    frames: list[pd.DataFrame] = []
    for r in read:
        rows = read_metrics(r.dir)
        if not rows:
            continue
        df = pd.DataFrame(rows)
        for col in CURVE_COLUMNS[3:]:
            df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
        df = df.dropna(subset=["step"]).drop_duplicates("step", keep="last")
        for key in ("arm", "seed", "status"):
            df[key] = r.ident[key]
        frames.append(df[list(CURVE_COLUMNS)])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in CURVE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    out["step"] = out["step"].astype(int)
    return out.sort_values(["arm", "seed", "step"], kind="stable").reset_index(drop=True)


def load_curves(study_dir: str | Path) -> pd.DataFrame:
    """Tidy training curves: one row per (run, logged step), columns ``CURVE_COLUMNS``.

    A step logged twice (a resumed run that re-logged it) keeps its last row. Null
    values (train_loss on eval-only rows, val_* on train-only rows) become NaN.
    """
    return _curves_frame(_read_runs(study_dir))


def _oov_curve_frame(read: list[_Read]) -> pd.DataFrame:
    for r in read:
        if r.status == COMPLETED and r.summary and r.summary.get("word_oov_curve"):
            df = pd.DataFrame(r.summary["word_oov_curve"])
            for col in OOV_CURVE_COLUMNS:
                df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
            return df[list(OOV_CURVE_COLUMNS)].sort_values("vocab_size").reset_index(drop=True)
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in OOV_CURVE_COLUMNS})


def load_oov_curve(study_dir: str | Path) -> pd.DataFrame:
    """The word-level vocab-size -> OOV-rate curve (a property of the corpus).

    Taken from the first completed run that has one; columns ``OOV_CURVE_COLUMNS``.
    """
    return _oov_curve_frame(_read_runs(study_dir))


def _doc_exact(summary: Mapping[str, Any]) -> bool:
    """A record whose missing ``doc_charge_nats`` mean zero: it says ``exact``, or is BPE."""
    return summary.get("exact") is True or summary.get("vocab") == "bpe"


def _split_docs(r: _Read, split: str) -> tuple[list[dict[str, Any]], str]:
    """(rows, "") for one split of a completed run, or ([], why it has no usable rows)."""
    summary = r.summary or {}
    res = summary.get(split)
    if not isinstance(res, Mapping) or res.get("doc_nats") is None or res.get("doc_bytes") is None:
        return [], NO_DOC_LOSSES
    nats, nbytes = list(res["doc_nats"]), list(res["doc_bytes"])
    charges = res.get("doc_charge_nats")
    if charges is None:
        if not _doc_exact(summary):
            return [], NO_DOC_CHARGES
        charges = [0.0] * len(nats)
    charge = list(charges)
    recorded = res.get("doc_ids")
    ids: list[str | None] = [str(i) for i in recorded] if recorded is not None else [None] * len(nats)
    if not len(nats) == len(nbytes) == len(charge) == len(ids):
        raise AnalysisError(
            f"{r.ident['run_dir']}/summary.json: {split}.doc_nats, doc_charge_nats, doc_bytes and "
            f"doc_ids have different lengths ({len(nats)}, {len(charge)}, {len(nbytes)}, "
            f"{len(ids)}); the record is damaged — rerun its final evaluation"
        )
    base = {"arm": r.ident["arm"], "seed": r.ident["seed"], "split": split}
    return [
        {**base, "doc": i, "doc_id": d, "nats": float(n), "charge": float(c), "bytes": int(b)}
        for i, (d, n, c, b) in enumerate(zip(ids, nats, charge, nbytes, strict=True))
    ], ""


def _docs_frame(read: list[_Read]) -> pd.DataFrame:
    rows = [row for r in read if r.status == COMPLETED for s in SPLITS
            for row in _split_docs(r, s)[0]]
    if not rows:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64" if c in ("nats", "charge") else "object")
             for c in DOC_COLUMNS}
        )
    return pd.DataFrame(rows, columns=list(DOC_COLUMNS))


def _doc_gaps_frame(read: list[_Read]) -> pd.DataFrame:
    rows = []
    for r in read:
        if r.status != COMPLETED:
            continue
        for split in SPLITS:
            _, why = _split_docs(r, split)
            if why:
                rows.append({"arm": r.ident["arm"], "seed": r.ident["seed"], "split": split,
                             "reason": why})
    return pd.DataFrame(rows, columns=list(DOC_GAP_COLUMNS))


def load_docs(study_dir: str | Path) -> pd.DataFrame:
    """Per-document losses of the completed runs, columns ``DOC_COLUMNS``.

    One row per (arm, seed, split, document) from the summary's ``doc_nats`` (model nats),
    ``doc_charge_nats`` (lossless charges), ``doc_bytes`` and ``doc_ids``, in split order
    (``doc`` is the position; ``doc_id`` None where the record has no ids). Missing charges
    are zero only for a record that says ``exact`` (or is BPE); a charged record without
    them, like a record older than these fields, contributes no rows (``load_doc_gaps``
    says why).
    """
    return _docs_frame(_read_runs(study_dir))


def load_doc_gaps(study_dir: str | Path) -> pd.DataFrame:
    """(arm, seed, split, reason) of every completed run's split without usable
    per-document losses, columns ``DOC_GAP_COLUMNS``."""
    return _doc_gaps_frame(_read_runs(study_dir))


def _configs(read: list[_Read], study: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in read:
        cfg = read_config(r.dir)
        if cfg is not None:
            out[r.dir.relative_to(study).as_posix()] = cfg
    return out


def load_configs(study_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Resolved config of every run directory that has one, keyed by ``run_dir``.

    ``embinit.record.read_config``: the record's config.json, else (older records)
    Hydra's .hydra/config.yaml, resolved.
    """
    return _configs(_read_runs(study_dir), Path(study_dir))


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
    docs: pd.DataFrame = field(default_factory=lambda: _docs_frame([]))
    settings: StudySettings | None = None  # <study>/study.json; None for older studies
    doc_gaps: pd.DataFrame = field(default_factory=lambda: _doc_gaps_frame([]))
    warnings: list[str] = field(default_factory=list)  # problems the report must show
    # Raw summary.json of every run that has one, keyed by run_dir: the nested sections the
    # flat runs table leaves out (lists such as diagnostics.neighbours).
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def _settings(path: Path) -> tuple[StudySettings | None, list[str]]:
    """study.json's settings, and a warning when the file is there but unreadable."""
    try:
        settings = read_study_settings(path)
    except (AttributeError, ValueError):  # valid JSON of the wrong shape
        settings = None
    if settings is None and (path / STUDY_FILE).exists():
        return None, [STUDY_JSON_UNREADABLE]
    return settings, []


def _record_warnings(read: list[_Read]) -> list[str]:
    """Summaries whose totals disagree with their own per-document lists or with each other
    (bpb is nats / (ln 2 x bytes)): edited or damaged records; and final evaluations capped
    by train.final_eval_tokens (smoke runs), which are no full evaluation."""
    out: list[str] = []
    for r in read:
        if r.summary is None or r.status != COMPLETED:
            continue
        where = f"{r.ident['run_dir']}/summary.json"
        for split in ("val", "test"):
            res = r.summary.get(split)
            if not isinstance(res, Mapping):
                continue
            try:
                nats, nbytes, bpb = float(res["nats"]), int(res["bytes"]), float(res["bpb"])
                bad = []
                if res.get("doc_nats") is not None and not np.isclose(
                        float(np.sum(res["doc_nats"], dtype=np.float64)), nats, rtol=1e-6):
                    bad.append("its per-document nats do not sum to its nats")
                if res.get("doc_bytes") is not None and int(np.sum(res["doc_bytes"])) != nbytes:
                    bad.append("its per-document bytes do not sum to its bytes")
                if nbytes > 0 and not np.isclose(bpb, nats / (np.log(2) * nbytes), rtol=1e-6):
                    bad.append("its bpb is not nats / (ln 2 x bytes)")
            except (KeyError, TypeError, ValueError):
                bad = ["its totals are missing or not numbers"]
            if bad:
                out.append(f"{where}: {split}: {'; '.join(bad)}: the record was edited or "
                           "damaged after the run wrote it; its figures are not to be trusted")
            partial = res.get("partial")
            if isinstance(partial, Mapping):
                out.append(f"{where}: {split} was evaluated on its first {partial.get('docs')} "
                           f"of {partial.get('of')} documents only (train.final_eval_tokens, "
                           "train=smoke): not a full evaluation")
    return out


def load_study(study_dir: str | Path) -> Study:
    """Read a study directory's run records (the report's only I/O on the input side)."""
    path = Path(study_dir)
    read = _read_runs(path)
    settings, warnings = _settings(path)
    warnings += _record_warnings(read)
    return Study(
        name=path.resolve().name,
        runs=_runs_frame(read),
        curves=_curves_frame(read),
        oov_curve=_oov_curve_frame(read),
        configs=_configs(read, path),
        docs=_docs_frame(read),
        settings=settings,
        doc_gaps=_doc_gaps_frame(read),
        warnings=warnings,
        summaries={str(r.ident["run_dir"]): r.summary for r in read if r.summary is not None},
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
    """The arm differences are taken against: as requested, else study.json's, else the runs'
    study config's (older records), else bpe+scratch, else the first arm by name."""
    arms = arm_order(study.runs)
    if requested is not None:
        if requested not in arms:
            raise AnalysisError(
                f"--reference {requested!r} is not an arm of this study; choose one of {arms}"
            )
        return requested
    if study.settings is not None and study.settings.reference_arm in arms:
        return study.settings.reference_arm
    for cfg in study.configs.values():
        ref = (cfg.get("study") or {}).get("reference_arm")
        if ref in arms:
            return str(ref)
    return "bpe+scratch" if "bpe+scratch" in arms else arms[0]


def study_description(study: Study) -> str:
    """study.json's description, else the one in the runs' study config (older records)."""
    if study.settings is not None and study.settings.description:
        return study.settings.description
    return next(
        (str((c.get("study") or {}).get("description") or "") for c in study.configs.values()), ""
    )


__all__ = [
    "COMPLETED",
    "CURVE_COLUMNS",
    "DIVERGED",
    "HEADLINE_METRICS",
    "MISSING",
    "DOC_COLUMNS",
    "DOC_GAP_COLUMNS",
    "NO_DOC_CHARGES",
    "NO_DOC_LOSSES",
    "OOV_CURVE_COLUMNS",
    "SPLITS",
    "STUDY_JSON_UNREADABLE",
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
    "load_doc_gaps",
    "load_docs",
    "load_oov_curve",
    "load_runs",
    "load_study",
    "reference_arm_for",
    "study_description",
]


def numeric_col(df: pd.DataFrame, col: str) -> pd.Series:
    """A column as float64 (NaN where missing or not a number; all NaN if absent)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def first_value(df: pd.DataFrame, col: str) -> Any:
    """The column's first non-null value, or None."""
    if col not in df.columns:
        return None
    vals = df[col].dropna()
    return vals.iloc[0] if len(vals) else None
