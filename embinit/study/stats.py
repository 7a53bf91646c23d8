"""Statistics for comparing arms: pure functions, exact tests.

Two sources of variation limit a comparison: the seeds (a handful per arm) and the
held-out documents (a few dozen). ``paired_interval`` adds the two as variance components:
the documents' from a bootstrap over documents alone (the same draw for both arms, every
seed kept, so what the arms share cancels), the seeds' from the sample variance of the
per-seed differences, with Welch-Satterthwaite degrees of freedom for the t quantile (a
bootstrap over three seeds would understate their variance by a third and use normal
quantiles where t with 2 df is due). ``bpb_interval`` gives one arm's own interval the same
way. Records without per-document losses fall back to Student-t intervals over seeds
(``mean_ci``, ``paired_diff``), pairing runs that share a seed (same data order, same
initial body weights).

Held-out documents have very unequal sizes, so D documents carry less information than D
equal ones: the document component's degrees of freedom use their effective number
(``effective_docs``, Kish's (Σ b)² / Σ b² of the documents' bytes) in place of D.

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
from dataclasses import dataclass

import numpy as np
from scipy import special as _sp
from scipy import stats as _st

NAN = float("nan")


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (drop NaN/inf values first): {arr.tolist()}")
    return arr


def t_critical(confidence: float, df: float) -> float:
    """Two-sided Student-t critical value: P(|T_df| <= t) = confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(_sp.stdtrit(df, 0.5 + confidence / 2.0))  # = scipy.stats.t.ppf, faster


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


# ------------------------------------------------------------------------------ documents x seeds

BOOTSTRAP_B = 10_000  # document resamples behind the document variance
BOOTSTRAP_SEED = 20_240_917  # fixed, so a report is the same byte for byte on every build
TOST_CONFIDENCE = 0.90  # TOST at alpha = 0.05 is the 1 - 2 alpha interval inside the margin
_CHUNK_CELLS = 2_000_000  # replicates x documents held in memory at once
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class Interval:
    """A bpb figure (one arm's, or a difference of two) with its variance-components interval.

    ``estimate`` on every (seed, document) cell; ``v_doc`` and ``v_seed`` the document and
    seed components of its variance, ``se`` = sqrt(v_doc + v_seed) and ``df`` their
    Welch-Satterthwaite degrees of freedom (NaN when se is 0), the document component's
    counted with ``n_docs_eff`` - 1 (``effective_docs``); (lo, hi) = estimate ± t_df
    se at ``confidence``, (tost_lo, tost_hi) the same at ``TOST_CONFIDENCE``; ``p_value``
    two-sided from t_df for a difference (NaN for a single arm's figure).
    """

    estimate: float
    lo: float
    hi: float
    tost_lo: float
    tost_hi: float
    p_value: float
    se: float
    df: float
    v_doc: float
    v_seed: float
    n_seeds: int
    n_docs: int
    n_boot: int
    n_docs_eff: float = NAN  # ``effective_docs`` of the documents' bytes: the df's D


def effective_docs(doc_bytes: np.ndarray | Sequence[float]) -> float:
    """Kish's effective number of documents, (Σ b)² / Σ b², of documents with ``doc_bytes``.

    A byte-weighted figure (bpb is a ratio of sums) weighs each document by its bytes, so
    D documents of unequal size carry as much information as this many equal ones: D when
    all are the same size, 1 when one holds every byte. Empty documents count for nothing.
    """
    b = np.asarray(doc_bytes, dtype=np.float64).ravel()
    if b.size == 0 or not np.all(np.isfinite(b)) or np.any(b < 0) or not b.sum() > 0:
        raise ValueError(f"doc_bytes must be finite, non-negative and not all zero: {b.tolist()}")
    return float(b.sum() ** 2 / np.sum(b * b))


def _cells(values: np.ndarray | Sequence[Sequence[float]], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be seeds x documents (2-D), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _bytes(values: np.ndarray | Sequence[float], shape: tuple[int, int], name: str,
           allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    arr = np.broadcast_to(arr, shape) if arr.ndim == 1 else _cells(arr, name)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, the nats {shape}")
    if not allow_empty and not np.all(arr > 0):
        raise ValueError(f"{name}: every document needs a positive byte count")
    if allow_empty and not (np.all(arr >= 0) and np.all(arr.sum(axis=1) > 0)):
        raise ValueError(f"{name}: byte counts must be non-negative, every seed's total positive")
    return arr


def doc_resampled_sums(columns: Sequence[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Each per-document total (summed over every seed) summed over B resamples of the
    documents: replicate b draws D documents with replacement, one draw for every array
    (that is the pairing), and keeps every seed."""
    n_docs = columns[0].size
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in columns]
    chunk = max(1, _CHUNK_CELLS // max(n_docs, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n_docs, size=(size, n_docs))  # row b: D documents drawn
        flat = (draws + n_docs * np.arange(size)[:, None]).ravel()
        w = np.bincount(flat, minlength=size * n_docs).reshape(size, n_docs).astype(float)
        for col, res in zip(columns, out, strict=True):
            res[start : start + size] = w @ col
    return out


def _bpb(nats: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    return nats / (_LN2 * nbytes)


def welch_df(v_doc: float, v_seed: float, n_docs: float, n_seeds: int) -> float:
    """Welch-Satterthwaite degrees of freedom of v_doc + v_seed, the components estimated
    with D - 1 and S - 1 degrees of freedom: (v_doc + v_seed)^2 / (v_seed^2 / (S - 1) +
    v_doc^2 / (D - 1)). D is the effective number of documents (``effective_docs``; the
    count itself when they are of equal size), so it need not be whole. A component that is
    zero (S = 1: no seed variance; D <= 1: none between documents) adds nothing to the
    denominator; NaN when both are zero."""
    den = 0.0
    if v_seed > 0.0 and n_seeds > 1:
        den += v_seed**2 / (n_seeds - 1)
    if v_doc > 0.0 and n_docs > 1:
        den += v_doc**2 / (n_docs - 1)
    return (v_doc + v_seed) ** 2 / den if den > 0.0 else NAN


def _components(
    estimate: float,
    per_seed: np.ndarray,
    replicates: np.ndarray,
    shape: tuple[int, int],
    confidence: float,
    test: bool,
    n_eff: float,
) -> Interval:
    """The interval of ``estimate`` from the per-seed figures (seed component) and the
    document-resampled replicates (document component, ``n_eff`` effective documents)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_seeds, n_docs = shape
    v_doc = float(np.var(replicates, ddof=1)) if replicates.size > 1 else 0.0
    v_seed = float(np.var(per_seed, ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    se = math.sqrt(v_doc + v_seed)
    df = welch_df(v_doc, v_seed, n_eff, n_seeds)
    if se == 0.0:
        # No variation at all: the interval is the point, and a difference is either
        # exactly zero (p = 1) or certain (p = 0).
        p = (1.0 if estimate == 0.0 else 0.0) if test else NAN
        return Interval(estimate, estimate, estimate, estimate, estimate, p, 0.0, NAN,
                        v_doc, v_seed, n_seeds, n_docs, int(replicates.size), n_eff)
    half = t_critical(confidence, df) * se
    tost = t_critical(TOST_CONFIDENCE, df) * se
    p = float(2.0 * _sp.stdtr(df, -abs(estimate) / se)) if test else NAN
    return Interval(estimate, estimate - half, estimate + half, estimate - tost, estimate + tost,
                    p, se, df, v_doc, v_seed, n_seeds, n_docs, int(replicates.size), n_eff)


def bpb_interval(
    nats: np.ndarray | Sequence[Sequence[float]],
    doc_bytes: np.ndarray | Sequence[float],
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_B,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """One arm's bpb, sum(nats) / (ln 2 sum(bytes)) over every (seed, document) cell, with
    its variance-components interval (see ``paired_interval``; p is NaN).

    ``nats``: seeds x documents, model nats plus any lossless charges of each document;
    ``doc_bytes``: the same shape, or one row of per-document bytes shared by every seed.
    """
    n = _cells(nats, "nats")
    if n.size == 0:
        raise ValueError("no (seed, document) cells")
    b = _bytes(doc_bytes, n.shape, "doc_bytes")
    sums, bsums = doc_resampled_sums([n.sum(axis=0), b.sum(axis=0)], n_boot, seed)
    estimate = float(_bpb(n.sum(), b.sum()))
    per_seed = _bpb(n.sum(axis=1), b.sum(axis=1))
    return _components(estimate, per_seed, _bpb(sums, bsums), n.shape, confidence, test=False,
                       n_eff=effective_docs(b.sum(axis=0)))


def paired_interval(
    arm_nats: np.ndarray | Sequence[Sequence[float]],
    ref_nats: np.ndarray | Sequence[Sequence[float]],
    arm_bytes: np.ndarray | Sequence[float],
    ref_bytes: np.ndarray | Sequence[float] | None = None,
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_B,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """bpb(arm) - bpb(ref) over documents x seeds, with a variance-components interval.

    Row s of both nats arrays is the same seed and column d the same document. The estimate
    is the difference of the two arms' bpb over every cell. Its variance has two parts:
    v_doc, the variance of the difference over ``n_boot`` resamples of the documents alone
    (every seed kept, the same draw for both arms), and v_seed = s^2 / S, s^2 the sample
    variance over the S seeds of the per-seed differences (each over every document; 0 for
    S = 1). se = sqrt(v_doc + v_seed) with ``welch_df`` degrees of freedom (D - 1 when S =
    1); the interval is estimate ± t_{df} se and p two-sided from t_df. Resampling the few
    seeds instead would understate their variance by (S - 1) / S and use normal quantiles
    where t with S - 1 df is due. ``ref_bytes`` defaults to ``arm_bytes`` (the same text).
    """
    a = _cells(arm_nats, "arm_nats")
    r = _cells(ref_nats, "ref_nats")
    if a.shape != r.shape:
        raise ValueError(f"arm and reference cells differ in shape: {a.shape} vs {r.shape}")
    if a.size == 0:
        raise ValueError("no (seed, document) cells")
    ab = _bytes(arm_bytes, a.shape, "arm_bytes")
    rb = _bytes(arm_bytes if ref_bytes is None else ref_bytes, a.shape, "ref_bytes")
    sa, sab, sr, srb = doc_resampled_sums(
        [a.sum(axis=0), ab.sum(axis=0), r.sum(axis=0), rb.sum(axis=0)], n_boot, seed
    )
    estimate = float(_bpb(a.sum(), ab.sum()) - _bpb(r.sum(), rb.sum()))
    per_seed = _bpb(a.sum(axis=1), ab.sum(axis=1)) - _bpb(r.sum(axis=1), rb.sum(axis=1))
    replicates = _bpb(sa, sab) - _bpb(sr, srb)
    return _components(estimate, per_seed, replicates, a.shape, confidence, test=True,
                       n_eff=effective_docs(ab.sum(axis=0)))


def contrast_interval(
    arm_nats: Sequence[np.ndarray | Sequence[Sequence[float]]],
    arm_bytes: Sequence[np.ndarray | Sequence[float]],
    weights: Sequence[float],
    confidence: float = 0.95,
    n_boot: int = BOOTSTRAP_B,
    seed: int = BOOTSTRAP_SEED,
    allow_empty: bool = False,
) -> Interval:
    """Σ_k w_k bpb(arm k) over documents x seeds, with ``paired_interval``'s interval.

    The arms' cells are aligned (row s the same seed, column d the same document in every
    arm); one bootstrap draw of the documents serves every arm, as in ``paired_interval``
    (which is the contrast (1, -1)), and the seed component is the variance of the per-seed
    contrasts over S. Used for the factorial's main effects and interaction, and for the
    gain per row class (claim 3), whose "arms" are the targets of one class of rows: there
    a document may hold no target of a class (``allow_empty``: a document may have zero
    bytes, every seed's total must not; a document resample whose class is empty has no
    figure and is left out of the document variance, ``n_boot`` counting those kept).

    The document component's df uses the effective number of documents of the shares
    s_d = Σ_k |w_k| b_kd / Σ_d' b_kd' (each arm's bytes summed over seeds): Kish's
    (Σ b)² / Σ b² when every arm has the same bytes, as in ``paired_interval``.
    """
    if not len(arm_nats) == len(arm_bytes) == len(weights) or not len(weights):
        raise ValueError("one weight and one bytes array per arm, at least one arm")
    nats = [_cells(a, f"arm_nats[{k}]") for k, a in enumerate(arm_nats)]
    shape = nats[0].shape
    if any(a.shape != shape for a in nats) or nats[0].size == 0:
        raise ValueError(f"every arm needs the same non-empty seeds x documents shape {shape}")
    nbytes = [_bytes(b, shape, f"arm_bytes[{k}]", allow_empty) for k, b in enumerate(arm_bytes)]
    w = [float(x) for x in weights]
    cols = [x for a, b in zip(nats, nbytes, strict=True) for x in (a.sum(axis=0), b.sum(axis=0))]
    sums = doc_resampled_sums(cols, n_boot, seed)
    estimate = float(sum(wk * _bpb(a.sum(), b.sum()) for wk, a, b in zip(w, nats, nbytes,
                                                                          strict=True)))
    per_seed = sum(wk * _bpb(a.sum(axis=1), b.sum(axis=1))
                   for wk, a, b in zip(w, nats, nbytes, strict=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = np.asarray(sum(wk * _bpb(sums[2 * k], sums[2 * k + 1])
                                    for k, wk in enumerate(w)))
    replicates = replicates[np.isfinite(replicates)]
    shares = sum(abs(wk) * b.sum(axis=0) / b.sum() for wk, b in zip(w, nbytes, strict=True))
    return _components(estimate, np.asarray(per_seed), replicates, shape,
                       confidence, test=True, n_eff=effective_docs(np.asarray(shares)))


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
    "Interval",
    "bpb_interval",
    "contrast_interval",
    "effective_docs",
    "equivalent",
    "excludes_zero",
    "holm",
    "mean_ci",
    "paired_diff",
    "paired_interval",
    "t_critical",
    "welch_df",
]
