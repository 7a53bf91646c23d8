"""The 2x2 factorial and the data-size regime: pure functions on run records.

``factorial_effects``: with the four arms bpe/word x scratch/word2vec, the main effect of
the tokenizer, of the init and their interaction, each a contrast of the four arms' bpb over
the same (seed, document) cells, with ``stats.contrast_interval``'s interval (document
bootstrap + seed variance); records without per-document losses fall back to Student t over
the per-seed contrasts. ``datasize_table`` and ``gain_trend``: the arms run on fractions of
the train split (labels ``<arm>+data<f>``), the init's gain at each fraction, and a
log-linear fit of that gain against training bytes. The fit's intervals use t quantiles
at Welch-Satterthwaite degrees of freedom built from the points' own intervals (each gain's
variance is estimated with its interval's df), never normal quantiles: with two points the
line passes through them exactly, and its uncertainty is only as well known as theirs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embinit.study import compare as C
from embinit.study.load import completed, numeric_col
from embinit.study.stats import contrast_interval, mean_ci, t_critical

FACTORIAL_ARMS = ("bpe+scratch", "bpe+word2vec", "word+scratch", "word+word2vec")
# Weights on (bpe+scratch, bpe+word2vec, word+scratch, word+word2vec); negative favours
# word (tokenizer), word2vec (init), or word2vec more on words than on BPE (interaction).
CONTRASTS: dict[str, tuple[float, float, float, float]] = {
    "tokenizer (word − BPE)": (-0.5, -0.5, 0.5, 0.5),
    "init (word2vec − scratch)": (-0.5, 0.5, -0.5, 0.5),
    "interaction (init effect on word − on BPE)": (1.0, -1.0, -1.0, 1.0),
}
EFFECT_COLUMNS = ["effect", "estimate", "lo", "hi", "p", "df", "n_seeds", "n_docs",
                  "n_docs_eff", "method", "note"]
_DATA = re.compile(r"\+data([0-9.eE+-]+)$")


def _empty(cols: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(cols))


def aligned_cells(
    runs: pd.DataFrame, docs: pd.DataFrame, arms: Sequence[str], seeds: Sequence[int],
    splits: Sequence[str], gaps: pd.DataFrame | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Per arm, seeds x documents of (nats + charges) and bytes, every arm's documents in
    the first arm's order; None when any arm cannot be paired with the first."""
    nats, nbytes = [], []
    for arm in arms[1:]:
        cells, _, _ = C._doc_cells(docs, gaps, [arms[0], arm], seeds, splits)
        if cells is None:
            return None
        if not nats:
            nats.append(cells.nats[0])
            nbytes.append(cells.nbytes[0])
        nats.append(cells.nats[1])
        nbytes.append(cells.nbytes[1])
    return nats, nbytes


def factorial_effects(
    runs: pd.DataFrame, docs: pd.DataFrame, scope: str = "held-out", confidence: float = 0.95,
    gaps: pd.DataFrame | None = None, arms: Sequence[str] = FACTORIAL_ARMS,
) -> pd.DataFrame:
    """One row per effect of ``CONTRASTS`` (columns ``EFFECT_COLUMNS``); empty unless all
    four arms have completed runs on common seeds."""
    done = completed(runs)
    seed_sets = [set(done.loc[done["arm"] == a, "seed"]) for a in arms]
    seeds = sorted(set.intersection(*seed_sets)) if all(seed_sets) else []
    if not seeds:
        return _empty(EFFECT_COLUMNS)
    splits = C.SCOPES[scope]
    cells = aligned_cells(runs, docs, arms, seeds, splits, gaps)
    rows = []
    for name, w in CONTRASTS.items():
        if cells is not None:
            iv = contrast_interval(cells[0], cells[1], w, confidence)
            rows.append({"effect": name, "estimate": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                         "p": iv.p_value, "df": iv.df, "n_seeds": iv.n_seeds,
                         "n_docs": iv.n_docs, "n_docs_eff": iv.n_docs_eff,
                         "method": C.COMPONENTS, "note": ""})
            continue
        # No per-document losses: the contrast per seed, Student t over the seeds.
        figs = [C.seed_figure(done[done["arm"] == a], splits) for a in arms]
        per_seed = np.array([sum(wk * float(f.get(s, math.nan)) for wk, f in zip(w, figs,
                                                                                 strict=True))
                             for s in seeds])
        per_seed = per_seed[np.isfinite(per_seed)]
        m, lo, hi = mean_ci(per_seed, confidence)
        p = math.nan
        if len(per_seed) > 1 and np.std(per_seed, ddof=1) > 0:
            from scipy import stats as st

            p = float(st.ttest_1samp(per_seed, 0.0).pvalue)
        rows.append({"effect": name, "estimate": m, "lo": lo, "hi": hi, "p": p,
                     "df": len(per_seed) - 1 if np.isfinite(lo) else math.nan,
                     "n_seeds": len(per_seed), "n_docs": 0, "n_docs_eff": math.nan,
                     "method": C.SEED_T,
                     "note": "no per-document losses: Student t over seeds"})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


# ------------------------------------------------------------------------------ data size


def split_fraction(arm: str) -> tuple[str, float]:
    """(base arm, train fraction) of a label: ``word+word2vec+data0.3`` -> (word+word2vec, 0.3)."""
    m = _DATA.search(arm)
    if not m:
        return arm, 1.0
    try:
        return arm[: m.start()], float(m.group(1))
    except ValueError:
        return arm, 1.0


DATASIZE_COLUMNS = ["arm", "base", "fraction", "train_bytes", "bpb", "bpb_lo", "bpb_hi",
                    "n_seeds"]


def _data_bytes(runs: pd.DataFrame) -> pd.Series:
    """The size of each run's training data (its train split, after data.train_fraction):
    the data-size axis. Bytes *seen* would equal it only at one epoch; a bytes budget gives
    every fraction the same bytes seen (then the axis measures repetition). Records without
    the split size fall back to bytes seen."""
    size = numeric_col(runs, "data_train_bytes").dropna()
    return size if len(size) else numeric_col(runs, "train_bytes_seen").dropna()


def datasize_table(runs: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """Per arm: its base arm, train fraction, mean training bytes seen and its held-out
    figure (from a ``heldout_comparisons`` table); empty unless some base arm was run at
    two or more fractions."""
    done = completed(runs)
    own = C.arm_rows(comp).set_index("arm")
    rows = []
    for arm in sorted(set(done["arm"])):
        base, frac = split_fraction(arm)
        sub = done[done["arm"] == arm]
        nbytes = _data_bytes(sub)
        r = own.loc[arm] if arm in own.index else None
        rows.append({"arm": arm, "base": base, "fraction": frac,
                     "train_bytes": float(nbytes.mean()) if len(nbytes) else math.nan,
                     "bpb": math.nan if r is None else float(r["bpb"]),
                     "bpb_lo": math.nan if r is None else float(r["bpb_lo"]),
                     "bpb_hi": math.nan if r is None else float(r["bpb_hi"]),
                     "n_seeds": len(sub)})
    df = pd.DataFrame(rows, columns=DATASIZE_COLUMNS)
    multi = df.groupby("base")["fraction"].nunique()
    keep = set(multi[multi >= 2].index)
    return df[df["base"].isin(keep)].sort_values(["base", "fraction"]).reset_index(drop=True)


GAIN_COLUMNS = ["tokenizer", "fraction", "arm", "versus", "train_bytes", "gain", "lo", "hi",
                "se", "df", "tost_lo", "tost_hi", "p", "n_seeds", "method"]


def _frac_label(base: str, frac: float) -> str:
    return base if frac == 1.0 else f"{base}+data{frac:g}"


def gain_by_fraction(
    runs: pd.DataFrame, docs: pd.DataFrame, init: str = "word2vec",
    tokenizers: Sequence[str] = ("word", "bpe"), confidence: float = 0.95,
    gaps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per tokenizer and train fraction where both ``<tok>+<init>`` and ``<tok>+scratch``
    ran: the gain (init minus scratch, bpb; negative favours the init) with its interval,
    standard error and that interval's df, and the training bytes (the scratch arm's
    training data size)."""
    done = completed(runs)
    present = set(done["arm"])
    rows = []
    for tok in tokenizers:
        fracs = sorted({split_fraction(a)[1] for a in present
                        if split_fraction(a)[0] in (f"{tok}+{init}", f"{tok}+scratch")})
        for f in fracs:
            a, b = _frac_label(f"{tok}+{init}", f), _frac_label(f"{tok}+scratch", f)
            if a not in present or b not in present:
                continue
            r = C.compare_arms(runs, docs, a, b, confidence=confidence, gaps=gaps)
            d, hi, df = r.get("diff", math.nan), r.get("diff_hi", math.nan), r.get("df", math.nan)
            se = (hi - d) / t_critical(confidence, df) if np.isfinite(hi) and np.isfinite(df) \
                else math.nan
            nbytes = _data_bytes(done[done["arm"] == b])
            rows.append({"tokenizer": tok, "fraction": f, "arm": a, "versus": b,
                         "train_bytes": float(nbytes.mean()) if len(nbytes) else math.nan,
                         "gain": d, "lo": r.get("diff_lo", math.nan), "hi": hi, "se": se,
                         "df": df if np.isfinite(se) else math.nan, "tost_lo": r.get("tost_lo", math.nan),
                         "tost_hi": r.get("tost_hi", math.nan), "p": r.get("p", math.nan),
                         "n_seeds": r.get("n_seeds", 0), "method": r.get("method", "")})
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


@dataclass(frozen=True)
class Trend:
    """gain = intercept + slope · ln(bytes / center), weighted by 1 / se² of each point.

    Weighted, the points' variances are taken as their own intervals give them, so the
    slope's standard error is 1 / sqrt(Σ w (x − x̄)²); each variance is itself estimated,
    with its interval's df (``point_df``), so an interval of any linear combination Σ a_i y_i
    of the gains (the slope, a fitted or extrapolated gain) uses t at the
    Welch-Satterthwaite df (Σ a_i² v_i)² / Σ (a_i² v_i)² / df_i: NaN, and no interval, when
    a point's df is not known. Unweighted, the variance comes from the residuals, with
    n − 2 df. ``n`` points, at ``point_x`` = ln(bytes) with variances ``point_var``.
    """

    slope: float  # bpb per e-fold of training bytes
    slope_se: float
    intercept: float  # the fitted gain at ``center`` bytes
    intercept_se: float
    center: float  # the weighted mean of ln(bytes)
    n: int
    weighted: bool
    point_x: tuple[float, ...] = ()
    point_var: tuple[float, ...] = ()
    point_df: tuple[float, ...] = ()

    def predict(self, nbytes: float) -> tuple[float, float]:
        """(fitted gain, its standard error) at ``nbytes`` training bytes."""
        dx = math.log(nbytes) - self.center
        return (self.intercept + self.slope * dx,
                math.sqrt(self.intercept_se**2 + (dx * self.slope_se) ** 2))

    def _df(self, dx: float | None) -> float:
        """Degrees of freedom of the fitted gain at ln(bytes) = center + dx, or of the slope
        (dx None)."""
        if not self.weighted:
            return float(self.n - 2)
        x, v, dfs = (np.asarray(a, dtype=float) for a in (self.point_x, self.point_var,
                                                          self.point_df))
        if not len(x) or not (np.all(np.isfinite(dfs)) and np.all(dfs > 0)):
            return math.nan
        w = 1.0 / v
        sxx = float(np.sum(w * (x - self.center) ** 2))
        c = w * (x - self.center) / sxx  # the slope's weights on the gains
        a = c if dx is None else w / np.sum(w) + dx * c
        terms = a**2 * v
        return float(np.sum(terms) ** 2 / np.sum(terms**2 / dfs))

    @property
    def slope_df(self) -> float:
        """Degrees of freedom of the slope's standard error (NaN: not known)."""
        return self._df(None)

    def predict_df(self, nbytes: float) -> float:
        """Degrees of freedom of ``predict``'s standard error at ``nbytes``."""
        return self._df(math.log(nbytes) - self.center)

    def slope_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The slope's interval, t at ``slope_df`` (NaN when that df is not known)."""
        df = self.slope_df
        if not (np.isfinite(df) and df > 0):
            return math.nan, math.nan
        half = t_critical(confidence, df) * self.slope_se
        return self.slope - half, self.slope + half

    def zero_crossing(self) -> float:
        """Training bytes where the fitted gain reaches 0 (NaN if it never does ahead)."""
        if not (self.slope > 0 and self.intercept < 0):
            return math.nan
        return math.exp(self.center - self.intercept / self.slope)


def gain_trend(points: pd.DataFrame) -> Trend | None:
    """The log-linear fit of ``gain`` on ln(``train_bytes``) over a ``gain_by_fraction``
    table of one tokenizer; None with fewer than two distinct training sizes. Weighted by
    1 / se² when every point has a positive se (each point's ``df``, where the table has
    it, sets the intervals' df); else unweighted, its variance from the residuals (needs
    three points)."""
    p = points.dropna(subset=["gain", "train_bytes"])
    p = p[p["train_bytes"] > 0]
    if p["train_bytes"].nunique() < 2:
        return None
    x = np.log(p["train_bytes"].to_numpy(float))
    y = p["gain"].to_numpy(float)
    se = p["se"].to_numpy(float)
    dfs = p["df"].to_numpy(float) if "df" in p else np.full(len(x), math.nan)
    weighted = bool(np.all(np.isfinite(se)) and np.all(se > 0))
    if weighted:
        w = 1.0 / se**2
        scale = 1.0
    else:
        if len(x) < 3:
            return None
        w = np.ones_like(x)
    xc = float(np.sum(w * x) / np.sum(w))
    sxx = float(np.sum(w * (x - xc) ** 2))
    slope = float(np.sum(w * (x - xc) * (y - np.sum(w * y) / np.sum(w))) / sxx)
    intercept = float(np.sum(w * y) / np.sum(w))
    if not weighted:
        resid = y - (intercept + slope * (x - xc))
        scale = float(np.sum(resid**2) / (len(x) - 2))
    return Trend(slope, math.sqrt(scale / sxx), intercept, math.sqrt(scale / float(np.sum(w))),
                 xc, len(x), weighted, tuple(float(v) for v in x),
                 tuple(float(v) for v in se**2) if weighted else (),
                 tuple(float(v) for v in dfs) if weighted else ())


def trend_summary(trend: Trend, largest: float, factors: Sequence[float] = (10.0, 100.0),
                  confidence: float = 0.95) -> dict[str, Any]:
    """The fit's extrapolation to ``factors`` times the largest training bytes run: per
    factor (gain, lo, hi, df), t at the Welch-Satterthwaite df (``Trend``; NaN bounds when
    that df is not known)."""
    out: dict[str, Any] = {"zero_crossing": trend.zero_crossing()}
    for f in factors:
        g, se = trend.predict(largest * f)
        df = trend.predict_df(largest * f)
        half = t_critical(confidence, df) * se if np.isfinite(df) and df > 0 else math.nan
        out[f"x{f:g}"] = (g, g - half, g + half, df)
    return out


__all__ = [
    "CONTRASTS",
    "DATASIZE_COLUMNS",
    "EFFECT_COLUMNS",
    "FACTORIAL_ARMS",
    "GAIN_COLUMNS",
    "Trend",
    "aligned_cells",
    "datasize_table",
    "factorial_effects",
    "gain_by_fraction",
    "gain_trend",
    "split_fraction",
    "trend_summary",
]
