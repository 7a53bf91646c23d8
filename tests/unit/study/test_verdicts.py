"""study.report.verdicts: the generated sentences, on fabricated records."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from embinit.study import load as L
from embinit.study import tables as T
from embinit.study.report.verdicts import verdicts


def test_arm_without_completed_runs_gets_nan_row() -> None:
    runs = pd.DataFrame(
        {
            "arm": ["a", "a", "b"],
            "seed": [0, 1, 0],
            "status": ["completed", "completed", "diverged"],
            "run_dir": ["a/seed0", "a/seed1", "b/seed0"],
            "val_bpb": [1.0, 1.1, None],
        }
    )
    s = T.arm_summary(runs, "a", metrics=("val_bpb",)).set_index("arm")
    assert s.loc["b", "n_seeds"] == 0 and s.loc["b", "n_diverged"] == 1
    assert math.isnan(s.loc["b", "val_bpb_mean"]) and s.loc["b", "val_bpb_diff_n"] == 0
    text = " ".join(verdicts(s.reset_index(), "a"))
    assert "b: no completed runs" in text and "b: 1 of 1 runs diverged" in text



def test_verdicts(study: Path) -> None:
    s = T.arm_summary(L.load_runs(study), "bpe+scratch")
    v = verdicts(s, "bpe+scratch")
    lowest_val = next(x for x in v if x.startswith("Lowest val bpb"))
    assert lowest_val.startswith("Lowest val bpb: word+scratch (1.160 ± ")
    lowest_adj = next(x for x in v if x.startswith("Lowest OOV-adjusted val bpb"))
    assert "bpe+scratch (1.210 ± 0.025" in lowest_adj
    w2v = next(x for x in v if x.startswith("word+word2vec vs bpe+scratch: +0.100 bpb"))
    assert w2v.endswith("(paired t-test, n=3): the CI excludes zero.")
    assert "[95% CI +0.075, +0.125], p=0.003" in w2v
    ws = next(x for x in v if x.startswith("word+scratch vs bpe+scratch: -0.045 bpb"))
    assert "(paired t-test, n=2): the CI includes zero" in ws
    assert "common seeds only: 0,1" in ws
    adj = next(x for x in v if x.startswith("word+scratch vs bpe+scratch: +0.075 OOV-adjusted bpb"))
    assert "includes zero" in adj
    assert "word+scratch: 1 of 3 runs diverged and are excluded from every mean." in v
    assert any(x.startswith("word+word2vec: 1 of 4 runs are incomplete") for x in v)


def test_verdicts_without_reference_runs(study: Path) -> None:
    runs = L.load_runs(study)
    runs = runs[runs["arm"] != "bpe+scratch"]
    v = verdicts(T.arm_summary(runs, "bpe+scratch"), "bpe+scratch")
    assert any("reference arm bpe+scratch has no completed runs" in x for x in v)


def test_verdict_for_one_pair_and_for_identical_differences() -> None:
    runs = pd.DataFrame(
        {
            "arm": ["r", "r", "a", "b", "b"],
            "seed": [0, 1, 0, 0, 1],
            "status": ["completed"] * 5,
            "run_dir": list("12345"),
            "val_bpb": [1.0, 1.1, 1.2, 1.5, 1.6],
        }
    )
    v = verdicts(T.arm_summary(runs, "r", metrics=("val_bpb",)), "r", compare=("val_bpb",))
    assert any(x.startswith("a vs r: +0.200 bpb on the one common seed: no CI") for x in v)
    assert any(x.startswith("b vs r: +0.500 bpb on every one of n=2 seeds") for x in v)
