"""study.stats: Student-t intervals and the paired t-test against hand-derived values.

For df = 2 the t distribution has a closed form, F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so
t_{0.975,2} = sqrt(2 * 0.95^2 / (1 - 0.95^2)) and the two-sided p-value is
1 - |t| / sqrt(2 + t^2); for df = 1 (Cauchy) p = 1 - (2/pi) atan|t|. None of these use scipy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from embinit.study.stats import excludes_zero, mean_ci, paired_diff, t_critical

T975_DF2 = 4.302652729749464  # t_{0.975, 2} = sqrt(2 * 0.95^2 / (1 - 0.95^2)), exact


def p_df2(t: float) -> float:
    return 1.0 - abs(t) / math.sqrt(2.0 + t * t)


def p_df1(t: float) -> float:
    return 1.0 - 2.0 / math.pi * math.atan(abs(t))


def test_t_critical_closed_form() -> None:
    assert math.sqrt(2 * 0.95**2 / (1 - 0.95**2)) == pytest.approx(T975_DF2, abs=1e-12)
    assert t_critical(0.95, 2) == pytest.approx(T975_DF2, abs=1e-12)
    assert t_critical(0.95, 1) == pytest.approx(math.tan(0.475 * math.pi), abs=1e-9)
    # 90%: F(t) = 0.95 -> t / sqrt(2 + t^2) = 0.9
    assert t_critical(0.90, 2) == pytest.approx(math.sqrt(2 * 0.81 / 0.19), abs=1e-12)
    with pytest.raises(ValueError, match="confidence"):
        t_critical(1.0, 2)


def test_mean_ci_one_two_three() -> None:
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = T975_DF2 * 1.0 / math.sqrt(3)  # sd = 1
    assert half == pytest.approx(2.484138, abs=1e-6)
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2 - half, 2 + half), abs=1e-12)


def test_mean_ci_other_confidence_and_constant_values() -> None:
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]), confidence=0.90)
    half = math.sqrt(2 * 0.81 / 0.19) / math.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2 - half, 2 + half), abs=1e-12)
    assert mean_ci([5.0, 5.0]) == (5.0, 5.0, 5.0)


def test_mean_ci_degenerate_sizes() -> None:
    mean, lo, hi = mean_ci([1.5])  # one run: a mean, but no spread to build an interval from
    assert mean == 1.5 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in mean_ci([]))
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, float("nan")])


def test_mean_ci_agrees_with_scipy_interval() -> None:
    x = [1.21, 1.18, 1.25, 1.19, 1.22]
    _, lo, hi = mean_ci(x)
    ref = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert (lo, hi) == pytest.approx(ref, abs=1e-12)


def test_paired_diff_hand_computed() -> None:
    a = [1.30, 1.32, 1.31]
    b = [1.20, 1.21, 1.22]
    r = paired_diff(a, b)
    # d = (0.10, 0.11, 0.09): mean 0.10, sd 0.01, t = 0.10 / (0.01 / sqrt 3)
    t = 0.10 / (0.01 / math.sqrt(3))
    half = T975_DF2 * 0.01 / math.sqrt(3)
    assert r["mean_diff"] == pytest.approx(0.10, abs=1e-12)
    assert (r["lo"], r["hi"]) == pytest.approx((0.10 - half, 0.10 + half), abs=1e-12)
    assert r["t"] == pytest.approx(t, rel=1e-9)
    assert r["p_value"] == pytest.approx(p_df2(t), abs=1e-9)
    assert (r["n"], r["df"], r["test"], r["note"]) == (3, 2, "paired t-test", "")


def test_paired_diff_sign_and_symmetry() -> None:
    a, b = [2.0, 3.5, 2.5], [1.0, 2.0, 3.0]  # d = (1, 1.5, -0.5): mean 2/3, sd sqrt(13/12)
    r, s = paired_diff(a, b), paired_diff(b, a)
    t = (2 / 3) / (math.sqrt(13 / 12) / math.sqrt(3))
    assert r["p_value"] == pytest.approx(p_df2(t), abs=1e-9)
    assert s["mean_diff"] == pytest.approx(-r["mean_diff"], abs=1e-15)
    assert (s["lo"], s["hi"]) == pytest.approx((-r["hi"], -r["lo"]), abs=1e-12)
    assert s["p_value"] == pytest.approx(r["p_value"], abs=1e-15)
    assert r["lo"] < 0 < r["hi"]


def test_paired_diff_two_pairs_is_cauchy() -> None:
    r = paired_diff([1.15, 1.17], [1.20, 1.21])  # d = (-0.05, -0.04)
    t = -0.045 / (math.sqrt(2 * 0.005**2) / math.sqrt(2))
    assert r["p_value"] == pytest.approx(p_df1(t), abs=1e-9)
    half = math.tan(0.475 * math.pi) * math.sqrt(2 * 0.005**2) / math.sqrt(2)
    assert (r["lo"], r["hi"]) == pytest.approx((-0.045 - half, -0.045 + half), abs=1e-9)


def test_paired_diff_degenerate() -> None:
    one = paired_diff([1.3], [1.2])
    assert one["mean_diff"] == pytest.approx(0.1) and one["n"] == 1
    assert math.isnan(one["lo"]) and math.isnan(one["p_value"]) and "n >= 2" in one["note"]
    none = paired_diff([], [])
    assert none["n"] == 0 and math.isnan(none["mean_diff"]) and none["note"] == "no pairs"
    same = paired_diff([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])  # identical differences: t undefined
    assert same["mean_diff"] == pytest.approx(0.5)
    assert same["lo"] == same["hi"] == same["mean_diff"]
    assert math.isnan(same["p_value"]) and "undefined" in same["note"]
    with pytest.raises(ValueError, match="equal length"):
        paired_diff([1.0, 2.0], [1.0])


def test_excludes_zero() -> None:
    assert excludes_zero(0.1, 0.2) and excludes_zero(-0.2, -0.1)
    assert not excludes_zero(-0.1, 0.2)
    assert not excludes_zero(float("nan"), 0.2)
    assert not excludes_zero(0.0, 0.2)  # touching zero does not exclude it
