"""Statistics for comparing arms: pure functions, exact tests.

Two sources of variation limit a comparison: the seeds (a handful per arm) and the
held-out documents (a few dozen). ``paired_bootstrap`` resamples both at once, with the
same documents and the same seeds for the two arms, so what they have in common cancels;
``bootstrap_bpb`` gives one arm's own interval the same way. Records without per-document
losses fall back to Student-t intervals over seeds (``mean_ci``, ``paired_diff``), pairing
runs that share a seed (same data order, same initial body weights).

Across a study's primary comparisons p-values are Holm-adjusted (``holm``); a difference
is called practically equivalent only by TOST, when the interval at 1 - 2 alpha lies
inside the margin (``equivalent``).

Degenerate inputs give NaN, never an exception: one value has no spread, so its
interval is (nan, nan); a paired comparison needs at least two pairs, and identical
differences leave the t statistic undefined. ``paired_diff`` says which in ``note``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

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


# ------------------------------------------------------------------------------ bootstrap

BOOTSTRAP_B = 10_000  # replicates: a p-value resolves to 1e-4
BOOTSTRAP_SEED = 20_240_917  # fixed, so a report is the same byte for byte on every build
TOST_CONFIDENCE = 0.90  # TOST at alpha = 0.05 is the 1 - 2 alpha interval inside the margin
_CHUNK_CELLS = 2_000_000  # replicates x documents held in memory at once
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap estimate: the point value on the full data, percentile intervals at
    ``confidence`` (lo, hi) and at ``TOST_CONFIDENCE`` (tost_lo, tost_hi), and for a
    difference the two-sided bootstrap p-value of zero (NaN for a single arm's figure)."""

    estimate: float
    lo: float
    hi: float
    tost_lo: float
    tost_hi: float
    p_value: float
    n_seeds: int
    n_docs: int
    n_boot: int
    replicates: np.ndarray = field(repr=False, compare=False)


def _cells(values: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be seeds x documents (2-D), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _bytes(values: np.ndarray | Sequence[float], shape: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    arr = np.broadcast_to(arr, shape) if arr.ndim == 1 else _cells(arr, name)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, the nats {shape}")
    if not np.all(arr > 0):
        raise ValueError(f"{name}: every document needs a positive byte count")
    return arr


def _resampled_sums(
    arrays: Sequence[np.ndarray], n_boot: int, seed: int
) -> list[np.ndarray]:
    """Each (seeds x documents) array summed over B resampled (seed, document) cells.

    Replicate b draws S seeds and D documents with replacement; its cells are every
    (drawn seed, drawn document) pair, so a cell's weight is (times its seed was drawn) x
    (times its document was drawn). One draw serves every array: that is the pairing.
    """
    n_seeds, n_docs = arrays[0].shape
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in arrays]
    chunk = max(1, _CHUNK_CELLS // max(n_docs, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        v = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=size).astype(float)
        w = rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=size).astype(float)
        for arr, res in zip(arrays, out, strict=True):
            res[start : start + size] = ((v @ arr) * w).sum(axis=1)
    return out


def bootstrap_p(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of zero: 2 min(share <= 0, share >= 0), in [1/B, 1]."""
    r = np.asarray(replicates, dtype=np.float64)
    if r.size == 0:
        return NAN
    p = 2.0 * min(float(np.mean(r <= 0.0)), float(np.mean(r >= 0.0)))
    return float(min(1.0, max(p, 1.0 / r.size)))


def _interval(r: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    lo, hi = np.quantile(r, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(lo), float(hi)


def _result(
    estimate: float, r: np.ndarray, p: float, shape: tuple[int, int], confidence: float
) -> Bootstrap:
    lo, hi = _interval(r, confidence)
    tlo, thi = _interval(r, TOST_CONFIDENCE)
    return Bootstrap(estimate, lo, hi, tlo, thi, p, shape[0], shape[1], int(r.size), r)


def bootstrap_bpb(
    nats: np.ndarray | Sequence[Sequence[float]],
    doc_bytes: np.ndarray | Sequence[float],
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_B,
    seed: int = BOOTSTRAP_SEED,
) -> Bootstrap:
    """One arm's bpb, sum(nats) / (ln 2 sum(bytes)), with a bootstrap over seeds x documents.

    ``nats``: seeds x documents, model nats plus any lossless charges of each document;
    ``doc_bytes``: the same shape, or one row of per-document bytes shared by every seed.
    """
    n = _cells(nats, "nats")
    if n.size == 0:
        raise ValueError("no (seed, document) cells to bootstrap")
    b = _bytes(doc_bytes, n.shape, "doc_bytes")
    sums, bsums = _resampled_sums([n, b], n_boot, seed)
    return _result(float(n.sum() / (_LN2 * b.sum())), sums / (_LN2 * bsums), NAN, n.shape,
                   confidence)


def paired_bootstrap(
    arm_nats: np.ndarray | Sequence[Sequence[float]],
    ref_nats: np.ndarray | Sequence[Sequence[float]],
    arm_bytes: np.ndarray | Sequence[float],
    ref_bytes: np.ndarray | Sequence[float] | None = None,
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_B,
    seed: int = BOOTSTRAP_SEED,
) -> Bootstrap:
    """bpb(arm) - bpb(ref), paired over documents and seeds, with its bootstrap CI and p.

    Row s of both nats arrays is the same seed and column d the same document (seeds both
    arms completed; documents of the same held-out split(s)). Each replicate resamples
    seeds and documents with replacement, the same draws for both arms, and takes the
    difference of the two bpb over those cells. ``estimate`` is the difference on the full
    data; ``p_value`` is ``bootstrap_p`` of the replicates. ``ref_bytes`` defaults to
    ``arm_bytes`` (the same text).
    """
    a = _cells(arm_nats, "arm_nats")
    r = _cells(ref_nats, "ref_nats")
    if a.shape != r.shape:
        raise ValueError(f"arm and reference cells differ in shape: {a.shape} vs {r.shape}")
    if a.size == 0:
        raise ValueError("no (seed, document) cells to bootstrap")
    ab = _bytes(arm_bytes, a.shape, "arm_bytes")
    rb = _bytes(arm_bytes if ref_bytes is None else ref_bytes, a.shape, "ref_bytes")
    sa, sab, sr, srb = _resampled_sums([a, ab, r, rb], n_boot, seed)
    diffs = sa / (_LN2 * sab) - sr / (_LN2 * srb)
    estimate = float(a.sum() / (_LN2 * ab.sum()) - r.sum() / (_LN2 * rb.sum()))
    return _result(estimate, diffs, bootstrap_p(diffs), a.shape, confidence)


# ------------------------------------------------------------------------------ families


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    With the m finite p-values sorted ascending, p_(i) becomes max_{j <= i} min(1,
    (m - j + 1) p_(j)). NaN (a comparison without a p-value) stays NaN and does not count
    toward m. Rejecting where the adjusted p < alpha controls the family-wise error at alpha.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def equivalent(lo: float, hi: float, margin: float) -> bool:
    """TOST: the interval (at 1 - 2 alpha, e.g. 90% for alpha = 0.05) lies inside
    (-margin, +margin), so both one-sided tests reject a difference of margin or more."""
    return bool(
        np.isfinite(lo) and np.isfinite(hi) and margin > 0 and -margin < lo and hi < margin
    )


__all__ = [
    "BOOTSTRAP_B",
    "BOOTSTRAP_SEED",
    "TOST_CONFIDENCE",
    "Bootstrap",
    "bootstrap_bpb",
    "bootstrap_p",
    "equivalent",
    "excludes_zero",
    "holm",
    "mean_ci",
    "paired_bootstrap",
    "paired_diff",
    "t_critical",
]
