"""The report's figures: matplotlib, drawn straight to PNG bytes.

Each ``plot_*`` takes a table from ``embinit.study.tables`` and returns a PNG; the
object API with an Agg canvas is used throughout, so nothing touches pyplot's global
state or the backend, and the bytes are the same on every run (no Software stamp).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from embinit.study.report.doc import is_finite

DPI = 110

PART_COLORS = {
    "embedding": "#4c72b0",
    "output_head": "#dd8452",
    "position": "#8172b3",
    "body": "#9c9c9c",
}
PART_LABELS = {
    "embedding": "token embedding",
    "output_head": "output head (untied)",
    "position": "position embedding",
    "body": "transformer body",
}


def arm_colors(arms: Sequence[str]) -> dict[str, Any]:
    """One colour per arm, the same in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {arm: cmap(i % 10) for i, arm in enumerate(arms)}


def _figure(
    ncols: int = 1,
    width: float = 7.5,
    height: float = 4.2,
    width_ratios: Sequence[float] | None = None,
) -> tuple[Any, list[Any]]:
    # The object API with an Agg canvas: no pyplot state, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, ncols, squeeze=False, width_ratios=width_ratios)[0])


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _legend(ax: Any, fontsize: float, **kw: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, **kw)


def _no_data(ax: Any, what: str = "no data") -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")


def plot_curves(
    band: pd.DataFrame,
    x: str,
    xlabel: str,
    ylabel: str,
    title: str,
    colors: Mapping[str, Any],
    x_scale: float = 1.0,
) -> bytes:
    """One line per arm (mean over seeds) with its CI band; a curve_band table in."""
    fig, (ax,) = _figure()
    if band.empty:
        _no_data(ax)
    for arm in colors:
        g = band[band["arm"] == arm]
        if g.empty:
            continue
        xs = g[x].to_numpy(dtype=float) / x_scale
        ax.plot(xs, g["mean"], color=colors[arm], lw=1.6, label=f"{arm} (n={int(g['n'].max())})")
        ok = g["lo"].notna().to_numpy()
        if ok.any():
            ax.fill_between(
                xs[ok],
                g["lo"].to_numpy()[ok],
                g["hi"].to_numpy()[ok],
                color=colors[arm],
                alpha=0.2,
                lw=0,
            )
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if not band.empty:
        _legend(ax, 8)
    return _png(fig)


def plot_final_bpb(
    summary: pd.DataFrame, colors: Mapping[str, Any], confidence: float = 0.95
) -> bytes:
    """Final val and test bpb per arm, raw and OOV-adjusted, with CI error bars."""
    fig, axes = _figure(3, width=13)
    arms = list(summary["arm"])
    xs = np.arange(len(arms))
    panels = (
        ("bpb", ("val_bpb", "test_bpb")),
        ("OOV-adjusted bpb", ("val_bpb_oov_adjusted", "test_bpb_oov_adjusted")),
        ("lossless bpb (OOV + whitespace)", ("val_bpb_lossless", "test_bpb_lossless")),
    )
    for ax, (title, metrics) in zip(axes, panels, strict=True):
        for k, (m, marker) in enumerate(zip(metrics, ("o", "s"), strict=True)):
            if f"{m}_mean" not in summary:
                continue
            for i, arm in enumerate(arms):
                row = summary.iloc[i]
                mean, lo, hi = row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"]
                if not is_finite(mean):
                    continue
                err = [[mean - lo], [hi - mean]] if is_finite(lo) else None
                ax.errorbar(
                    xs[i] + (k - 0.5) * 0.25,
                    mean,
                    yerr=err,
                    fmt=marker,
                    color=colors[arm],
                    capsize=4,
                    ms=6,
                    mfc="white" if k else colors[arm],
                )
            ax.plot(
                [],
                [],
                marker,
                color="0.3",
                mfc="white" if k else "0.3",
                ls="none",
                label=m.split("_")[0],
            )
        ax.set_xticks(xs, arms, rotation=20, ha="right")
        ax.set(title=f"final {title} (mean, {confidence:.0%} CI)", ylabel="bits per byte")
        ax.grid(axis="y", alpha=0.3)
        _legend(ax, 8)
    return _png(fig)


def plot_datasize(table: pd.DataFrame, gains: pd.DataFrame, colors: Mapping[str, Any]) -> bytes:
    """Left: held-out bpb against training bytes per base arm (log x, 95% CI bars); right:
    the init's gain (init minus scratch) against training bytes per tokenizer."""
    fig, (left, right) = _figure(2, width=12)
    for k, (base, g) in enumerate(table.groupby("base", sort=True)):
        g = g.sort_values("train_bytes")
        color = colors.get(base, f"C{k % 10}")
        x = g["train_bytes"].to_numpy(float) / 1e6
        y = g["bpb"].to_numpy(float)
        err = np.vstack([y - g["bpb_lo"].to_numpy(float), g["bpb_hi"].to_numpy(float) - y])
        left.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o-", color=color, capsize=3,
                      label=base)
    left.set_xscale("log")
    left.set(xlabel="training bytes (MB, log)", ylabel="held-out bpb",
             title="held-out bpb vs training data")
    left.grid(alpha=0.3)
    _legend(left, 8)
    if gains.empty:
        _no_data(right)
    for k, (tok, g) in enumerate(gains.groupby("tokenizer", sort=True)):
        g = g.sort_values("train_bytes")
        x = g["train_bytes"].to_numpy(float) / 1e6
        y = g["gain"].to_numpy(float)
        err = np.vstack([y - g["lo"].to_numpy(float), g["hi"].to_numpy(float) - y])
        right.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o-", color=f"C{k}", capsize=3,
                       label=f"{tok}: init − scratch")
    right.axhline(0.0, color="0.4", lw=0.8)
    right.set_xscale("log")
    right.set(xlabel="training bytes (MB, log)", ylabel="Δ bpb (negative: init helps)",
              title="pretrained-init gain vs training data")
    right.grid(alpha=0.3)
    _legend(right, 8)
    return _png(fig)


def _stacked(
    ax: Any, labels: Sequence[str], parts: pd.DataFrame, title: str, horizontal: bool = False
) -> None:
    pos = np.arange(len(labels))
    base = np.zeros(len(labels))
    for part, color in PART_COLORS.items():
        vals = parts[part].to_numpy(dtype=float) / 1e6
        if not vals.any():
            continue
        if horizontal:
            ax.barh(pos, vals, left=base, color=color, label=PART_LABELS[part], height=0.7)
        else:
            ax.bar(pos, vals, bottom=base, color=color, label=PART_LABELS[part], width=0.7)
        base += vals
    if horizontal:
        ax.set_yticks(pos, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel="parameters (millions)", title=title)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(pos, labels, rotation=20, ha="right", fontsize=8)
        ax.set(ylabel="parameters (millions)", title=title)
        ax.grid(axis="y", alpha=0.3)
    _legend(ax, 7, loc="upper right" if horizontal else "best")


def plot_params(params: pd.DataFrame, analytic: pd.DataFrame | None, model_name: str) -> bytes:
    """Stacked parameter counts per arm (records) and per vocabulary at a reference shape."""
    fig, (left, right) = _figure(2, width=11.5, height=5.0, width_ratios=(1, 1.6))
    if params.empty:
        _no_data(left)
    else:
        _stacked(left, list(params["arm"]), params, "parameters per arm (this study)")
    if analytic is None or analytic.empty:
        _no_data(right, "embinit.params not available")
    else:
        parts = analytic.drop(columns=["output_head", "body"]).rename(
            columns={"stack_output_head": "output_head", "stack_body": "body"}
        )
        labels = [
            f"{lab}, {'tied' if t else 'untied'}"
            for lab, t in zip(analytic["label"], analytic["tied"], strict=True)
        ]
        _stacked(
            right, labels, parts, f"the same vocabularies at {model_name} shape", horizontal=True
        )
    return _png(fig)


def plot_oov(curve: pd.DataFrame, oov: pd.DataFrame, colors: Mapping[str, Any]) -> bytes:
    """Word-level OOV rate vs vocabulary size; per-arm OOV rates and init coverage."""
    from matplotlib.patches import Patch

    fig, axes = _figure(3, width=13, height=4.4)
    ax = axes[0]
    if curve.empty:
        _no_data(ax, "no word_oov_curve in the records")
    else:
        ax.plot(
            curve["vocab_size"],
            100 * curve["token_rate"],
            "o-",
            color="#c44e52",
            label="token OOV rate",
        )
        ax.plot(
            curve["vocab_size"],
            100 * curve["type_rate"],
            "s--",
            color="#937860",
            label="type OOV rate",
        )
        ax.set_xscale("log")
        for _, row in oov[oov["vocab"] == "word"].iterrows():
            if is_finite(row["vocab_size"]):
                ax.axvline(row["vocab_size"], color=colors.get(row["arm"], "0.5"), ls=":", lw=1.2)
        ax.axhline(0, color="#4c72b0", lw=2, label="byte-level BPE: 0 (no <unk> by construction)")
        ax.set_ylim(bottom=-2)
    ax.set(
        xlabel="word-level vocabulary size (log scale)",
        ylabel="OOV rate (%)",
        title="word-level OOV vs vocabulary size",
    )
    ax.grid(alpha=0.3, which="both")
    _legend(ax, 7)

    arms = list(oov["arm"])
    xs = np.arange(len(arms))
    for ax, cols, title in (
        (
            axes[1],
            (
                ("val_token_rate", "val token OOV rate"),
                ("val_unk_byte_share", "val <unk> byte share"),
            ),
            "out-of-vocabulary (val)",
        ),
        (
            axes[2],
            (("init_coverage_types", "types covered"), ("init_coverage_tokens", "tokens covered")),
            "init coverage of the vocabulary",
        ),
    ):
        handles: list[Any] = []
        for k, (col, label) in enumerate(cols):
            vals = 100 * pd.to_numeric(oov[col], errors="coerce").to_numpy(dtype=float)
            ax.bar(
                xs + (k - 0.5) * 0.38,
                np.nan_to_num(vals),
                width=0.38,
                color=[colors[a] for a in arms],
                alpha=1.0 if k == 0 else 0.5,
                hatch=None if k == 0 else "//",
                edgecolor="0.2",
                lw=0.5,
            )
            # Bars take their arm's colour; the legend tells only solid from hatched.
            handles.append(
                Patch(
                    facecolor="0.55",
                    alpha=1.0 if k == 0 else 0.5,
                    hatch=None if k == 0 else "//",
                    edgecolor="0.2",
                    lw=0.5,
                    label=label,
                )
            )
            for i, v in enumerate(vals):
                if not (np.isfinite(v) and v > 0):  # say so, rather than draw nothing
                    mark = "0" if np.isfinite(v) else "n/a"
                    ax.text(xs[i] + (k - 0.5) * 0.38, 0, mark, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(xs, arms, rotation=20, ha="right", fontsize=8)
        ax.set(ylabel="percent", title=title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(handles=handles, fontsize=7)
    return _png(fig)


__all__ = [
    "DPI",
    "PART_COLORS",
    "PART_LABELS",
    "arm_colors",
    "plot_curves",
    "plot_datasize",
    "plot_final_bpb",
    "plot_oov",
    "plot_params",
]


def plot_headline(
    arms: pd.DataFrame,
    ngram: pd.DataFrame,
    regime: pd.DataFrame,
    colors: Mapping[str, Any],
    ref: str,
    confidence: float = 0.95,
) -> bytes:
    """The answer at a glance. Left: each arm's held-out bpb with its interval, the best
    n-gram of each tokenizer as a dashed line, and each arm's tokens per non-embedding
    parameter in its label. Right: each arm minus the reference, paired over documents ×
    seeds (the absolute intervals are wide because documents differ; the paired ones are
    what the verdicts use)."""
    fig, (left, right) = _figure(2, width=11, height=3.6)
    rows = arms[arms["bpb"].map(is_finite)].reset_index(drop=True)
    tpp = (dict(zip(regime["arm"], regime["tokens_per_nonembedding_param"], strict=True))
           if len(regime) else {})
    labels = [f"{a}\n({tpp[a]:.2g} tok/non-emb. param)" if is_finite(tpp.get(a)) else a
              for a in rows["arm"]]
    ys = np.arange(len(rows))[::-1]
    for y, r in zip(ys, rows.itertuples(), strict=True):
        c = colors.get(r.arm, "0.3")
        lo, hi = r.bpb_lo, r.bpb_hi
        err = [[r.bpb - lo], [hi - r.bpb]] if is_finite(lo) and is_finite(hi) else None
        left.errorbar(r.bpb, y, xerr=err, fmt="o", color=c, capsize=4, ms=6)
        if r.arm != ref and is_finite(getattr(r, "diff", np.nan)):
            d_err = ([[r.diff - r.diff_lo], [r.diff_hi - r.diff]]
                     if is_finite(r.diff_lo) and is_finite(r.diff_hi) else None)
            right.errorbar(r.diff, y, xerr=d_err, fmt="o", color=c, capsize=4, ms=6)
    styles = ("--", ":", "-.", (0, (5, 1)))
    if len(ngram):
        best = ngram.loc[ngram.groupby("stream")["bpb"].idxmin()]
        for k, b in enumerate(best.itertuples()):
            left.axvline(b.bpb, color="0.35", ls=styles[k % len(styles)], lw=1.2,
                         label=f"best n-gram, {b.tokenizer} (order {b.order}): {b.bpb:.3f}")
    left.set_yticks(ys, labels, fontsize=8)
    left.set(xlabel=f"held-out bits per byte (val ∪ test; {confidence:.0%} CI)",
             title="held-out bpb per arm (lower is better)")
    left.grid(axis="x", alpha=0.3)
    if len(ngram):
        _legend(left, 7)
    right.axvline(0.0, color="0.3", lw=1)
    right.set_yticks(ys, ["(reference)" if a == ref else a for a in rows["arm"]], fontsize=8)
    right.set(xlabel=f"bpb minus {ref} (paired, {confidence:.0%} CI)",
              title=f"difference from {ref}")
    right.grid(axis="x", alpha=0.3)
    return _png(fig)
