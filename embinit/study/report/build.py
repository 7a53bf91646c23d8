"""Build and write the study report: ``python -m embinit.study.report STUDY_DIR``.

Writes into ``--out`` (default ``results/<study name>``)::

    report.md      GitHub-renderable: pipe tables, figures linked as figures/*.png
    report.html    self-contained: the same content, figures embedded as data: URIs
    summary.csv    one row per arm: counts, means, seed-only CI bounds, paired differences
    heldout.csv    one row per (scope, arm): the held-out comparisons with the reference,
                   then per (scope, declared pair "a vs b"): arm a minus arm `versus`
                   (documents x seeds variance components, Holm-adjusted p, equivalence)
    runs.csv       one row per run directory, completed or not
    figures/*.png  the figures

The flow is load (``load_study``, the only reading) -> ``build_report`` (pure: tables,
figures as PNG bytes, the document as blocks rendered twice) -> ``write_report``
(every file atomic, report.md last). A study without a completed run is an error
and nothing is written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from embinit.errors import EmbinitError
from embinit.record import archive_records
from embinit.storage import atomic_write_bytes
from embinit.study import compare as C
from embinit.study.baselines import (
    baseline_docs,
    ngram_table,
    regime_table,
    seed_table,
    versus_ngram,
)
from embinit.study.claims import (
    at_main_regime,
    has_claim_arms,
    main_fraction,
    scorecard,
    scorecard_frame,
)
from embinit.study.compare import (
    PAIR_SEP,
    SCOPES,
    arm_facts,
    declared,
    heldout_comparisons,
    spellers,
)
from embinit.study.design import body_init_check, design_table, sliding_table, speller_table
from embinit.study.diagnostics import (
    diagnostics_table,
    glove_seen,
    neighbours,
    step0_table,
)
from embinit.study.load import (
    STUDY_JSON_UNREADABLE,
    Study,
    check_has_completed,
    completed,
    load_study,
    reference_arm_for,
    study_description,
)
from embinit.study.regimes import (
    datasize_table,
    factorial_effects,
    gain_by_fraction,
    gain_trend,
    split_fraction,
)
from embinit.study.report.claims_sections import (
    datasize_blocks,
    diagnostics_blocks,
    factorial_blocks,
    mark_glove,
    scorecard_blocks,
    summary_blocks,
)
from embinit.study.report.doc import (
    FIG_DIR,
    Block,
    Bullets,
    Heading,
    Image,
    Para,
    render_html,
    render_markdown,
)
from embinit.study.report.figures import (
    arm_colors,
    plot_curves,
    plot_datasize,
    plot_final_bpb,
    plot_headline,
    plot_oov,
    plot_params,
)
from embinit.study.report.heldout_sections import (
    design_blocks,
    headline_blocks,
    sliding_blocks,
    speller_blocks,
    split_blocks,
)
from embinit.study.report.regime_sections import regime_blocks, regime_verdict
from embinit.study.report.sections import (
    ANALYTIC_MODEL,
    CONFIDENCE,
    SUMMARY_METRICS,
    config_blocks,
    incomplete_blocks,
    oov_adjusted_blocks,
    oov_blocks,
    param_blocks,
    raw_bpb_blocks,
    throughput_blocks,
    version_blocks,
)
from embinit.study.report.verdicts import verdicts
from embinit.study.tables import (
    analytic_param_table,
    arm_summary,
    curve_band,
    incomplete_runs,
    oov_table,
    param_table,
    throughput_table,
)

HEADLINE_CAPTION = ("Held-out bpb per arm (95% CI over documents × seeds), the best n-gram "
                    "model of each tokenizer dashed, each arm's training tokens per "
                    "non-embedding parameter in its label; right: each arm minus the "
                    "reference, paired.")
RECORDS_DIR = "records"  # <out>/records/<study>/: the records the report was built from


@dataclass
class Report:
    """A built report: the files to write (relative path -> bytes) and its blocks."""

    files: dict[str, bytes]
    blocks: list[Block]
    summary: pd.DataFrame
    reference_arm: str
    heldout: pd.DataFrame | None = None  # heldout_comparisons of every scope, stacked


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k} {one if k == 1 else (many or one + 's')}"


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


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
        return analytic_param_table(sizes, model=ANALYTIC_MODEL), ""
    except ImportError:
        return None, "Not available: `embinit.params` could not be imported."


def build_report(study: Study, reference_arm: str | None = None) -> Report:
    """Tables, figures and the document for a loaded study; pure (writes nothing)."""
    check_has_completed(study)
    ref = reference_arm_for(study, reference_arm)
    runs = study.runs
    done = completed(runs)
    summary = arm_summary(runs, ref, SUMMARY_METRICS, CONFIDENCE)
    arms = list(summary["arm"])
    settings = study.settings
    margin = settings.equivalence_margin if settings is not None else 0.02
    primary = list(settings.primary) if settings is not None else []
    facts = arm_facts(runs, study.configs)
    names = spellers(runs)
    comps = {
        scope: heldout_comparisons(runs, study.docs, ref, scope, primary, margin, CONFIDENCE, facts,
                                   study.doc_gaps)
        for scope in SCOPES
    }
    heldout = pd.concat(comps.values(), ignore_index=True)
    colors = arm_colors(arms)
    curves = study.curves
    params = param_table(runs)
    params = (
        params.set_index("arm").reindex([a for a in arms if a in set(params["arm"])]).reset_index()
    )
    analytic, analytic_note = _analytic(runs, params)
    oov = oov_table(runs, ref)
    tp = throughput_table(runs, ref)
    inc = incomplete_runs(runs)

    figs = {
        "val_bpb_lossless_vs_bytes.png": plot_curves(
            curve_band(curves, "bytes_seen", "val_bpb_lossless", CONFIDENCE),
            "bytes_seen",
            "training bytes seen (MB)",
            "val lossless bpb",
            "validation lossless bits per byte vs data seen",
            colors,
            1e6,
        ),
        "val_bpb_vs_bytes.png": plot_curves(
            curve_band(curves, "bytes_seen", "val_bpb", CONFIDENCE),
            "bytes_seen",
            "training bytes seen (MB)",
            "val bpb",
            "validation bits per byte vs data seen",
            colors,
            1e6,
        ),
        "val_bpb_vs_steps.png": plot_curves(
            curve_band(curves, "step", "val_bpb", CONFIDENCE),
            "step",
            "optimizer step",
            "val bpb",
            "validation bits per byte vs step",
            colors,
        ),
        "train_loss_vs_steps.png": plot_curves(
            curve_band(curves, "step", "train_loss", CONFIDENCE),
            "step",
            "optimizer step",
            "train loss (nats/token)",
            "train loss vs step (per token: not comparable across tokenizers)",
            colors,
        ),
        "final_bpb.png": plot_final_bpb(summary, colors, CONFIDENCE),
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
    desc = study_description(study)
    blocks: list[Block] = [Heading(1, title)]
    if desc:
        blocks.append(Para(desc))
    blocks.append(
        Para(
            f"{_n(len(arms), 'arm')}, {_n(len(runs), 'run directory', 'run directories')}, "
            f"{_n(n_done, 'completed run')}; reference arm: "
            f"{ref}. Everything below is generated from the run records (`python -m embinit.report`)."
        )
    )
    for warning in study.warnings:
        detail = (f" (reference arm {ref}, every arm a primary comparison, equivalence margin "
                  f"±{margin:g} bpb)" if warning == STUDY_JSON_UNREADABLE else "")
        blocks.append(Para(f"Warning: {warning}{detail}."))
    _, _, absent = declared(primary, arms, ref)
    lone = [a for a in absent if PAIR_SEP not in a]
    pairs = [a for a in absent if PAIR_SEP in a]
    if lone:
        blocks.append(Para(
            "Declared primary in study.json but not an arm compared with the reference here: "
            + ", ".join(lone) + "."
        ))
    if pairs:
        blocks.append(Para(
            "Declared primary in study.json but not a pair of two different arms of this "
            "study: " + ", ".join(pairs) + "."
        ))
    # Before any verdict: where the runs sit (n-gram baselines, tokens per parameter).
    bdocs, stream_arms = baseline_docs(study.summaries)
    tok_of = dict(zip(facts["arm"], facts["tokenizer"], strict=True))
    labels = {s: tok_of.get(a[0], s) + (f" +data{s.rsplit('@', 1)[1]}"
                                        if not s.endswith("@1") else "")
              for s, a in stream_arms.items()}
    ngram = ngram_table(bdocs, stream_arms, labels, CONFIDENCE)
    versus = versus_ngram(study.docs, bdocs, stream_arms, ngram, CONFIDENCE)
    regime = regime_table(runs, arms)
    blocks += regime_verdict(versus, regime)
    figs["headline.png"] = plot_headline(C.arm_rows(comps["held-out"]), ngram, regime, colors,
                                         ref, CONFIDENCE)
    blocks.append(Image("headline.png", HEADLINE_CAPTION, figs["headline.png"]))
    # The top: the claims scorecard when the study tests a claim, else three lines.
    claims = scorecard(study, margin)
    with_claims = has_claim_arms(claims, runs)
    if with_claims:
        blocks += scorecard_blocks(claims, margin)
    else:
        blocks += summary_blocks(comps["held-out"], ref)
    size = datasize_table(runs, comps["held-out"])
    gains = gain_by_fraction(runs, study.docs, gaps=study.doc_gaps) if len(size) else size
    trends = {tok: gain_trend(g) for tok, g in gains.groupby("tokenizer")} if len(size) else {}
    if len(size):
        figs["datasize.png"] = plot_datasize(size, gains, colors)
    main = main_fraction(runs)
    blocks += [
        *design_blocks(design_table(runs, facts, arms), body_init_check(runs)),
        *headline_blocks(comps["held-out"], ref, facts, margin, names, CONFIDENCE),
        *regime_blocks(ngram, versus, regime, seed_table(), CONFIDENCE),
        *split_blocks({s: comps[s] for s in SCOPES if s != "held-out"}, ref, facts, margin,
                      CONFIDENCE),
        *sliding_blocks(sliding_table(runs, arms), facts),
        *speller_blocks(speller_table(runs, arms, names), comps["held-out"], ref, names),
        # The 2x2 at the study's main data regime (claims: every arm at +data0.4).
        *factorial_blocks(factorial_effects(
            at_main_regime(runs, main), at_main_regime(study.docs, main),
            gaps=at_main_regime(study.doc_gaps, main))),
        *diagnostics_blocks(diagnostics_table(runs, arms), step0_table(runs, arms),
                            # neighbours of the main-regime arms only: one table per init
                            neighbours(runs, study.summaries,
                                       [a for a in arms if split_fraction(a)[1] == main])),
        *datasize_blocks(size, gains, trends, figs.get("datasize.png")),
        Heading(2, "Per-metric verdicts (seeds only)"),
        Para(
            "Read the lossless figures first. Raw bpb lets a word-level model skip the spelling "
            "of unknown words and the whitespace between its tokens, which byte-level BPE has to "
            "predict; lossless bpb charges both, so every arm is scored on the same information. "
            "OOV-adjusted bpb charges the unknown words only."
        ),
        Bullets(verdicts(summary, ref, CONFIDENCE, facts=facts)),
        *raw_bpb_blocks(summary, ref),
        *oov_adjusted_blocks(summary, oov, ref),
        Heading(2, "Figures"),
    ]
    for name, png in figs.items():
        if name in captions:  # the data-size figure sits in its own section
            blocks += [Image(name, captions[name], png), Para(captions[name])]
    blocks += [
        *param_blocks(params, analytic, analytic_note),
        *oov_blocks(oov, study.oov_curve),
        *throughput_blocks(tp),
        *incomplete_blocks(inc),
        *config_blocks(study, done),
        *version_blocks(runs),
    ]

    if any(glove_seen(a, study.configs) for a in arms):
        blocks = mark_glove(blocks, arms)
    files: dict[str, bytes] = {f"{FIG_DIR}/{n}": png for n, png in figs.items()}
    if with_claims:
        files["claims.csv"] = _csv(scorecard_frame(claims))
    if len(ngram):
        files["baselines.csv"] = _csv(ngram)
        files["versus_ngram.csv"] = _csv(versus)
    if len(regime):
        files["regime.csv"] = _csv(regime)
    files["summary.csv"] = _csv(summary)
    files["heldout.csv"] = _csv(heldout)
    files["runs.csv"] = _csv(runs)
    files["report.html"] = render_html(blocks, title).encode("utf-8")
    files["report.md"] = render_markdown(blocks).encode(
        "utf-8"
    )  # last: its presence means all is there
    return Report(files=files, blocks=blocks, summary=summary, reference_arm=ref, heldout=heldout)


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


def main(argv: Sequence[str] | None = None, prog: str = "python -m embinit.report") -> int:
    # `prog`: the name it was called by (embinit-report, or the alias python -m embinit.report).
    from embinit.commands import report_parser

    args = report_parser(prog).parse_args(argv)
    try:
        study = load_study(args.study_dir)
        report = build_report(study, args.reference)
        out = Path(args.out) if args.out else Path("results") / study.name
        write_report(report, out)
        if not args.no_archive:
            archive_records(args.study_dir, out / RECORDS_DIR)
    except EmbinitError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {out / 'report.md'} and {out / 'report.html'} "
        f"({len(report.files)} files, reference arm {report.reference_arm})"
    )
    return 0


__all__ = ["Report", "build_report", "main", "write_report"]
