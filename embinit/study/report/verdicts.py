"""Verdicts: the sentences that state what an ``arm_summary`` table shows.

Generated, never hand-written, so the prose cannot drift from the numbers: the best
arm on each headline metric, each arm against the reference (difference, CI, p and
whether the CI excludes zero), and the arms whose runs diverged or are incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from embinit.study.load import HEADLINE_METRICS
from embinit.study.report.doc import fmt_p
from embinit.study.stats import excludes_zero

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
        f"{head} {s.format(d)} {unit} [{ci} {s.format(lo)}, {s.format(hi)}], {fmt_p(p, labelled=True)} "
        f"(paired t-test, n={n}): the CI {verdict} zero{tail}."
    )


__all__ = ["verdicts"]
