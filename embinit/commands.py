"""Argument parsers of the console commands whose own modules are slow to import.

`embinit-report --help` must answer at once: the report's module imports pandas, scipy and
matplotlib, so its parser lives here, importing nothing but argparse, and both the command
(`embinit.cli.report`) and the report's `main` use it.
"""

from __future__ import annotations

import argparse


def report_parser(prog: str = "python -m embinit.report") -> argparse.ArgumentParser:
    """The arguments of `embinit-report` / `python -m embinit.report`, defaults shown."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Build results/<study>/report.{md,html}, summary.csv, runs.csv and figures "
        "from a study's run records.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("study_dir", help="experiments/<study>: holds <arm>/seed<k>/summary.json")
    parser.add_argument("--out", default=None,
                        help="output directory; %(default)s: results/<study name>")
    parser.add_argument("--no-archive", action="store_true",
                        help="do not copy the run records (configs, summaries, metrics) into "
                        "<out>/records/<study>/, from where the report can be rebuilt")
    parser.add_argument(
        "--reference", default=None,
        help="arm to compare against; %(default)s: study.json's reference_arm, else the runs' "
        "study.reference_arm, else bpe+scratch",
    )
    return parser
