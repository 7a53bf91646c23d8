"""Small-sample statistics for comparing arms across seeds: pure functions, exact tests.

A study has a handful of seeds per arm, so intervals use Student's t, and two arms are
compared by pairing runs that share a seed (same data order, same initial body
weights), which removes the seed-to-seed variance the arms have in common.

Degenerate inputs give NaN, never an exception: one value has no spread, so its
interval is (nan, nan); a paired comparison needs at least two pairs, and identical
differences leave the t statistic undefined. ``paired_diff`` says which in ``note``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

NAN = float("nan")


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (drop NaN/inf values first): {arr.tolist()}")
    return arr


def t_critical(confidence: float, df: int) -> float:
    """Two-sided Student-t critical value: P(|T_df| <= t) = confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(_st.t.ppf(0.5 + confidence / 2.0, df))


def mean_ci(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its Student-t confidence interval.

    mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n), with s the sample standard deviation
    (ddof=1). n = 1 gives (value, nan, nan): one run has no spread to estimate.
    n = 0 gives (nan, nan, nan).
    """
    x = _as_array(values, "values")
    n = x.size
    if n == 0:
        return NAN, NAN, NAN
    mean = float(x.mean())
    if n == 1:
        return mean, NAN, NAN
    half = t_critical(confidence, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_diff(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> dict[str, object]:
    """Paired comparison of a against b; element i of each comes from the same seed.

    Returns mean_diff (mean of a - b), the Student-t interval (lo, hi) of that mean,
    the two-sided p-value of the paired t-test (scipy.stats.ttest_rel), n pairs,
    t and df, and a ``note`` that is empty unless something is NaN and why.
    """
    x = _as_array(a, "a")
    y = _as_array(b, "b")
    if x.shape != y.shape:
        raise ValueError(
            f"paired_diff needs aligned values of equal length, got {x.size} and {y.size}"
        )
    n = int(x.size)
    out: dict[str, object] = {
        "mean_diff": NAN,
        "lo": NAN,
        "hi": NAN,
        "p_value": NAN,
        "n": n,
        "t": NAN,
        "df": max(n - 1, 0),
        "test": "paired t-test",
        "note": "",
    }
    if n == 0:
        out["note"] = "no pairs"
        return out
    d = x - y
    mean, lo, hi = mean_ci(d, confidence)
    out["mean_diff"] = mean
    if n < 2:
        out["note"] = "one pair: no interval or p-value (needs n >= 2)"
        return out
    if float(d.std(ddof=1)) == 0.0:
        # Every pair differs by the same amount: the interval has zero width and the t
        # statistic is ±inf or 0/0, so no p-value is reported.
        out.update(lo=mean, hi=mean, note="all paired differences are equal: t-test undefined")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _st.ttest_rel(x, y)
    out.update(lo=lo, hi=hi, p_value=float(res.pvalue), t=float(res.statistic))
    return out


def excludes_zero(lo: float, hi: float) -> bool:
    """True when a finite interval lies entirely on one side of zero."""
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0.0 or hi < 0.0))


__all__ = ["excludes_zero", "mean_ci", "paired_diff", "t_critical"]
