"""The study report, rebuilt from run records alone: ``python -m embinit.study.report``.

Modules: ``doc`` (blocks, markdown/HTML renderers, formatters), ``figures``
(matplotlib to PNG bytes), ``sections`` (the prose and tables of each section),
``verdicts`` (generated sentences), ``build`` (``build_report``, ``write_report``,
the CLI). The names below are the public surface, re-exported for convenience;
``verdicts`` is not among them, so ``embinit.study.report.verdicts`` stays the module.
"""

from __future__ import annotations

from embinit.study.load import Study, check_has_completed, load_study, reference_arm_for
from embinit.study.report.build import Report, build_report, main, write_report
from embinit.study.report.doc import (
    FIG_DIR,
    NA,
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Para,
    Table,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
    markdown_images,
    render_html,
    render_markdown,
)
from embinit.study.report.figures import (
    DPI,
    PART_COLORS,
    PART_LABELS,
    arm_colors,
    plot_curves,
    plot_final_bpb,
    plot_oov,
    plot_params,
)
from embinit.study.report.sections import ANALYTIC_MODEL, CONFIDENCE, SUMMARY_METRICS

__all__ = [
    "ANALYTIC_MODEL",
    "CONFIDENCE",
    "DPI",
    "FIG_DIR",
    "NA",
    "PART_COLORS",
    "PART_LABELS",
    "SUMMARY_METRICS",
    "Block",
    "Bullets",
    "Code",
    "Heading",
    "Image",
    "Para",
    "Report",
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
