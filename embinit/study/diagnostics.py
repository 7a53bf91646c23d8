"""Embedding diagnostics and the step-0 golden check, from the run records: pure tables.

``diagnostics_table``: per arm, WordSim353 / SimLex-999 Spearman ρ and analogy accuracy at
init and at the end, their coverage, and the drift of vector rows and fallback rows (mean
cosine of each row at init and at the end); means over completed seeds. ``neighbours``:
the nearest neighbours of a few probe words at init and at the end for the lowest seed of
each pretrained arm. ``step0_table``: each arm's validation loss before any update against
ln V. Records older than these fields contribute nothing (empty tables).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from embinit.study.load import completed, numeric_col

DIAG_KEYS = ("wordsim353_init", "wordsim353_final", "simlex999_init", "simlex999_final",
             "analogy_init", "analogy_final", "wordsim353_n", "simlex999_n", "analogy_n",
             "drift_covered", "drift_fallback")
DIAG_COLUMNS = ["arm", "n_seeds", *DIAG_KEYS]
STEP0_COLUMNS = ["arm", "n_seeds", "loss", "ln_vocab", "excess", "tolerance", "flagged",
                 "n_flagged"]
GLOVE_CORPUS = "wiki_sample"  # the embedded Wikipedia excerpt: GloVe 6B has likely seen it
GLOVE_NOTE = (
    "GloVe 6B was trained on Wikipedia 2014 + Gigaword: it has probably seen these articles; "
    "draw GloVe verdicts from an unseen corpus (data=text_files)."
)


def diagnostics_table(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per arm with any diagnostic recorded: means over completed seeds of ``DIAG_KEYS``."""
    done = completed(runs)
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        vals = {k: numeric_col(sub, f"diagnostics_{k}").dropna() for k in DIAG_KEYS}
        if not any(len(v) for v in vals.values()):
            continue
        rows.append({"arm": arm, "n_seeds": len(sub),
                     **{k: float(v.mean()) if len(v) else math.nan for k, v in vals.items()}})
    return pd.DataFrame(rows, columns=DIAG_COLUMNS)


def step0_table(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per arm with a step-0 record: mean loss, ln V, excess, tolerance, and whether any
    seed was flagged (``n_flagged`` of ``n_seeds``). Diverged runs count too: a start far
    above ln V is what this check looks for, and such runs are the likeliest to diverge."""
    done = runs[runs["status"].isin(["completed", "diverged"])] if "status" in runs else runs
    rows = []
    for arm in order:
        sub = done[done["arm"] == arm]
        loss = numeric_col(sub, "step0_loss").dropna()
        if not len(loss):
            continue
        flags = sub["step0_flagged"] if "step0_flagged" in sub.columns else pd.Series(
            dtype=object)
        n_flag = int(sum(bool(f) for f in flags.dropna()))

        def mean(col: str, sub: pd.DataFrame = sub) -> float:
            v = numeric_col(sub, col).dropna()
            return float(v.mean()) if len(v) else math.nan

        rows.append({"arm": arm, "n_seeds": len(loss), "loss": float(loss.mean()),
                     "ln_vocab": mean("step0_ln_vocab"), "excess": mean("step0_excess"),
                     "tolerance": mean("step0_tolerance"), "flagged": n_flag > 0,
                     "n_flagged": n_flag})
    return pd.DataFrame(rows, columns=STEP0_COLUMNS)


def neighbours(
    runs: pd.DataFrame, summaries: Mapping[str, Mapping[str, Any]], order: Sequence[str],
    n_probes: int = 3, n_words: int = 5,
) -> list[dict[str, Any]]:
    """For each pretrained arm (init not scratch) with neighbours recorded, its lowest
    completed seed: ``{"arm", "seed", "probes": [(probe, init words, final words)]}`` for
    the first ``n_probes`` probes (in the record's order), ``n_words`` neighbours each."""
    done = completed(runs)
    out = []
    for arm in order:
        sub = done[(done["arm"] == arm)].sort_values("seed")
        if not len(sub) or str(sub["init"].iloc[0] if "init" in sub else "") == "scratch":
            continue
        for rd, seed in zip(sub["run_dir"], sub["seed"], strict=True):
            nb = ((summaries.get(rd) or {}).get("diagnostics") or {}).get("neighbours")
            if not isinstance(nb, Mapping) or not isinstance(nb.get("init"), Mapping):
                continue
            init, final = nb.get("init") or {}, nb.get("final") or {}
            probes = [(str(p), [str(w) for w in list(init.get(p) or [])[:n_words]],
                       [str(w) for w in list(final.get(p) or [])[:n_words]])
                      for p in list(init)[:n_probes]]
            out.append({"arm": arm, "seed": int(seed), "probes": probes})
            break
    return out


def corpora(configs: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The ``data.name`` of every run's config (the corpus the study ran on); a Hugging
    Face corpus is named ``hf:<dataset>`` (e.g. ``hf:wikitext``)."""
    out = set()
    for c in configs.values():
        data = c.get("data") or {}
        name = data.get("name")
        if name == "hf" and data.get("hf_dataset"):
            name = f"hf:{data['hf_dataset']}"
        if name:
            out.add(str(name))
    return out


def _wikipedia(corpus: str) -> bool:
    # The embedded excerpt and WikiText (Wikipedia articles) are both in GloVe 6B's sources.
    return corpus == GLOVE_CORPUS or "wiki" in corpus.lower()


def glove_seen(arm: str, configs: Mapping[str, Mapping[str, Any]]) -> bool:
    """A GloVe number that needs ``GLOVE_NOTE``: a GloVe arm on a Wikipedia corpus (the
    embedded excerpt, WikiText)."""
    return "glove" in arm and any(_wikipedia(c) for c in corpora(configs))


__all__ = [
    "DIAG_COLUMNS",
    "DIAG_KEYS",
    "GLOVE_CORPUS",
    "GLOVE_NOTE",
    "STEP0_COLUMNS",
    "corpora",
    "diagnostics_table",
    "glove_seen",
    "neighbours",
    "step0_table",
]
