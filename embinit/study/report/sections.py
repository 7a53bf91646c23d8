"""The report's sections: each a function from tables to document blocks.

The prose around the numbers lives here, beside the table it explains; the order
the sections appear in is ``embinit.study.report.build``'s business. Every interval
is drawn at ``CONFIDENCE``; parameter costs are priced at ``ANALYTIC_MODEL`` shape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from embinit.study.load import HEADLINE_METRICS, Study
from embinit.study.report.doc import (
    NA,
    Block,
    Code,
    Heading,
    Para,
    Table,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
)
from embinit.study.shapes import model_shape
from embinit.study.tables import config_summary, software_versions

CONFIDENCE = 0.95
SUMMARY_METRICS = (*HEADLINE_METRICS, "val_loss", "test_loss")
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


def raw_bpb_blocks(summary: pd.DataFrame, ref: str) -> list[Block]:
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
        Heading(2, "Raw bits per byte (seed means)"),
        Para(
            f"Raw bits per byte (bpb) divides the model's total loss by the UTF-8 bytes of the "
            f"text. It still favours closed-vocabulary word arms, which are not charged for "
            f"`<unk>` words or whitespace (the next section adds both), so across such tokenizers "
            f"its differences are descriptive, not verdicts. Means over completed seeds with "
            f"{ci} (Student t over seeds only); Δ is the arm minus {ref}, paired by seed, p from "
            f"a paired t-test, unadjusted. Lower is better."
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


def oov_adjusted_blocks(summary: pd.DataFrame, oov: pd.DataFrame, ref: str) -> list[Block]:
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


def param_blocks(
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
    m = model_shape(ANALYTIC_MODEL)
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


def oov_blocks(oov: pd.DataFrame, curve: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Out-of-vocabulary"),
        Para(
            "Token rate: share of evaluated tokens that are `<unk>`; type rate: share of distinct "
            "words; `<unk>` byte share: share of the split's bytes inside `<unk>` words. Init "
            "coverage: share of vocabulary types (and of train tokens) that received a pretrained "
            "vector; n/a for arms initialized from scratch."
        ),
        Para(
            "Spelled words and spelled bytes (word level with byte fallback; 0 for other "
            "vocabularies): the share of the split's words, and of its bytes, spelled out in "
            "byte tokens. A word outside the vocabulary is spelled in byte tokens: these rows "
            "are the seed's OOV words, initialized randomly (the embedding rows of the 256 byte "
            "tokens never take a pretrained vector), so in a pretrained arm this part of the "
            f"held-out text is read through embeddings the initialization did not set. {NA}: not "
            "in these records."
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
                "val spelled words",
                "val spelled bytes",
                "test spelled words",
                "test spelled bytes",
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
                    fmt_pct(r["val_spelled_word_rate"]),
                    fmt_pct(r["val_spelled_byte_share"]),
                    fmt_pct(r["test_spelled_word_rate"]),
                    fmt_pct(r["test_spelled_byte_share"]),
                    fmt_pct(r["init_coverage_types"], 1),
                    fmt_pct(r["init_coverage_tokens"], 1),
                ]
                for _, r in oov.iterrows()
            ],
            align="ll" + "r" * 12,
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


def throughput_blocks(tp: pd.DataFrame) -> list[Block]:
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


def incomplete_blocks(inc: pd.DataFrame) -> list[Block]:
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


def config_blocks(study: Study, done: pd.DataFrame) -> list[Block]:
    import yaml

    blocks: list[Block] = [Heading(2, "Configuration")]
    shared, per_arm, by_seed = config_summary(study.configs, done)
    if not shared and per_arm.empty:
        return [
            *blocks,
            Para("No resolved config (config.json, or Hydra's copy in records older than it) in "
                 "the run directories."),
        ]
    blocks += [
        Para(
            "Settings shared by every completed run (from each run's resolved `config.json`; "
            "records older than it: Hydra's copy), without the seed:"
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


def version_blocks(runs: pd.DataFrame) -> list[Block]:
    import matplotlib
    import scipy

    import embinit

    v = software_versions(runs)
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


__all__ = [
    "ANALYTIC_MODEL",
    "CONFIDENCE",
    "SUMMARY_METRICS",
    "config_blocks",
    "incomplete_blocks",
    "oov_adjusted_blocks",
    "oov_blocks",
    "param_blocks",
    "raw_bpb_blocks",
    "throughput_blocks",
    "version_blocks",
]
