"""embinit.report, embinit.analysis and embinit.stats: aliases of embinit.study, still whole."""

from __future__ import annotations

import pytest

from embinit.study import load, shapes, tables
from embinit.study import stats as study_stats
from embinit.study.report import build, doc, figures, sections, verdicts

# Every public name the three modules had before they moved into embinit.study.
OLD_REPORT = [
    "ANALYTIC_MODEL",
    "Block",
    "Bullets",
    "CONFIDENCE",
    "Code",
    "DPI",
    "FIG_DIR",
    "Heading",
    "Image",
    "NA",
    "PART_COLORS",
    "PART_LABELS",
    "Para",
    "Report",
    "SUMMARY_METRICS",
    "Study",
    "Table",
    "arm_colors",
    "build_report",
    "check_has_completed",
    "fmt_ci",
    "fmt_int",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "load_study",
    "main",
    "markdown_images",
    "plot_curves",
    "plot_final_bpb",
    "plot_oov",
    "plot_params",
    "reference_arm_for",
    "render_html",
    "render_markdown",
    "write_report",
]
OLD_ANALYSIS = [
    "AnalysisError",
    "COMPLETED",
    "CURVE_COLUMNS",
    "DIVERGED",
    "HEADLINE_METRICS",
    "MISSING",
    "NoCompletedRunsError",
    "OOV_CURVE_COLUMNS",
    "PARAM_KEYS",
    "UNREADABLE",
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
OLD_STATS = ["NAN", "excludes_zero", "mean_ci", "paired_diff", "t_critical"]
NEW_HOMES = (load, tables, shapes, study_stats, build, doc, figures, sections, verdicts)


@pytest.mark.parametrize(
    ("alias", "names"),
    [
        ("embinit.report", OLD_REPORT),
        ("embinit.analysis", OLD_ANALYSIS),
        ("embinit.stats", OLD_STATS),
    ],
)
def test_alias_exports_every_old_name_from_its_new_home(alias: str, names: list[str]) -> None:
    module = __import__(alias, fromlist=["_"])
    for name in names:
        obj = getattr(module, name)
        # The very object, not a copy: old and new code share state and identity.
        assert any(getattr(home, name, None) is obj for home in NEW_HOMES), name
