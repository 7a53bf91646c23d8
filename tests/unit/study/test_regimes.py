"""study.regimes: factorial contrasts with a known interaction, and the data-size trend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from embinit.study.load import load_study
from embinit.study.regimes import (
    factorial_effects,
    gain_trend,
    split_fraction,
    trend_summary,
)
from embinit.study.stats import contrast_interval, effective_docs, paired_interval
from tests.unit.study.claims_fabricate import alternating, const, write_arm
from tests.unit.study.fabricate import DOC_BYTES

# word -0.04, word2vec -0.02, and -0.03 more when both: tokenizer ½[(-0.04 - 0.09) - (0 -
# 0.02)] = -0.055, init ½[(-0.02 - 0.09) - (0 - 0.04)] = -0.035, interaction (-0.09 + 0.04)
# - (-0.02 - 0) = -0.03.
OFFSETS = {"bpe+scratch": 0.0, "bpe+word2vec": -0.02, "word+scratch": -0.04,
           "word+word2vec": -0.09}


def _factorial(tmp_path: Path, noise: float = 0.0) -> Path:
    s = tmp_path / "f"
    for arm, x in OFFSETS.items():
        write_arm(s, arm, alternating(x, noise) if noise and arm == "word+word2vec" else const(x))
    return s


def test_factorial_effects_recover_known_contrasts(tmp_path: Path) -> None:
    study = load_study(_factorial(tmp_path))
    eff = factorial_effects(study.runs, study.docs).set_index("effect")
    assert list(eff["estimate"]) == pytest.approx([-0.055, -0.035, -0.03], abs=1e-9)
    # Constant offsets: every seed and document agrees, so the intervals collapse.
    assert list(eff["hi"] - eff["lo"]) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert set(eff["n_docs"]) == {9} and set(eff["n_seeds"]) == {3}
    sizes = [b for v in DOC_BYTES.values() for b in v]
    assert list(eff["n_docs_eff"]) == pytest.approx([effective_docs(sizes)] * 3)


def test_factorial_interval_widens_with_document_noise(tmp_path: Path) -> None:
    study = load_study(_factorial(tmp_path, noise=0.05))
    eff = factorial_effects(study.runs, study.docs).set_index("effect")
    inter = eff.loc["interaction (init effect on word − on BPE)"]
    assert inter["lo"] < -0.03 < inter["hi"]
    assert abs(inter["estimate"] + 0.03) < 0.01


def test_factorial_empty_without_all_four_arms(tmp_path: Path) -> None:
    s = tmp_path / "f"
    for arm in ("bpe+scratch", "word+scratch", "word+word2vec"):
        write_arm(s, arm, const(0.0))
    study = load_study(s)
    assert factorial_effects(study.runs, study.docs).empty


def test_contrast_interval_with_weights_1_minus_1_is_paired_interval() -> None:
    rng = np.random.default_rng(0)
    a, r = rng.uniform(1, 2, (3, 7)), rng.uniform(1, 2, (3, 7))
    nbytes = rng.integers(100, 200, 7).astype(float)
    c = contrast_interval([a, r], [nbytes, nbytes], [1.0, -1.0], n_boot=500)
    p = paired_interval(a, r, nbytes, n_boot=500)
    assert (c.estimate, c.lo, c.hi, c.p_value) == pytest.approx(
        (p.estimate, p.lo, p.hi, p.p_value), rel=1e-12)


def test_split_fraction() -> None:
    assert split_fraction("word+word2vec+data0.3") == ("word+word2vec", 0.3)
    assert split_fraction("word+scratch+untied+data0.1") == ("word+scratch+untied", 0.1)
    assert split_fraction("word+word2vec") == ("word+word2vec", 1.0)


def test_gain_trend_weighted_fit_is_exact_on_a_line() -> None:
    pts = pd.DataFrame({"train_bytes": [math.e**0, math.e**1, math.e**2],
                        "gain": [-0.2, -0.1, 0.0], "se": [0.01, 0.01, 0.01]})
    tr = gain_trend(pts)
    assert tr is not None and tr.weighted
    assert tr.slope == pytest.approx(0.1) and tr.intercept == pytest.approx(-0.1)
    assert tr.center == pytest.approx(1.0)
    # Known variances: var(slope) = 1 / Σ w (x - x̄)² = 0.01² / 2.
    assert tr.slope_se == pytest.approx(0.01 / math.sqrt(2))
    assert tr.zero_crossing() == pytest.approx(math.e**2)
    g, se = tr.predict(math.e**3)
    assert g == pytest.approx(0.1)
    assert se == pytest.approx(math.sqrt(0.01**2 / 3 + (2 * 0.01 / math.sqrt(2)) ** 2))


def test_two_points_get_t_at_the_points_own_df_not_a_normal_quantile() -> None:
    # Two sizes e-fold apart, gains -0.07 and 0.00, each with se 0.02 from an interval of
    # 2 df (3 seeds). The line passes through both: slope 0.07, se sqrt(2) 0.02 = 0.0283.
    # With z = 1.96 the slope's interval [0.015, 0.125] excludes zero; its variance is
    # estimated with (0.0008)² / (2 x 0.0004² / 2) = 4 Welch-Satterthwaite df, and t_{.975,4}
    # = 2.776 gives [-0.008, 0.148]: a slope of zero is not excluded.
    pts = pd.DataFrame({"train_bytes": [math.e**0, math.e**1], "gain": [-0.07, 0.0],
                        "se": [0.02, 0.02], "df": [2.0, 2.0]})
    tr = gain_trend(pts)
    assert tr is not None and tr.n == 2 and tr.weighted
    assert tr.slope == pytest.approx(0.07) and tr.slope_se == pytest.approx(0.02 * math.sqrt(2))
    z = 1.959963984540054
    assert tr.slope - z * tr.slope_se > 0  # the old interval
    assert tr.slope_df == pytest.approx(4.0)
    lo, hi = tr.slope_interval()
    assert (lo, hi) == pytest.approx((0.07 - st.t.ppf(0.975, 4) * tr.slope_se,
                                      0.07 + st.t.ppf(0.975, 4) * tr.slope_se))
    assert lo < 0 < hi
    # Unequal df: the point with fewer weighs on the df more.
    uneven = gain_trend(pts.assign(df=[1.0, 30.0]))
    assert uneven is not None
    assert uneven.slope_df == pytest.approx(0.0008**2 / (0.0004**2 / 1 + 0.0004**2 / 30))
    # Extrapolations too: a fitted value at ln(bytes) = x0 is Σ a_i y_i, its df the same sum.
    ext = trend_summary(tr, math.e, factors=(10.0,))
    g, elo, ehi, edf = ext["x10"]
    x0 = 1.0 + math.log(10.0)
    a = np.array([1 - x0, x0])  # the line through (0, y0) and (1, y1) at x0
    assert g == pytest.approx(0.07 * x0 - 0.07)
    assert edf == pytest.approx(np.sum(a**2 * 0.0004) ** 2 / np.sum((a**2 * 0.0004) ** 2 / 2))
    _, se = tr.predict(math.e * 10)
    assert ehi - g == pytest.approx(st.t.ppf(0.975, edf) * se)
    # A point without a df: no interval drawn, rather than one from a normal quantile.
    blind = gain_trend(pts.assign(df=[2.0, float("nan")]))
    assert blind is not None and math.isnan(blind.slope_df)
    assert all(math.isnan(v) for v in blind.slope_interval())
    assert all(math.isnan(v) for v in trend_summary(blind, math.e)["x10"][1:])


def test_gain_trend_needs_two_sizes() -> None:
    pts = pd.DataFrame({"train_bytes": [1e6, 1e6], "gain": [-0.1, -0.2], "se": [0.01, 0.01]})
    assert gain_trend(pts) is None


def test_datasize_section_and_figure(tmp_path: Path) -> None:
    from embinit.study.report.build import build_report

    s = tmp_path / "d"
    for f in (0.1, 1.0):
        tag = "" if f == 1.0 else f"+data{f:g}"
        write_arm(s, f"word+scratch{tag}", const(0.0), train_bytes=1e6 * f)
        write_arm(s, f"word+word2vec{tag}", alternating(-0.05 * (1.5 - f), 0.004),
                  train_bytes=1e6 * f)
    rep = build_report(load_study(s))
    assert "figures/datasize.png" in rep.files
    md = rep.files["report.md"].decode()
    sec = md[md.index("## Data size"):]
    assert "| word+scratch+data0.1 | 0.10 | 100,000 |" in sec
    assert "| word | 0.10 | 100,000 | -0.070 [" in sec
    assert "extrapolation of a straight line in log bytes" in sec
