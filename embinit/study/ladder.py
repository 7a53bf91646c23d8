"""Scale ladder: how Word2Vec's gain moves with model size and training data (study `ladder`).

``python -m embinit.study.ladder experiments/ladder --out results/ladder`` reads every
completed run under the folder (``<model>/<arm>/seed<k>``, or a flat study), through
`embinit.record`'s readers only, and writes ``report.md``, ``ladder.png``, ``cells.csv`` and
``fit.json``.

1. Gain per run pair: held-out bpb (val + test documents pooled: total nats over
   ln 2 x total bytes) of ``<vocab>+word2vec`` minus ``<vocab>+scratch`` at the same model,
   data fraction and seed (same body init and data order), so negative = Word2Vec helps.
2. Per cell (vocabulary x model size x data size): mean gain over seeds, with the study's
   variance-components interval (`embinit.study.stats.paired_interval`: a bootstrap over
   the held-out documents plus the seeds' variance), or a t interval across seeds when the
   records lack per-document losses. Model size is ``summary.params.non_embedding``; data
   is ``summary.train.bytes_seen`` (mean over the cell's runs).
3. Per vocabulary, OLS of the seed-level gains on log(params) and log(bytes):
   ``gain = b0 + b1 ln N + b2 ln D``. A coefficient's variance is the classical OLS one
   (residuals: seeds and misfit, at the documents evaluated) plus its variance over
   bootstrap resamples of the held-out documents (one draw for every run, the fit redone
   per draw), with Welch-Satterthwaite degrees of freedom; the same for the prediction.
4. The implied gain at GPT-2 small (85.8M non-embedding parameters, from
   `embinit.study.shapes`) trained on 300M tokens (bytes at the vocabulary's measured bytes
   per token here), with its 95% prediction interval: an extrapolation far outside the
   fitted range, reported as such.

Consumer wing: pandas, numpy, scipy; no torch.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from embinit.params import param_breakdown
from embinit.record import COMPLETED, find_runs, read_config, read_summary
from embinit.storage import atomic_write_bytes, atomic_write_json, atomic_write_text
from embinit.study.shapes import model_shape
from embinit.study.stats import (
    BOOTSTRAP_B,
    BOOTSTRAP_SEED,
    doc_resampled_sums,
    effective_docs,
    paired_interval,
    welch_df,
)

TARGET_MODEL = "gpt2_small"
TARGET_TOKENS = 300e6
LN2 = math.log(2.0)


# ---------------------------------------------------------------- reading


def _heldout(summary: dict[str, Any]) -> tuple[float, int] | None:
    """(nats, bytes) of the held-out documents: val and test pooled."""
    nats, nbytes = 0.0, 0
    for split in ("val", "test"):
        s = summary.get(split) or {}
        if s.get("nats") is not None and s.get("bytes"):
            nats += float(s["nats"])
            nbytes += int(s["bytes"])
    return (nats, nbytes) if nbytes else None


def _heldout_docs(summary: dict[str, Any]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray] | None:
    """(doc ids, nats, bytes) per held-out document, val then test; None when the record has
    no per-document losses or they do not add up to the split totals."""
    ids: list[str] = []
    nats: list[float] = []
    nbytes: list[float] = []
    for split in ("val", "test"):
        s = summary.get(split) or {}
        d_ids, d_nats, d_bytes = s.get("doc_ids"), s.get("doc_nats"), s.get("doc_bytes")
        if not d_ids or d_nats is None or d_bytes is None or \
                not len(d_ids) == len(d_nats) == len(d_bytes):
            return None
        if not math.isclose(sum(d_nats), float(s.get("nats") or 0.0), rel_tol=1e-9, abs_tol=1e-6):
            return None  # charges outside doc_nats: the pooled figure is the one to trust
        ids += [f"{split}:{i}" for i in d_ids]
        nats += d_nats
        nbytes += d_bytes
    return tuple(ids), np.asarray(nats, dtype=float), np.asarray(nbytes, dtype=float)


def _train_fraction(summary: dict[str, Any], run_dir: Path) -> float:
    frac = (summary.get("data") or {}).get("train_fraction")
    if frac is None:
        cfg = read_config(run_dir) or {}
        frac = (cfg.get("data") or {}).get("train_fraction", 1.0)
    return float(frac if frac is not None else 1.0)


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per completed run under root (itself a study, or a folder of studies)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory of run records")
    studies = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    rows = []
    for study in studies:
        for ref in find_runs(study):
            status, s = read_summary(ref.dir)
            if status != COMPLETED or s is None or s.get("diverged_at_step") is not None:
                continue
            held = _heldout(s)
            train = s.get("train") or {}
            params = s.get("params") or {}
            if held is None or not train.get("bytes_seen") or "non_embedding" not in params:
                continue
            docs = _heldout_docs(s)
            rows.append({
                "doc_ids": docs[0] if docs else None,
                "doc_nats": docs[1] if docs else None,
                "doc_bytes": docs[2] if docs else None,
                "vocab": s.get("vocab"), "init": s.get("init"), "seed": int(s.get("seed", ref.seed)),
                "model": s.get("model"), "params": int(params["non_embedding"]),
                "fraction": _train_fraction(s, ref.dir),
                "bytes_seen": int(train["bytes_seen"]),
                "tokens_seen": int(train.get("tokens_seen") or 0),
                "heldout_nats": held[0], "heldout_bytes": held[1],
                "bpb": held[0] / (LN2 * held[1]), "dir": str(ref.dir),
            })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- gains per cell


def seed_gains(runs: pd.DataFrame) -> pd.DataFrame:
    """word2vec − scratch bpb per (vocab, model, fraction, seed), paired by seed."""
    keys = ["vocab", "model", "params", "fraction", "seed"]
    both = pd.merge(runs[runs["init"] == "word2vec"], runs[runs["init"] == "scratch"], on=keys,
                    suffixes=("_w2v", "_scratch")).set_index(keys)
    out = pd.DataFrame({
        "gain": both["bpb_w2v"] - both["bpb_scratch"],
        "bpb_scratch": both["bpb_scratch"], "bpb_word2vec": both["bpb_w2v"],
        # Both arms read the same documents; their byte counts differ only at the last window.
        "bytes": (both["bytes_seen_w2v"] + both["bytes_seen_scratch"]) / 2,
        "bytes_per_token": (both["bytes_seen_w2v"] + both["bytes_seen_scratch"])
        / (both["tokens_seen_w2v"] + both["tokens_seen_scratch"]).replace(0, np.nan),
        # Per held-out document, when both records have them for the same documents.
        "doc_ids": [a if a is not None and a == b else None
                    for a, b in zip(both["doc_ids_w2v"], both["doc_ids_scratch"], strict=True)],
        "doc_nats_w2v": both["doc_nats_w2v"], "doc_nats_scratch": both["doc_nats_scratch"],
        "doc_bytes": both["doc_bytes_w2v"],
    }).reset_index()
    return out.sort_values(["vocab", "params", "fraction", "seed"]).reset_index(drop=True)


def _shared_docs(g: pd.DataFrame) -> tuple[str, ...] | None:
    """The held-out documents every pair in ``g`` was scored on, if they are the same."""
    ids = list(g["doc_ids"]) if "doc_ids" in g else [None]
    if ids[0] is None or any(i != ids[0] for i in ids):
        return None
    nbytes = list(g["doc_bytes"])  # the same documents hold the same bytes in every record
    return ids[0] if all(np.array_equal(b, nbytes[0]) for b in nbytes) else None


def cell_table(gains: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean gain per (vocab, model size, data size) with its interval: documents + seeds
    (`paired_interval`) when the records have per-document losses, else t across seeds."""
    rows = []
    for (vocab, model, params, frac), g in gains.groupby(["vocab", "model", "params", "fraction"]):
        n = len(g)
        mean = float(g["gain"].mean())
        sd = float(g["gain"].std(ddof=1)) if n > 1 else float("nan")
        if n < 2:  # one seed: no seed variance to estimate, so no interval
            lo, hi, method = float("nan"), float("nan"), "one seed"
        elif _shared_docs(g) is not None:
            iv = paired_interval(np.vstack(list(g["doc_nats_w2v"])),
                                 np.vstack(list(g["doc_nats_scratch"])),
                                 np.asarray(g["doc_bytes"].iloc[0]), confidence=level)
            lo, hi, method = iv.lo, iv.hi, "documents + seeds"
        else:
            half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
            lo, hi, method = mean - half, mean + half, "t over seeds"
        rows.append({"vocab": vocab, "model": model, "params": int(params), "fraction": frac,
                     "bytes": float(g["bytes"].mean()), "seeds": n, "gain": mean, "sd": sd,
                     "ci_low": lo, "ci_high": hi, "interval": method,
                     "bpb_scratch": float(g["bpb_scratch"].mean()),
                     "bpb_word2vec": float(g["bpb_word2vec"].mean())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the fit


@dataclass
class LadderFit:
    """OLS of gain on [1, ln params, ln bytes], and its prediction at a target point."""

    vocab: str
    n: int
    coef: list[float]  # b0, b_ln_params, b_ln_bytes
    se: list[float]
    ci_low: list[float]
    ci_high: list[float]
    resid_sd: float
    r2: float
    target_params: int
    target_bytes: float
    bytes_per_token: float
    predicted_gain: float
    mean_ci: tuple[float, float]  # interval of the fitted mean at the target
    prediction_interval: tuple[float, float]  # interval of a new run's gain at the target
    params_range: tuple[int, int]
    bytes_range: tuple[float, float]
    # The prediction taken apart from the largest fitted point (largest model, most data):
    params_term: float  # b_N x ln(target params / largest params)
    data_term: float  # b_D x ln(target bytes / most bytes)
    # Model size alone extrapolated, at the most data fitted: a far shorter reach.
    at_max_data: float
    at_max_data_interval: tuple[float, float]  # 95% prediction interval
    max_abs_observed: float  # the largest |gain| of any run pair fitted
    n_docs: int = 0  # held-out documents resampled for the document component (0: none)
    se_doc: tuple[float, float, float] = (0.0, 0.0, 0.0)  # that component of each coef's se

    @property
    def beyond_observed(self) -> bool:
        """The prediction is larger than every gain measured: the functional form's artefact."""
        return abs(self.predicted_gain) > self.max_abs_observed

    @property
    def extrapolation_factor(self) -> tuple[float, float]:
        """How far past the largest fitted point the target lies (params, bytes)."""
        return (self.target_params / self.params_range[1],
                self.target_bytes / self.bytes_range[1])


def _doc_bootstrap_var(g: pd.DataFrame, X: np.ndarray, points: np.ndarray,
                      n_boot: int = BOOTSTRAP_B,
                      seed: int = BOOTSTRAP_SEED) -> tuple[np.ndarray, np.ndarray, int, float] | None:
    """Variance over resamples of the held-out documents (one draw for every run) of the OLS
    coefficients and of the fitted values at ``points`` (rows [1, ln N, ln D]); None when the
    pairs do not share per-document losses."""
    docs = _shared_docs(g)
    if docs is None:
        return None
    diffs = [np.asarray(w, dtype=float) - np.asarray(s, dtype=float)
             for w, s in zip(g["doc_nats_w2v"], g["doc_nats_scratch"], strict=True)]
    nbytes = np.asarray(g["doc_bytes"].iloc[0], dtype=float)
    # The study reports' document resampler: one draw of the documents for every column.
    *nats, total_bytes = doc_resampled_sums([*diffs, nbytes], n_boot, seed)
    gains = np.column_stack(nats) / (LN2 * total_bytes)[:, None]  # B x pairs
    coefs = gains @ np.linalg.pinv(X).T  # the fit redone on every resample
    # The document component's df counts documents by their bytes (Kish), as in stats.
    return (coefs.var(axis=0, ddof=1), (coefs @ points.T).var(axis=0, ddof=1), len(docs),
            effective_docs(nbytes))


def fit_gain(gains: pd.DataFrame, vocab: str, target_params: int, target_tokens: float,
             level: float = 0.95) -> LadderFit:
    """gain = b0 + b1 ln(params) + b2 ln(bytes) over the seed-level gains of one vocabulary."""
    g = gains[gains["vocab"] == vocab]
    n = len(g)
    if n < 4 or g["params"].nunique() < 2 or g["bytes"].round(-3).nunique() < 2:
        raise ValueError(f"{vocab}: need >= 2 model sizes, >= 2 data sizes and > 3 paired runs "
                         f"to fit a trend (have {n} runs)")
    X = np.column_stack([np.ones(n), np.log(g["params"].to_numpy(float)),
                         np.log(g["bytes"].to_numpy(float))])
    y = g["gain"].to_numpy(float)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = n - X.shape[1]
    sigma2 = float(resid @ resid / dof) if dof > 0 else float("nan")
    cov = sigma2 * np.linalg.inv(X.T @ X)
    bpt = float(np.nanmedian(g["bytes_per_token"].to_numpy(float)))
    target_bytes = target_tokens * bpt
    max_params, max_bytes = float(g["params"].max()), float(g["bytes"].max())
    x0 = np.array([1.0, math.log(target_params), math.log(target_bytes)])
    x1 = np.array([1.0, math.log(target_params), math.log(max_bytes)])
    boot = _doc_bootstrap_var(g, X, np.vstack([x0, x1]))
    v_coef, v_pred, n_docs, n_eff = (boot if boot is not None
                                     else (np.zeros(3), np.zeros(2), 0, 0.0))

    def t_of(v_doc: float, v_fit: float) -> float:
        # Welch-Satterthwaite over the document component and the OLS residual one.
        df = welch_df(float(v_doc), float(v_fit), n_eff, dof + 1) if n_docs else dof
        return float(stats.t.ppf(0.5 + level / 2, df)) if df == df and df > 0 else float("nan")

    v_ols = np.diag(cov)
    se = np.sqrt(v_ols + v_coef)
    ts = [t_of(v_coef[k], v_ols[k]) for k in range(3)]
    pred, at_max = float(x0 @ coef), float(x1 @ coef)
    v_mean0, v_mean1 = float(x0 @ cov @ x0) + v_pred[0], float(x1 @ cov @ x1) + v_pred[1]
    se_mean, se_new, se_new1 = (math.sqrt(v_mean0), math.sqrt(sigma2 + v_mean0),
                                math.sqrt(sigma2 + v_mean1))
    t_mean = t_of(v_pred[0], float(x0 @ cov @ x0))
    t = t_of(v_pred[0], sigma2 + float(x0 @ cov @ x0))
    t1 = t_of(v_pred[1], sigma2 + float(x1 @ cov @ x1))
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return LadderFit(
        vocab=vocab, n=n, coef=[float(c) for c in coef], se=[float(s) for s in se],
        ci_low=[float(c - tk * s) for c, s, tk in zip(coef, se, ts, strict=True)],
        ci_high=[float(c + tk * s) for c, s, tk in zip(coef, se, ts, strict=True)],
        resid_sd=math.sqrt(sigma2), r2=1 - float(resid @ resid) / ss_tot if ss_tot else float("nan"),
        target_params=int(target_params), target_bytes=target_bytes, bytes_per_token=bpt,
        predicted_gain=pred, mean_ci=(pred - t_mean * se_mean, pred + t_mean * se_mean),
        prediction_interval=(pred - t * se_new, pred + t * se_new),
        params_range=(int(g["params"].min()), int(g["params"].max())),
        bytes_range=(float(g["bytes"].min()), max_bytes),
        params_term=float(coef[1] * math.log(target_params / max_params)),
        data_term=float(coef[2] * math.log(target_bytes / max_bytes)),
        at_max_data=at_max, at_max_data_interval=(at_max - t1 * se_new1, at_max + t1 * se_new1),
        max_abs_observed=float(np.abs(y).max()),
        n_docs=n_docs, se_doc=tuple(float(math.sqrt(v)) for v in v_coef),  # type: ignore[arg-type]
    )


def target_params(model: str = TARGET_MODEL) -> int:
    """Non-embedding parameters of a known model shape (gpt2_small: 85,842,432)."""
    return param_breakdown(model_shape(model), 1)["non_embedding"]


# ---------------------------------------------------------------- report


def _fmt(x: float, nd: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{nd}f}"


def _interval_note(cells: pd.DataFrame) -> str:
    methods = set(cells["interval"]) if "interval" in cells else {"t over seeds"}
    parts = []
    if "documents + seeds" in methods:
        parts.append("held-out documents (bootstrap) and seeds as variance components with "
                     "Welch-Satterthwaite degrees of freedom, as in the study reports")
    if "t over seeds" in methods:
        parts.append("t across seeds (records without per-document losses)")
    return "; ".join(parts)


def report_md(cells: pd.DataFrame, fits: dict[str, LadderFit], n_runs: int) -> str:
    lines = [
        "# Scale ladder: Word2Vec's gain against model size and data",
        "",
        f"{n_runs} completed runs. Gain = held-out bpb (val + test documents pooled) of "
        "`<vocab>+word2vec` minus `<vocab>+scratch`, paired by seed: negative means Word2Vec "
        "helps. Intervals are 95%: " + _interval_note(cells) + ".",
        "",
        "| vocab | model | non-embedding params | training bytes | seeds | scratch bpb "
        "| word2vec bpb | gain [95% CI] |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in cells.itertuples():
        lines.append(f"| {r.vocab} | {r.model} | {r.params:,} | {r.bytes:,.0f} | {r.seeds} | "
                     f"{r.bpb_scratch:.3f} | {r.bpb_word2vec:.3f} | {_fmt(r.gain)} "
                     f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] |")
    lines += ["", "## Log-linear fit", "",
              "Per vocabulary, OLS over the seed-level gains: "
              "`gain = b0 + b_N ln(params) + b_D ln(bytes)`. A standard error adds the classical "
              "OLS variance (residuals: seed noise and misfit, at the documents evaluated) and "
              "the coefficient's variance over bootstrap resamples of the held-out documents "
              "(one draw for every run, the fit redone per draw), with Welch-Satterthwaite "
              "degrees of freedom; the last column gives that document part. The data axis moves "
              "two things at once: the language model's training text and the text Word2Vec "
              "is trained on (the same subset), so b_D mixes better vectors with a model that "
              "has more text to learn its own embeddings from.", "",
              "| vocab | runs | b_N per e-fold of params [95% CI] | b_D per e-fold of bytes [95% CI] "
              "| residual sd | R² | document part of se(b_N), se(b_D) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for f in fits.values():
        lines.append(f"| {f.vocab} | {f.n} | {_fmt(f.coef[1], 4)} ± {f.se[1]:.4f} "
                     f"[{_fmt(f.ci_low[1], 4)}, {_fmt(f.ci_high[1], 4)}] | "
                     f"{_fmt(f.coef[2], 4)} ± {f.se[2]:.4f} "
                     f"[{_fmt(f.ci_low[2], 4)}, {_fmt(f.ci_high[2], 4)}] | "
                     f"{f.resid_sd:.4f} | {f.r2:.2f} | "
                     + (f"{f.se_doc[1]:.4f}, {f.se_doc[2]:.4f} ({f.n_docs} documents) |"
                        if f.n_docs else "— (no per-document losses) |"))
    lines += ["", "## Implied gain at GPT-2 small on 300M tokens — an EXTRAPOLATION", ""]
    for f in fits.values():
        fp, fb = f.extrapolation_factor
        lines.append(
            f"- **{f.vocab}**: {_fmt(f.predicted_gain)} bpb, 95% prediction interval "
            f"[{_fmt(f.prediction_interval[0])}, {_fmt(f.prediction_interval[1])}] "
            f"(fitted mean [{_fmt(f.mean_ci[0])}, {_fmt(f.mean_ci[1])}]) at "
            f"{f.target_params:,} non-embedding parameters and {f.target_bytes:.3g} bytes "
            f"(300M tokens x {f.bytes_per_token:.2f} bytes/token measured here). "
            f"Extrapolation: {fp:,.0f}x the largest model and {fb:,.0f}x the most data fitted; "
            "the log-linear form is an assumption, untested that far out. From the largest "
            f"fitted point, the model-size term adds {_fmt(f.params_term)} and the data term "
            f"{_fmt(f.data_term)}.")
        if f.beyond_observed:
            lines.append(
                f"  **Not credible:** larger than every gain measured in the ladder (largest "
                f"|gain| {f.max_abs_observed:.3f}). Two data sizes cannot tell a log-linear "
                "trend from one that saturates, and carried this far the data term decides "
                "the number; it is an artefact of the functional form, not a forecast.")
        lo, hi = f.at_max_data_interval
        lines.append(
            f"  - Model size alone, at the most data fitted ({f.bytes_range[1]:,.0f} bytes): "
            f"{_fmt(f.at_max_data)} bpb, 95% prediction interval [{_fmt(lo)}, {_fmt(hi)}] "
            f"({fp:,.0f}x past the largest model, no extrapolation in data).")
    lines += ["", "![gain against model size](ladder.png)", ""]
    return "\n".join(lines)


def plot(cells: pd.DataFrame, fits: dict[str, LadderFit]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    vocabs = sorted(cells["vocab"].unique())
    fig, axes = plt.subplots(1, len(vocabs), figsize=(5 * len(vocabs), 4), squeeze=False)
    for ax, vocab in zip(axes[0], vocabs, strict=True):
        c = cells[cells["vocab"] == vocab]
        for _, g in c.groupby("fraction"):
            g = g.sort_values("params")
            err = np.vstack([g["gain"] - g["ci_low"], g["ci_high"] - g["gain"]])
            line = ax.errorbar(g["params"], g["gain"], yerr=np.nan_to_num(err), fmt="o",
                               capsize=3, label=f"{g['bytes'].mean() / 1e6:.2f} MB of text")
            f = fits.get(vocab)
            if f is not None:
                xs = np.geomspace(g["params"].min(), g["params"].max(), 20)
                ys = f.coef[0] + f.coef[1] * np.log(xs) + f.coef[2] * math.log(g["bytes"].mean())
                ax.plot(xs, ys, "-", color=line[0].get_color(), alpha=0.7)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels overlap
        ax.set_xlabel("non-embedding parameters")
        ax.set_ylabel("Δ bpb, word2vec − scratch")
        ax.set_title(vocab)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def analyze(root: str | Path, out: str | Path, tokens: float = TARGET_TOKENS) -> dict[str, Any]:
    runs = load_runs(root)
    if runs.empty:
        raise SystemExit(f"embinit.study.ladder: no completed runs under {root}")
    gains = seed_gains(runs)
    if gains.empty:
        raise SystemExit(f"embinit.study.ladder: no word2vec/scratch pair (same vocab, model, data "
                         f"fraction and seed) among the {len(runs)} completed runs under {root}")
    cells = cell_table(gains)
    n_target = target_params()
    fits: dict[str, LadderFit] = {}
    for vocab in sorted(gains["vocab"].unique()):
        try:
            fits[vocab] = fit_gain(gains, vocab, n_target, tokens)
        except ValueError as e:
            print(f"embinit.study.ladder: no fit: {e}", file=sys.stderr)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", report_md(cells, fits, len(runs)) + "\n")
    atomic_write_bytes(out / "ladder.png", plot(cells, fits))
    atomic_write_text(out / "cells.csv", cells.to_csv(index=False))
    result = {"runs": len(runs), "fits": {v: asdict(f) for v, f in fits.items()},
              "target": {"model": TARGET_MODEL, "params": n_target, "tokens": tokens}}
    atomic_write_json(out / "fit.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embinit.study.ladder",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="experiments/ladder (or one study's folder)")
    p.add_argument("--out", type=Path, default=Path("results/ladder"))
    p.add_argument("--tokens", type=float, default=TARGET_TOKENS,
                   help="training tokens of the extrapolation target (default 300M)")
    args = p.parse_args(argv)
    if not args.root.is_dir():
        p.error(f"{args.root} is not a directory of run records; give the study's experiments "
                "folder, e.g. experiments/ladder")
    result = analyze(args.root, args.out, args.tokens)
    print(json.dumps({v: {"predicted_gain": f["predicted_gain"],
                          "prediction_interval": f["prediction_interval"]}
                      for v, f in result["fits"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
