"""Alias of ``embinit.study.load``, ``.tables``, ``.shapes`` and ``.report.verdicts``.

Kept so old imports (``from embinit import analysis``) work; new code imports the
``embinit.study`` modules directly.
"""

from __future__ import annotations

from embinit.study.load import (
    COMPLETED,
    CURVE_COLUMNS,
    DIVERGED,
    HEADLINE_METRICS,
    MISSING,
    OOV_CURVE_COLUMNS,
    UNREADABLE,
    AnalysisError,
    NoCompletedRunsError,
    arm_order,
    completed,
    find_run_dirs,
    load_configs,
    load_curves,
    load_oov_curve,
    load_runs,
)
from embinit.study.report.verdicts import verdicts
from embinit.study.shapes import MODEL_SHAPES, model_shape
from embinit.study.tables import (
    PARAM_KEYS,
    analytic_param_table,
    arm_summary,
    config_summary,
    curve_band,
    incomplete_runs,
    oov_table,
    param_table,
    software_versions,
    throughput_table,
)

__all__ = [
    "COMPLETED",
    "CURVE_COLUMNS",
    "DIVERGED",
    "HEADLINE_METRICS",
    "MISSING",
    "MODEL_SHAPES",
    "OOV_CURVE_COLUMNS",
    "PARAM_KEYS",
    "UNREADABLE",
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
