"""The study report, rebuilt from run records alone: ``python -m embinit.report STUDY_DIR``.

Writes into ``--out`` (default ``results/<study name>``)::

    report.md      GitHub-renderable: pipe tables, figures linked as figures/*.png
    report.html    self-contained: the same content, figures embedded as data: URIs
    summary.csv    one row per arm: counts, means, CI bounds, paired differences
    runs.csv       one row per run directory, completed or not
    figures/*.png  the figures

The flow is load (``load_study``, the only reading) -> ``build_report`` (pure: tables,
figures as PNG bytes, the document as blocks rendered twice) -> ``write_report``
(every file atomic, report.md last). A study without a completed run is an error
and nothing is written.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embinit import analysis as A
from embinit.errors import EmbinitError
from embinit.storage import atomic_write_bytes

CONFIDENCE = 0.95
FIG_DIR = "figures"
DPI = 110
NA = "—"

# ------------------------------------------------------------------------------ input


@dataclass
class Study:
    """Everything the report reads from a study directory."""

    name: str
    runs: pd.DataFrame
    curves: pd.DataFrame
    oov_curve: pd.DataFrame
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_study(study_dir: str | Path) -> Study:
    """Read a study directory's run records (the report's only I/O on the input side)."""
    path = Path(study_dir)
    return Study(
        name=path.resolve().name,
        runs=A.load_runs(path),
        curves=A.load_curves(path),
        oov_curve=A.load_oov_curve(path),
        configs=A.load_configs(path),
    )


def check_has_completed(study: Study) -> None:
    """Raise NoCompletedRunsError, saying what was found, when no run completed."""
    runs = study.runs
    if len(runs) and (runs["status"] == A.COMPLETED).any():
        return
    if not len(runs):
        found = "no <arm>/seed<k> run directories"
    else:
        counts = runs["status"].value_counts().sort_index()
        found = (
            f"{len(runs)} run directories ("
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + ")"
        )
    raise A.NoCompletedRunsError(
        f"study {study.name!r} has no completed runs: found {found}. Run the study first "
        "(make sweep STUDY=<name>) or point at the directory that holds <arm>/seed<k>/summary.json"
    )


def reference_arm_for(study: Study, requested: str | None = None) -> str:
    """The arm differences are taken against: as requested, else the study config's, else
    bpe+scratch, else the first arm by name."""
    arms = A.arm_order(study.runs)
    if requested is not None:
        if requested not in arms:
            raise A.AnalysisError(
                f"--reference {requested!r} is not an arm of this study; choose one of {arms}"
            )
        return requested
    for cfg in study.configs.values():
        ref = (cfg.get("study") or {}).get("reference_arm")
        if ref in arms:
            return str(ref)
    return "bpe+scratch" if "bpe+scratch" in arms else arms[0]


# ------------------------------------------------------------------------------ document model


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # `backticks` mark code; nothing else is markup


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    align: str = ""  # one of "l"/"r" per column; default: first column left, the rest right


@dataclass
class Image:
    name: str  # file name under figures/
    alt: str
    png: bytes


@dataclass
class Code:
    text: str
    lang: str = ""


Block = Heading | Para | Bullets | Table | Image | Code


def _split_code(text: str) -> list[tuple[bool, str]]:
    parts = text.split("`")
    return [(i % 2 == 1, p) for i, p in enumerate(parts) if p]


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md_inline(text: str, in_table: bool = False) -> str:
    out = []
    for is_code, part in _split_code(text):
        if is_code:
            out.append(f"`{part}`")
        else:
            out.append(_TAG_START.sub("&lt;", part))  # `<unk>` would vanish as an HTML tag
    s = "".join(out)
    return s.replace("|", "\\|") if in_table else s


def _html_inline(text: str) -> str:
    return "".join(
        f"<code>{html.escape(p)}</code>" if c else html.escape(p) for c, p in _split_code(text)
    )


def _aligns(t: Table) -> str:
    return t.align or ("l" + "r" * (len(t.header) - 1))


def render_markdown(blocks: Sequence[Block]) -> str:
    """GitHub-flavoured markdown; images link to figures/<name>."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {_md_inline(b.text)}")
        elif isinstance(b, Para):
            out.append(_md_inline(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {_md_inline(i)}" for i in b.items))
        elif isinstance(b, Table):
            sep = ["---:" if a == "r" else ":---" for a in _aligns(b)]
            lines = [b.header, sep, *(b.rows or [[NA] * len(b.header)])]
            cells = [
                [_md_inline(c, True) if i != 1 else c for c in row] for i, row in enumerate(lines)
            ]
            out.append("\n".join("| " + " | ".join(row) + " |" for row in cells))
        elif isinstance(b, Image):
            out.append(f"![{_md_inline(b.alt, True)}]({FIG_DIR}/{b.name})")
        elif isinstance(b, Code):
            out.append(f"```{b.lang}\n{b.text.rstrip()}\n```")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.5}
h1,h2,h3{border-bottom:1px solid #d1d9e0;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #d1d9e0;padding:.3em .6em}th{background:#f6f8fa}
td.r{text-align:right;white-space:nowrap}th.r{text-align:right}td.l,th.l{text-align:left}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa}
pre{padding:1em;overflow:auto;font-size:.85em}
img{max-width:100%;height:auto;display:block;margin:1em 0}
""".strip()


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, images as base64 data: URIs, no links out."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_html_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_html_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            al = _aligns(b)
            head = "".join(
                f'<th class="{a}">{_html_inline(h)}</th>' for a, h in zip(al, b.header, strict=True)
            )
            rows = "".join(
                "<tr>"
                + "".join(
                    f'<td class="{a}">{_html_inline(c)}</td>' for a, c in zip(al, r, strict=True)
                )
                + "</tr>"
                for r in (b.rows or [[NA] * len(b.header)])
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(b.alt)}">')
        elif isinstance(b, Code):
            body.append(f"<pre><code>{html.escape(b.text.rstrip())}</code></pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------ formatting


def _ok(x: Any) -> bool:
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, digits: int = 3, signed: bool = False) -> str:
    if not _ok(x):
        return NA
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def fmt_ci(mean: Any, lo: Any, hi: Any, digits: int = 3, signed: bool = False) -> str:
    """'1.210 [1.185, 1.235]'; the mean alone when there is no interval."""
    if not _ok(mean):
        return NA
    m = fmt_num(mean, digits, signed)
    if not (_ok(lo) and _ok(hi)):
        return m
    return f"{m} [{fmt_num(lo, digits, signed)}, {fmt_num(hi, digits, signed)}]"


def fmt_int(x: Any) -> str:
    return f"{round(float(x)):,}" if _ok(x) else NA


def fmt_pct(x: Any, digits: int = 2) -> str:
    return f"{100 * float(x):.{digits}f}%" if _ok(x) else NA


def fmt_p(p: Any) -> str:
    if not _ok(p):
        return NA
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"


# ------------------------------------------------------------------------------ figures

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


def plot_final_bpb(summary: pd.DataFrame, colors: Mapping[str, Any]) -> bytes:
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
                if not _ok(mean):
                    continue
                err = [[mean - lo], [hi - mean]] if _ok(lo) else None
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
        ax.set(title=f"final {title} (mean, {CONFIDENCE:.0%} CI)", ylabel="bits per byte")
        ax.grid(axis="y", alpha=0.3)
        _legend(ax, 8)
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
            if _ok(row["vocab_size"]):
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


# ------------------------------------------------------------------------------ the report


@dataclass
class Report:
    """A built report: the files to write (relative path -> bytes) and its blocks."""

    files: dict[str, bytes]
    blocks: list[Block]
    summary: pd.DataFrame
    reference_arm: str


SUMMARY_METRICS = (*A.HEADLINE_METRICS, "val_loss", "test_loss")
ANALYTIC_MODEL = "gpt2_small"
_SPELLING_FORMULA = """\
cost(w) = -Σ_{b ∈ utf8(w)} ln p(b) - ln p(EOW)              nats to spell the word w, then end it
p(s)    = (count(s) + 1) / (N + 257)                          s ∈ {256 byte values, EOW}; counts over the
                                                              train split's words (one EOW per word), N = their sum
bpb     = Σ_t nats_t / (ln 2 · bytes)
bpb_adj = (Σ_t nats_t + Σ_{t : target_t = <unk>} cost(w_t)) / (ln 2 · bytes)"""

_LAYOUT_FORMULA = """\
gap_i     = the text between word-level tokens i-1 and i ("" before punctuation, " ", "\\n\\n", ...)
c_i       = (class of token i-1, class of token i), class ∈ {word, punctuation, document edge}
p(g | c)  = (n(c, g) + 1) / (N_c + K_c + 1)      for the K_c gap strings seen after context c in train
p(new | c) = 1 / (N_c + K_c + 1), then the new gap is spelled with the byte unigram above
bpb_lossless = (Σ_t nats_t + Σ_unk cost(w_t) + Σ_i -ln p(gap_i | c_i)) / (ln 2 · bytes)"""


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k} {one if k == 1 else (many or one + 's')}"


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _seeds_cell(row: pd.Series) -> str:
    extra = []
    if row["n_diverged"]:
        extra.append(f"{row['n_diverged']} diverged")
    if row["n_incomplete"]:
        extra.append(f"{row['n_incomplete']} incomplete")
    return str(row["n_seeds"]) + (f" (+{', '.join(extra)})" if extra else "")


def _ci_cells(row: pd.Series, m: str, digits: int = 3) -> tuple[str, str, str]:
    if f"{m}_mean" not in row:
        return NA, NA, NA
    return (
        fmt_ci(row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"], digits),
        fmt_ci(row[f"{m}_diff"], row[f"{m}_diff_lo"], row[f"{m}_diff_hi"], digits, signed=True),
        fmt_p(row[f"{m}_p"]),
    )


def _headline_blocks(summary: pd.DataFrame, ref: str) -> list[Block]:
    ci = f"{CONFIDENCE:.0%} CI"
    rows = []
    for _, r in summary.iterrows():
        val, dval, p = _ci_cells(r, "val_bpb")
        test, _, _ = _ci_cells(r, "test_bpb")
        loss, _, _ = _ci_cells(r, "val_loss")
        rows.append(
            [
                r["arm"],
                _seeds_cell(r),
                val,
                test,
                dval if r["arm"] != ref else "(reference)",
                p,
                loss,
            ]
        )
    return [
        Heading(2, "Headline: bits per byte"),
        Para(
            f"Bits per byte (bpb) on the held-out splits is the headline metric: it divides the "
            f"model's total loss by the UTF-8 bytes of the text, so every tokenizer is scored on the "
            f"same text. This raw figure still favours word-level arms, which are not charged for "
            f"`<unk>` words or whitespace; the next section adds both. Means over completed seeds "
            f"with {ci} (Student t); Δ is the arm minus {ref}, paired by seed, p from a paired "
            f"t-test. Lower is better."
        ),
        Table(
            [
                "arm",
                "seeds",
                f"val bpb [{ci}]",
                f"test bpb [{ci}]",
                f"Δ val bpb vs {ref} [{ci}]",
                "p",
                "val loss (nats/token)†",
            ],
            rows,
        ),
        Para(
            "† Per-token loss is shown for completeness only: it is NOT comparable across "
            "tokenizers, because a token covers a different number of bytes in each vocabulary "
            "(see tokens per byte under Throughput)."
        ),
    ]


def _oov_adjusted_blocks(summary: pd.DataFrame, oov: pd.DataFrame, ref: str) -> list[Block]:
    ci = f"{CONFIDENCE:.0%} CI"
    rate = dict(zip(oov["arm"], oov["val_token_rate"], strict=True))
    share = dict(zip(oov["arm"], oov["val_unk_byte_share"], strict=True))
    rows = []
    for _, r in summary.iterrows():
        raw, _, _ = _ci_cells(r, "val_bpb")
        adj, dadj, p = _ci_cells(r, "val_bpb_oov_adjusted")
        tadj, _, _ = _ci_cells(r, "test_bpb_oov_adjusted")
        lossless, dloss, ploss = _ci_cells(r, "val_bpb_lossless")
        rows.append(
            [
                r["arm"],
                raw,
                adj,
                tadj,
                dadj if r["arm"] != ref else "(reference)",
                p,
                lossless,
                dloss if r["arm"] != ref else "(reference)",
                ploss,
                fmt_pct(rate.get(r["arm"])),
                fmt_pct(share.get(r["arm"])),
            ]
        )
    return [
        Heading(2, "OOV-adjusted and lossless bits per byte"),
        Para(
            "A word-level model that predicts `<unk>` is credited with all the bytes of the unknown "
            "word for the price of one token. The adjusted figure charges every `<unk>` target the "
            "cost of spelling out the word it replaced, under an add-one-smoothed unigram model over "
            "bytes plus an end-of-word symbol (EOW), fitted on the train split:"
        ),
        Code(_SPELLING_FORMULA),
        Para("Byte-level BPE never emits `<unk>`, so for BPE arms bpb_adj = bpb."),
        Para(
            "A word-level tokenizer also drops the whitespace between tokens, so its model never "
            "pays for spaces, line breaks or the absence of a space before punctuation, while "
            "byte-level BPE predicts all of them inside its tokens. The lossless figure adds that "
            "cost too, under a unigram over gap strings conditioned on the classes of the two "
            "neighbouring tokens, fitted on the train split (gaps plus tokens rebuild the text "
            "exactly; with vocab.lowercase=true case is still not charged):"
        ),
        Code(_LAYOUT_FORMULA),
        Table(
            [
                "arm",
                "val bpb",
                f"val bpb_adj [{ci}]",
                f"test bpb_adj [{ci}]",
                f"Δ val bpb_adj vs {ref} [{ci}]",
                "p",
                f"val bpb_lossless [{ci}]",
                f"Δ val bpb_lossless vs {ref} [{ci}]",
                "p ",
                "val `<unk>` token rate",
                "val `<unk>` byte share",
            ],
            rows,
        ),
    ]


_PARAM_HEADER = [
    "vocab size",
    "tied",
    "embedding",
    "output head",
    "position",
    "body",
    "total",
    "vocab share",
]


def _param_table(df: pd.DataFrame, label: str, label_header: str) -> Table:
    rows = [
        [str(r[label]), fmt_int(r["vocab_size"]), "yes" if r["tied"] else "no"]
        + [fmt_int(r[c]) for c in ("embedding", "output_head", "position", "body", "total")]
        + [fmt_pct(r["vocab_share"], 1)]
        for _, r in df.iterrows()
    ]
    return Table([label_header, *_PARAM_HEADER], rows, align="lrl" + "r" * 6)


def _param_blocks(
    params: pd.DataFrame, analytic: pd.DataFrame | None, analytic_note: str
) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Parameters"),
        Para(
            "From the run records. A tied output head reuses the token embedding and adds no "
            "parameters; body = transformer blocks + final norm; vocab share = (embedding + "
            "untied head) / total."
        ),
        _param_table(params, "arm", "arm"),
        Heading(3, f"What each vocabulary costs at {ANALYTIC_MODEL} shape"),
    ]
    if analytic is None or analytic.empty:
        return [*blocks, Para(analytic_note)]
    m = A.model_shape(ANALYTIC_MODEL)
    shape = (
        f"{m.n_layer} layers, {m.n_head} heads, d_model {m.d_model}, block {m.block_size}, "
        f"{'with' if m.bias else 'no'} biases"
    )
    return [
        *blocks,
        Para(
            f"Closed-form counts (`embinit.params.param_breakdown`) at {ANALYTIC_MODEL} shape "
            f"({shape}) for this study's vocabulary sizes and for word-level vocabularies of "
            "typical sizes, tied and untied."
        ),
        _param_table(analytic, "label", "vocabulary"),
    ]


def _oov_blocks(oov: pd.DataFrame, curve: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Out-of-vocabulary"),
        Para(
            "Token rate: share of evaluated tokens that are `<unk>`; type rate: share of distinct "
            "words; `<unk>` byte share: share of the split's bytes inside `<unk>` words. Init "
            "coverage: share of vocabulary types (and of train tokens) that received a pretrained "
            "vector; n/a for arms initialized from scratch."
        ),
        Table(
            [
                "arm",
                "vocab",
                "vocab size",
                "val token OOV",
                "val type OOV",
                "val `<unk>` bytes",
                "test token OOV",
                "test `<unk>` bytes",
                "init coverage (types)",
                "init coverage (tokens)",
            ],
            [
                [
                    r["arm"],
                    str(r["vocab"] or NA),
                    fmt_int(r["vocab_size"]),
                    fmt_pct(r["val_token_rate"]),
                    fmt_pct(r["val_type_rate"]),
                    fmt_pct(r["val_unk_byte_share"]),
                    fmt_pct(r["test_token_rate"]),
                    fmt_pct(r["test_unk_byte_share"]),
                    fmt_pct(r["init_coverage_types"], 1),
                    fmt_pct(r["init_coverage_tokens"], 1),
                ]
                for _, r in oov.iterrows()
            ],
            align="ll" + "r" * 8,
        ),
    ]
    if not curve.empty:
        blocks += [
            Para(
                "Word-level OOV rate of this corpus as a function of vocabulary size (the most "
                "frequent words of the train split kept); byte-level BPE has none at any size."
            ),
            Table(
                ["word vocab size", "token OOV rate", "type OOV rate"],
                [
                    [fmt_int(r["vocab_size"]), fmt_pct(r["token_rate"]), fmt_pct(r["type_rate"])]
                    for _, r in curve.iterrows()
                ],
            ),
        ]
    return blocks


def _throughput_blocks(tp: pd.DataFrame) -> list[Block]:
    return [
        Heading(2, "Throughput"),
        Para(
            "Means over completed seeds. Tokens per byte is a property of the tokenizer on the "
            "train split; speeds are over the optimizer steps only (train wall time), wall time "
            "includes evaluation."
        ),
        Table(
            [
                "arm",
                "tokens/byte",
                "steps",
                "tokens seen",
                "bytes seen",
                "wall (s)",
                "train wall (s)",
                "tokens/s",
                "bytes/s",
            ],
            [
                [
                    r["arm"],
                    fmt_num(r["tokens_per_byte"], 4),
                    fmt_int(r["steps"]),
                    fmt_int(r["tokens_seen"]),
                    fmt_int(r["bytes_seen"]),
                    fmt_num(r["wall_s"], 1),
                    fmt_num(r["train_wall_s"], 1),
                    fmt_int(r["tokens_per_s"]),
                    fmt_int(r["bytes_per_s"]),
                ]
                for _, r in tp.iterrows()
            ],
        ),
    ]


def _incomplete_blocks(inc: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Incomplete and diverged runs")]
    if inc.empty:
        return [*blocks, Para("None: every run directory holds a completed run.")]
    return [
        *blocks,
        Para(
            "Excluded from every mean and every paired comparison. `missing`: no summary.json "
            "(still running, or killed); `diverged`: the loss became NaN/inf at the given step."
        ),
        Table(
            ["arm", "seed", "status", "diverged at step", "run directory"],
            [
                [
                    r["arm"],
                    str(r["seed"]),
                    r["status"],
                    str(int(r["diverged_at_step"])) if pd.notna(r["diverged_at_step"]) else NA,
                    r["run_dir"],
                ]
                for _, r in inc.iterrows()
            ],
            align="lrlrl",
        ),
    ]


def _config_blocks(study: Study, done: pd.DataFrame) -> list[Block]:
    import yaml

    blocks: list[Block] = [Heading(2, "Configuration")]
    shared, per_arm, by_seed = A.config_summary(study.configs, done)
    if not shared and per_arm.empty:
        return [
            *blocks,
            Para("No resolved config (.hydra/config.yaml or config.json) in the run directories."),
        ]
    blocks += [
        Para(
            "Settings shared by every completed run (from each run's resolved `.hydra/config.yaml`), "
            "without the seed:"
        ),
        Code(
            yaml.safe_dump(shared, sort_keys=True, default_flow_style=False, allow_unicode=True),
            "yaml",
        ),
    ]
    if not per_arm.empty:
        blocks += [
            Para("Settings that differ between arms:"),
            Table(
                list(per_arm.columns),
                [[str(v) for v in row] for row in per_arm.itertuples(index=False)],
                align="l" * len(per_arm.columns),
            ),
        ]
    if by_seed:
        blocks.append(
            Para("Varies with the seed: " + ", ".join(f"`{k}`" for k in sorted(set(by_seed))) + ".")
        )
    return blocks


def _version_blocks(runs: pd.DataFrame) -> list[Block]:
    import matplotlib
    import scipy

    import embinit

    v = A.software_versions(runs)
    return [
        Heading(2, "Software versions"),
        Table(
            ["package", "version(s) in the runs"],
            [[r["package"], r["versions"]] for _, r in v.iterrows()],
            align="ll",
        )
        if not v.empty
        else Para("The run records carry no versions."),
        Para(
            f"Report built by embinit {embinit.__version__} with pandas {pd.__version__}, numpy "
            f"{np.__version__}, scipy {scipy.__version__}, matplotlib {matplotlib.__version__}."
        ),
    ]


def _analytic(runs: pd.DataFrame, params: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The analytic table for this study's vocabularies, one entry per distinct (vocab, size)."""
    vocab_of = (
        runs.dropna(subset=["vocab"]).groupby("arm")["vocab"].first() if "vocab" in runs else {}
    )
    sizes: dict[str, int] = {}
    for arm, size in zip(params["arm"], params["vocab_size"], strict=True):
        if size > 0:
            sizes[f"{vocab_of.get(arm, arm)} {int(size):,} (this study)"] = int(size)
    try:
        return A.analytic_param_table(sizes, model=ANALYTIC_MODEL), ""
    except ImportError:
        return None, "Not available: `embinit.params` could not be imported."


def build_report(study: Study, reference_arm: str | None = None) -> Report:
    """Tables, figures and the document for a loaded study; pure (writes nothing)."""
    check_has_completed(study)
    ref = reference_arm_for(study, reference_arm)
    runs = study.runs
    done = A.completed(runs)
    summary = A.arm_summary(runs, ref, SUMMARY_METRICS, CONFIDENCE)
    arms = list(summary["arm"])
    colors = arm_colors(arms)
    curves = study.curves
    params = A.param_table(runs)
    params = (
        params.set_index("arm").reindex([a for a in arms if a in set(params["arm"])]).reset_index()
    )
    analytic, analytic_note = _analytic(runs, params)
    oov = A.oov_table(runs, ref)
    tp = A.throughput_table(runs, ref)
    inc = A.incomplete_runs(runs)

    figs = {
        "val_bpb_lossless_vs_bytes.png": plot_curves(
            A.curve_band(curves, "bytes_seen", "val_bpb_lossless", CONFIDENCE),
            "bytes_seen",
            "training bytes seen (MB)",
            "val lossless bpb",
            "validation lossless bits per byte vs data seen",
            colors,
            1e6,
        ),
        "val_bpb_vs_bytes.png": plot_curves(
            A.curve_band(curves, "bytes_seen", "val_bpb", CONFIDENCE),
            "bytes_seen",
            "training bytes seen (MB)",
            "val bpb",
            "validation bits per byte vs data seen",
            colors,
            1e6,
        ),
        "val_bpb_vs_steps.png": plot_curves(
            A.curve_band(curves, "step", "val_bpb", CONFIDENCE),
            "step",
            "optimizer step",
            "val bpb",
            "validation bits per byte vs step",
            colors,
        ),
        "train_loss_vs_steps.png": plot_curves(
            A.curve_band(curves, "step", "train_loss", CONFIDENCE),
            "step",
            "optimizer step",
            "train loss (nats/token)",
            "train loss vs step (per token: not comparable across tokenizers)",
            colors,
        ),
        "final_bpb.png": plot_final_bpb(summary, colors),
        "params.png": plot_params(params, analytic, ANALYTIC_MODEL),
        "oov.png": plot_oov(study.oov_curve, oov, colors),
    }
    captions = {
        "val_bpb_lossless_vs_bytes.png": "Validation lossless bpb (model loss plus the cost of "
        "<unk> spellings and dropped whitespace) against training bytes seen: mean over seeds, "
        f"{CONFIDENCE:.0%} CI band. The like-for-like curve across tokenizers; step 0 is the "
        "initialization.",
        "val_bpb_vs_bytes.png": "Raw validation bpb against training bytes seen: mean over seeds, "
        f"{CONFIDENCE:.0%} CI band (word-level arms are not charged for <unk> or whitespace here).",
        "val_bpb_vs_steps.png": "Validation bpb against optimizer steps.",
        "train_loss_vs_steps.png": "Training loss per token against steps (not comparable across tokenizers).",
        "final_bpb.png": "Final bpb per arm: raw, OOV-adjusted and lossless; filled: val, open: test; "
        f"error bars: {CONFIDENCE:.0%} CI over seeds.",
        "params.png": f"Parameter counts: this study's arms, and the same vocabularies at {ANALYTIC_MODEL} shape.",
        "oov.png": "Word-level OOV rate vs vocabulary size (dotted: this study's word vocabularies); "
        "per-arm OOV rates and init coverage.",
    }

    n_done = len(done)
    title = f"embinit report: {study.name}"
    desc = next(
        (str((c.get("study") or {}).get("description") or "") for c in study.configs.values()), ""
    )
    blocks: list[Block] = [Heading(1, title)]
    if desc:
        blocks.append(Para(desc))
    blocks += [
        Para(
            f"{_n(len(arms), 'arm')}, {_n(len(runs), 'run directory', 'run directories')}, "
            f"{_n(n_done, 'completed run')}; reference arm: "
            f"{ref}. Everything below is generated from the run records (`python -m embinit.report`)."
        ),
        Heading(2, "Verdicts"),
        Para(
            "Read the lossless figures first. Raw bpb lets a word-level model skip the spelling "
            "of unknown words and the whitespace between its tokens, which byte-level BPE has to "
            "predict; lossless bpb charges both, so every arm is scored on the same information. "
            "OOV-adjusted bpb charges the unknown words only."
        ),
        Bullets(A.verdicts(summary, ref, CONFIDENCE)),
        *_headline_blocks(summary, ref),
        *_oov_adjusted_blocks(summary, oov, ref),
        Heading(2, "Figures"),
    ]
    for name, png in figs.items():
        blocks += [Image(name, captions[name], png), Para(captions[name])]
    blocks += [
        *_param_blocks(params, analytic, analytic_note),
        *_oov_blocks(oov, study.oov_curve),
        *_throughput_blocks(tp),
        *_incomplete_blocks(inc),
        *_config_blocks(study, done),
        *_version_blocks(runs),
    ]

    files: dict[str, bytes] = {f"{FIG_DIR}/{n}": png for n, png in figs.items()}
    files["summary.csv"] = _csv(summary)
    files["runs.csv"] = _csv(runs)
    files["report.html"] = render_html(blocks, title).encode("utf-8")
    files["report.md"] = render_markdown(blocks).encode(
        "utf-8"
    )  # last: its presence means all is there
    return Report(files=files, blocks=blocks, summary=summary, reference_arm=ref)


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write every file atomically, in order (report.md last); returns the paths."""
    out = Path(out_dir)
    written = []
    for rel, data in report.files.items():
        path = out / rel
        atomic_write_bytes(path, data)
        written.append(path)
    return written


# ------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m embinit.report",
        description="Build results/<study>/report.{md,html}, summary.csv, runs.csv and figures "
        "from a study's run records.",
    )
    parser.add_argument("study_dir", help="experiments/<study>: holds <arm>/seed<k>/summary.json")
    parser.add_argument("--out", help="output directory (default: results/<study name>)")
    parser.add_argument(
        "--reference",
        help="arm to compare against (default: the study's study.reference_arm, else bpe+scratch)",
    )
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study_dir)
        report = build_report(study, args.reference)
        out = Path(args.out) if args.out else Path("results") / study.name
        write_report(report, out)
    except EmbinitError as e:
        print(f"embinit.report: error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {out / 'report.md'} and {out / 'report.html'} "
        f"({len(report.files)} files, reference arm {report.reference_arm})"
    )
    return 0


_RE_IMG = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def markdown_images(markdown: str) -> list[str]:
    """Relative paths of the images a markdown document links to."""
    return _RE_IMG.findall(markdown)


if __name__ == "__main__":
    sys.exit(main())
