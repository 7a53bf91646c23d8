"""Where the study's runs sit: the n-gram baselines of each token stream and the regime
coordinates beside the seed's. The first screen states the answer (`regime_verdict`); the
tables follow further down (`regime_blocks`)."""

from __future__ import annotations

import math

import pandas as pd

from embinit.study.baselines import BEATS, BELOW
from embinit.study.report.doc import NA, Block, Heading, Para, Table


def _f(x: float, nd: int = 3) -> str:
    return NA if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _g(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2g}" if abs(x) < 1 else f"{x:.1f}"


def _pct(x: float) -> str:
    return NA if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def _span(regime: pd.DataFrame) -> str:
    tpp = regime["tokens_per_nonembedding_param"].dropna()
    if not len(tpp):
        return ""
    lo, hi = float(tpp.min()), float(tpp.max())
    return f"{_g(lo)}" if math.isclose(lo, hi, rel_tol=0.05) else f"{_g(lo)}–{_g(hi)}"


def regime_verdict(versus: pd.DataFrame, regime: pd.DataFrame) -> list[Block]:
    """The first-screen statement: does each GPT arm beat the best n-gram of its tokenizer,
    and how many training tokens per non-embedding parameter did it see (the seed's model:
    3.5–35)."""
    span = _span(regime)
    where = (f"Regime: {span} training tokens per non-embedding parameter (the seed's "
             "GPT-2 small on 300M–3B tokens: 3.5–35)." if span else
             "Regime: not in these records (tokens per non-embedding parameter; the seed's "
             "GPT-2 small on 300M–3B tokens sees 3.5–35).")
    if not len(versus):
        return [Para(f"{where} No n-gram baseline in these records (written before "
                     "the baselines stage; re-run the study): whether the arms beat counting "
                     "is not known.")]
    beat = list(versus.loc[versus["outcome"] == BEATS, "arm"])
    below = list(versus.loc[versus["outcome"] == BELOW, "arm"])
    if not beat:
        head = ("No GPT arm beats the best n-gram model of its own tokens"
                + (f" ({', '.join(below)} {'scores' if len(below) == 1 else 'score'} "
                   "worse)" if below else "")
                + ": every verdict below is about a head start, not about a model that has "
                "learned more than counting.")
    elif len(beat) == len(versus):
        head = "Every GPT arm beats the best n-gram model of its own tokens (95% CI below 0)."
    else:
        rest = [a for a in versus["arm"] if a not in beat]
        head = (f"{', '.join(beat)} beat the best n-gram model of their tokens; "
                f"{', '.join(rest)} do not: verdicts involving them are about a head start.")
    return [Para(f"{head} {where}")]


def regime_blocks(ngram: pd.DataFrame, versus: pd.DataFrame, regime: pd.DataFrame,
                  seed: pd.DataFrame, confidence: float = 0.95) -> list[Block]:
    """Baselines, each arm against them, and the regime table with the seed's rows."""
    if not (len(ngram) or len(versus) or len(regime)):
        return []
    blocks: list[Block] = [Heading(2, "Baselines and regime")]
    if len(ngram):
        blocks += [
            Para("Interpolated Kneser–Ney n-gram models fitted on each token stream's training "
                 "tokens (the tokens its arms train on; Ney's discount per order, a uniform "
                 "floor), scored on the same held-out documents with the same byte accounting "
                 "and lossless charges as the arms: bpb over val ∪ test, "
                 f"{confidence:.0%} CI over documents (a count model has no seed)."),
            Table(["tokenizer", "order", "train tokens", "held-out bpb [95% CI]", "documents",
                   "arms on this stream"],
                  [[r.tokenizer, str(r.order), f"{r.train_tokens:,}",
                    f"{_f(r.bpb)} [{_f(r.lo)}, {_f(r.hi)}]", str(r.n_docs), r.arms]
                   for r in ngram.itertuples()], align="lrrrrl"),
        ]
    if len(versus):
        blocks += [
            Para("Each arm minus the best n-gram of its tokenizer, paired over the same "
                 "documents × the arm's seeds (negative: the arm beats counting)."),
            Table(["arm", "tokenizer", "best n-gram", "n-gram bpb", "arm bpb",
                   "arm − n-gram [95% CI]", "documents × seeds", "outcome"],
                  [[r.arm, r.tokenizer, f"order {r.order}", _f(r.ngram_bpb), _f(r.arm_bpb),
                    f"{_f(r.diff)} [{_f(r.lo)}, {_f(r.hi)}]", f"{r.n_docs} × {r.n_seeds}",
                    r.outcome] for r in versus.itertuples()], align="llrrrrrl"),
        ]
    if len(regime):
        rows = [[r.arm, _g(r.tokens_per_nonembedding_param), _g(r.tokens_per_param),
                 _g(r.epochs) + (" †" if r.beyond_fresh_epochs else ""),
                 _pct(r.embedding_share), _g(r.row_occurrences_median),
                 _g(r.row_occurrences_p10), _g(r.row_occurrences_mean),
                 _pct(r.rows_never_seen), _pct(r.spelled_word_rate)]
                for r in regime.itertuples()]
        rows += [[f"seed: GPT-2 small, {s.vocab} {s.vocab_size:,}, {s.tokens / 1e9:g}B tokens"
                  if s.tokens >= 1e9 else
                  f"seed: GPT-2 small, {s.vocab} {s.vocab_size:,}, {s.tokens / 1e6:g}M tokens",
                  _g(s.tokens_per_nonembedding_param), _g(s.tokens_per_param), NA,
                  _pct(s.embedding_share), NA, NA, _g(s.row_occurrences_mean), NA, NA]
                 for s in seed.itertuples()]
        blocks += [
            Para("Regime coordinates (means over seeds): training tokens seen per "
                 "non-embedding parameter and per parameter, epochs over the train split, "
                 "the embedding's share of the parameters, training occurrences per "
                 "vocabulary row (train-split count × epochs: median, 10th percentile, mean), "
                 "the share of rows never seen in training, and the held-out words outside the "
                 "vocabulary (spelled in byte rows or `<unk>`). The seed's rows give what is "
                 "exact without its corpus. † more than 4 epochs: repeated data is no longer "
                 "nearly as good as fresh (Muennighoff et al. 2023)."),
            Table(["arm", "tokens / non-emb. param", "tokens / param", "epochs",
                   "embedding share", "row occ. median", "row occ. p10", "row occ. mean",
                   "rows never seen", "OOV words"], rows, align="lrrrrrrrrr"),
        ]
    return blocks


__all__ = ["regime_blocks", "regime_verdict"]
