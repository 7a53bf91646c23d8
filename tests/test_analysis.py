"""analysis: loading run records and the tables and sentences made from them (fabricated records)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from embinit import analysis as A
from embinit.config import ModelConfig

T975_DF2 = 4.302652729749464  # t_{0.975, 2} = sqrt(2 * 0.95^2 / (1 - 0.95^2)), exact
T975_DF1 = 12.706204736174696  # t_{0.975, 1} = tan(0.475 pi)

# Known final numbers, per arm and seed. word+scratch seed 2 diverges at step 120.
VAL_BPB = {
    "bpe+scratch": [1.20, 1.21, 1.22],
    "word+word2vec": [1.30, 1.32, 1.31],
    "word+scratch": [1.15, 1.17, None],
}
VAL_ADJ = {
    "bpe+scratch": [1.20, 1.21, 1.22],
    "word+word2vec": [1.40, 1.42, 1.41],
    "word+scratch": [1.26, 1.30, None],
}
VOCAB_SIZE = {"bpe": 8192, "word": 16384}
TOKENS_PER_BYTE = {"bpe": 0.25, "word": 0.2}
TINY = {
    "n_layer": 4,
    "n_head": 4,
    "d_model": 128,
    "block_size": 128,
    "bias": True,
    "tie_embeddings": True,
    "dropout": 0.0,
    "name": "tiny",
}
WORD_OOV_CURVE = [
    {"vocab_size": 1000, "token_rate": 0.20, "type_rate": 0.90},
    {"vocab_size": 4000, "token_rate": 0.08, "type_rate": 0.70},
    {"vocab_size": 16384, "token_rate": 0.02, "type_rate": 0.40},
]
STEPS = (0, 10, 20, 30, 40, 50)


def tiny_params(vocab_size: int) -> dict[str, int]:
    d, L, T = 128, 4, 128
    body = L * (12 * d * d + 13 * d) + 2 * d
    emb, pos = vocab_size * d, T * d
    return {
        "total": emb + pos + body,
        "embedding": emb,
        "output_head": 0,
        "position": pos,
        "non_embedding": pos + body,
        "body": body,
    }


def val_curve(arm: str, seed: int, step: int) -> float:
    """val bpb at a step: arm offset, decay, and a seed-dependent wiggle."""
    offset = {"bpe+scratch": 0.0, "word+word2vec": 0.1, "word+scratch": 0.05}[arm]
    return 3.0 + offset - 0.03 * step + 0.01 * seed


def summary_record(
    arm: str, seed: int, status: str = "completed", study: str = "arms"
) -> dict[str, Any]:
    vocab, init = arm.split("+")
    V = VOCAB_SIZE[vocab]
    i = seed
    bpb = VAL_BPB[arm][i] if status == "completed" else None
    adj = VAL_ADJ[arm][i] if status == "completed" else None
    n_bytes = 100_000
    n_tokens = int(n_bytes * TOKENS_PER_BYTE[vocab])

    def split(bpb: float | None, adj: float | None, shift: float) -> dict[str, Any] | None:
        if bpb is None:
            return None
        loss = (bpb + shift) * math.log(2) / TOKENS_PER_BYTE[vocab]
        return {
            "loss": loss,
            "bpb": bpb + shift,
            "bpb_oov_adjusted": adj + shift,
            # word-level arms also pay for the whitespace their tokens drop
            "bpb_lossless": adj + shift + (0.1 if vocab == "word" else 0.0),
            "tokens": n_tokens,
            "bytes": n_bytes,
            "unk_spelling_nats": (adj - bpb) * math.log(2) * n_bytes,
        }

    is_word = vocab == "word"
    rec: dict[str, Any] = {
        "arm": arm,
        "vocab": vocab,
        "init": init,
        "seed": seed,
        "study": study,
        "model": "tiny",
        "status": status,
        "diverged_at_step": 120 if status == "diverged" else None,
        "vocab_size": V,
        "params": tiny_params(V),
        "model_config": dict(TINY),
        "oov": {
            "val_token_rate": 0.02 if is_word else 0.0,
            "val_type_rate": 0.4 if is_word else 0.0,
            "val_unk_byte_share": 0.05 if is_word else 0.0,
            "test_token_rate": 0.021 if is_word else 0.0,
            "test_type_rate": 0.41 if is_word else 0.0,
            "test_unk_byte_share": 0.051 if is_word else 0.0,
            "init_coverage_types": 0.9 if init == "word2vec" else None,
            "init_coverage_tokens": 0.98 if init == "word2vec" else None,
        },
        "word_oov_curve": WORD_OOV_CURVE,
        "data": {
            "train_bytes": 800_000,
            "train_tokens": int(800_000 * TOKENS_PER_BYTE[vocab]),
            "val_bytes": n_bytes,
            "val_tokens": n_tokens,
            "test_bytes": n_bytes,
            "test_tokens": n_tokens,
            "tokens_per_byte": TOKENS_PER_BYTE[vocab],
        },
        "train": {
            "steps": 50,
            "tokens_seen": 50 * 2048,
            "bytes_seen": 50 * 8192,
            "wall_s": 10.0 + seed,
            "train_wall_s": 8.0,
            "tokens_per_s": 50 * 2048 / 8.0,
        },
        "versions": {"python": "3.11.0", "torch": "2.13.0", "embinit": "0.1.0"},
    }
    if status == "completed":
        rec["val"] = split(bpb, adj, 0.0)
        rec["test"] = split(bpb, adj, 0.05)
    else:
        rec["train"] = {"steps": 120, "tokens_seen": 0, "bytes_seen": 0}
    return rec


def metrics_rows(arm: str, seed: int, steps: tuple[int, ...] = STEPS) -> list[dict[str, Any]]:
    rows = []
    bytes_per_step = 8000 + 10 * seed
    for s in steps:
        ev = s % 20 == 0 or s == steps[-1]
        rows.append(
            {
                "step": s,
                "tokens_seen": s * 2048,
                "bytes_seen": s * bytes_per_step,
                "train_loss": None if s == 0 else 5.0 - 0.02 * s + 0.1 * seed,
                "val_loss": val_curve(arm, seed, s) * 2 if ev else None,
                "val_bpb": val_curve(arm, seed, s) if ev else None,
                "val_bpb_lossless": val_curve(arm, seed, s) + 0.5 if ev else None,
                "lr": 1e-3,
                "elapsed_s": 0.1 * s,
            }
        )
    return rows


HYDRA_CONFIG = """\
seed: {seed}
paths:
  root: /tmp/x
data:
  name: wiki_sample
  split_seed: 0
vocab:
  name: {vocab}
  size: {size}
init:
  name: {init}
  seed: {seed}
model:
  name: tiny
  n_layer: 4
  d_model: 128
train:
  max_bytes: 2000000
study:
  name: arms
  reference_arm: bpe+scratch
  description: fabricated study for tests
"""


def write_run(study_dir: Path, arm: str, seed: int, status: str | None = "completed") -> Path:
    """One run directory; status None leaves it without summary.json (an unfinished run)."""
    run = study_dir / arm / f"seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    vocab, init = arm.split("+")
    (run / ".hydra" / "config.yaml").write_text(
        HYDRA_CONFIG.format(seed=seed, vocab=vocab, init=init, size=VOCAB_SIZE[vocab])
    )
    rows = metrics_rows(arm, seed, STEPS if status == "completed" else STEPS[:3])
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if status is not None:
        (run / "summary.json").write_text(json.dumps(summary_record(arm, seed, status), indent=1))
    return run


def write_study(root: Path, name: str = "arms") -> Path:
    """3 arms x 3 seeds with known numbers; word+scratch seed 2 diverged; word+word2vec seed 3
    has no summary.json."""
    study = root / name
    for arm in VAL_BPB:
        for seed in range(3):
            write_run(
                study, arm, seed, "diverged" if (arm, seed) == ("word+scratch", 2) else "completed"
            )
    write_run(study, "word+word2vec", 3, None)
    return study


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path)


def ci(values: list[float], t: float) -> tuple[float, float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    half = t * sd / math.sqrt(len(values))
    return m, m - half, m + half


# ------------------------------------------------------------------------------ loading


def test_load_runs_one_row_per_run_dir(study: Path) -> None:
    runs = A.load_runs(study)
    assert len(runs) == 10
    assert list(runs.columns[:4]) == ["arm", "seed", "status", "run_dir"]
    assert runs["status"].value_counts().to_dict() == {"completed": 8, "diverged": 1, "missing": 1}
    row = runs[(runs["arm"] == "word+word2vec") & (runs["seed"] == 1)].iloc[0]
    assert row["val_bpb"] == pytest.approx(1.32)
    assert row["test_bpb_oov_adjusted"] == pytest.approx(1.47)
    assert row["params_total"] == tiny_params(16384)["total"]
    assert row["oov_val_token_rate"] == 0.02
    assert row["model_config_tie_embeddings"]
    assert row["run_dir"] == "word+word2vec/seed1"
    missing = runs[runs["status"] == "missing"].iloc[0]
    assert (missing["arm"], missing["seed"]) == ("word+word2vec", 3)
    assert "word_oov_curve" not in runs.columns


def test_load_runs_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(A.AnalysisError, match="does not exist"):
        A.load_runs(tmp_path / "nope")
    assert A.load_runs(tmp_path).empty


def test_load_curves_is_tidy(study: Path) -> None:
    curves = A.load_curves(study)
    assert list(curves.columns) == list(A.CURVE_COLUMNS)
    one = curves[(curves["arm"] == "bpe+scratch") & (curves["seed"] == 0)]
    assert list(one["step"]) == list(STEPS)
    assert math.isnan(one["train_loss"].iloc[0])  # eval-only row
    assert math.isnan(one[one["step"] == 10]["val_bpb"].iloc[0])  # train-only row
    assert set(curves[curves["arm"] == "word+scratch"]["status"]) == {"completed", "diverged"}


def test_load_curves_keeps_last_row_of_a_relogged_step(tmp_path: Path) -> None:
    run = write_run(tmp_path / "s", "bpe+scratch", 0)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 50, "val_bpb": 9.0, "bytes_seen": 1}) + "\n")
        fh.write('{"step": 60, "val_')  # torn last line of a killed run
    curves = A.load_curves(tmp_path / "s")
    assert list(curves["step"]) == list(STEPS)
    assert curves["val_bpb"].iloc[-1] == 9.0


def test_load_oov_curve(study: Path) -> None:
    curve = A.load_oov_curve(study)
    assert list(curve["vocab_size"]) == [1000, 4000, 16384]
    assert list(curve["token_rate"]) == [0.20, 0.08, 0.02]


# ------------------------------------------------------------------------------ arm summary


def test_arm_summary_means_cis_and_counts(study: Path) -> None:
    s = A.arm_summary(A.load_runs(study), "bpe+scratch").set_index("arm")
    assert list(s.index) == ["bpe+scratch", "word+scratch", "word+word2vec"]
    m, lo, hi = ci([1.20, 1.21, 1.22], T975_DF2)
    r = s.loc["bpe+scratch"]
    assert r["val_bpb_mean"] == pytest.approx(m, abs=1e-12)
    assert r["val_bpb_lo"] == pytest.approx(lo, abs=1e-12)
    assert r["val_bpb_hi"] == pytest.approx(hi, abs=1e-12)
    assert r["test_bpb_mean"] == pytest.approx(1.26, abs=1e-12)
    assert (r["n_runs"], r["n_seeds"], r["n_diverged"], r["n_incomplete"]) == (3, 3, 0, 0)
    assert math.isnan(r["val_bpb_diff"])
    # word+scratch: the diverged seed 2 is counted, never averaged.
    w = s.loc["word+scratch"]
    assert (w["n_runs"], w["n_seeds"], w["n_diverged"], w["n_incomplete"]) == (3, 2, 1, 0)
    assert w["seeds"] == "0,1"
    assert w["val_bpb_mean"] == pytest.approx(1.16, abs=1e-12)
    # word+word2vec: seed 3 without summary is incomplete, not averaged.
    v = s.loc["word+word2vec"]
    assert (v["n_runs"], v["n_seeds"], v["n_diverged"], v["n_incomplete"]) == (4, 3, 0, 1)
    assert v["val_bpb_mean"] == pytest.approx(1.31, abs=1e-12)


def test_arm_summary_paired_difference_vs_reference(study: Path) -> None:
    s = A.arm_summary(A.load_runs(study), "bpe+scratch").set_index("arm")
    v = s.loc["word+word2vec"]
    m, lo, hi = ci([0.10, 0.11, 0.09], T975_DF2)
    assert v["val_bpb_diff"] == pytest.approx(m, abs=1e-12)
    assert (v["val_bpb_diff_lo"], v["val_bpb_diff_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    assert v["val_bpb_diff_n"] == 3
    # t = 0.1 / (0.01/sqrt 3); df 2: p = 1 - |t| / sqrt(2 + t^2)
    t = 0.1 / (0.01 / math.sqrt(3))
    assert v["val_bpb_p"] == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)


def test_pairing_uses_common_seeds_only(study: Path) -> None:
    s = A.arm_summary(A.load_runs(study), "bpe+scratch").set_index("arm")
    w = s.loc["word+scratch"]  # seeds 0,1 vs reference seeds 0,1,2 -> pairs on 0,1
    assert w["val_bpb_diff_n"] == 2
    m, lo, hi = ci([1.15 - 1.20, 1.17 - 1.21], T975_DF1)
    assert w["val_bpb_diff"] == pytest.approx(m, abs=1e-12)
    assert (w["val_bpb_diff_lo"], w["val_bpb_diff_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    assert "common seeds only: 0,1" in w["val_bpb_diff_note"]
    # df 1: p = 1 - (2/pi) atan|t|
    t = m / (math.sqrt((-0.05 - m) ** 2 + (-0.04 - m) ** 2) / math.sqrt(2))
    assert w["val_bpb_p"] == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)), abs=1e-9)


def test_arm_summary_rejects_two_runs_for_one_seed(study: Path) -> None:
    runs = A.load_runs(study)
    dup = runs[runs["status"] == "completed"].iloc[[0]].assign(run_dir="elsewhere/seed0")
    with pytest.raises(A.AnalysisError, match="same arm and seed"):
        A.arm_summary(pd.concat([runs, dup]), "bpe+scratch")


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
    s = A.arm_summary(runs, "a", metrics=("val_bpb",)).set_index("arm")
    assert s.loc["b", "n_seeds"] == 0 and s.loc["b", "n_diverged"] == 1
    assert math.isnan(s.loc["b", "val_bpb_mean"]) and s.loc["b", "val_bpb_diff_n"] == 0
    text = " ".join(A.verdicts(s.reset_index(), "a"))
    assert "b: no completed runs" in text and "b: 1 of 1 runs diverged" in text


# ------------------------------------------------------------------------------ verdicts


def test_verdicts(study: Path) -> None:
    s = A.arm_summary(A.load_runs(study), "bpe+scratch")
    v = A.verdicts(s, "bpe+scratch")
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
    runs = A.load_runs(study)
    runs = runs[runs["arm"] != "bpe+scratch"]
    v = A.verdicts(A.arm_summary(runs, "bpe+scratch"), "bpe+scratch")
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
    v = A.verdicts(A.arm_summary(runs, "r", metrics=("val_bpb",)), "r", compare=("val_bpb",))
    assert any(x.startswith("a vs r: +0.200 bpb on the one common seed: no CI") for x in v)
    assert any(x.startswith("b vs r: +0.500 bpb on every one of n=2 seeds") for x in v)


# ------------------------------------------------------------------------------ curves


def test_curve_band_aligns_seeds_on_step(study: Path) -> None:
    band = A.curve_band(A.load_curves(study), x="bytes_seen", y="val_bpb")
    b = band[band["arm"] == "bpe+scratch"].set_index("step")
    assert list(b.index) == [0, 20, 40, 50]
    m, lo, hi = ci([val_curve("bpe+scratch", k, 20) for k in range(3)], T975_DF2)
    assert (b.loc[20, "mean"], b.loc[20, "lo"], b.loc[20, "hi"]) == pytest.approx(
        (m, lo, hi), abs=1e-12
    )
    assert b.loc[20, "bytes_seen"] == pytest.approx(20 * 8010)  # mean of 8000, 8010, 8020 per step
    assert (b["n"] == 3).all()
    # word+scratch: only the two completed seeds; the diverged run is not in the band.
    w = band[band["arm"] == "word+scratch"]
    assert (w["n"] == 2).all()


def test_curve_band_by_step_and_single_seed() -> None:
    curves = pd.DataFrame(
        {
            "arm": ["a"] * 3,
            "seed": [0, 0, 0],
            "status": ["completed"] * 3,
            "step": [0, 10, 20],
            "train_loss": [np.nan, 2.0, 1.5],
        }
    )
    band = A.curve_band(curves, x="step", y="train_loss")
    assert list(band.columns) == ["arm", "step", "n", "mean", "lo", "hi"]
    assert list(band["step"]) == [10, 20] and band["lo"].isna().all()


def test_curve_band_drops_steps_not_logged_by_every_seed() -> None:
    curves = pd.DataFrame(
        {
            "arm": ["a"] * 5,
            "seed": [0, 0, 1, 1, 1],
            "status": ["completed"] * 5,
            "step": [0, 10, 0, 10, 20],
            "val_bpb": [2.0, 1.0, 2.2, 1.2, 1.1],
        }
    )
    band = A.curve_band(curves, x="step", y="val_bpb")
    assert list(band["step"]) == [0, 10]
    assert band["mean"].tolist() == pytest.approx([2.1, 1.1])


# ------------------------------------------------------------------------------ parameters


def test_param_table_parts_sum_to_total(study: Path) -> None:
    p = A.param_table(A.load_runs(study)).set_index("arm")
    assert list(p.index) == ["bpe+scratch", "word+scratch", "word+word2vec"]
    exp = tiny_params(16384)
    r = p.loc["word+word2vec"]
    assert (r["embedding"], r["output_head"], r["position"], r["body"], r["total"]) == (
        exp["embedding"],
        0,
        exp["position"],
        exp["body"],
        exp["total"],
    )
    assert r["vocab_share"] == pytest.approx(exp["embedding"] / exp["total"])
    assert (p[["embedding", "output_head", "position", "body"]].sum(axis=1) == p["total"]).all()


def gpt2_small_total(V: int, tied: bool) -> int:
    d, L, T = 768, 12, 1024
    body = L * (12 * d * d + 13 * d) + 2 * d  # blocks (with biases) + final LayerNorm
    return V * d * (1 if tied else 2) + T * d + body


def test_analytic_param_table_matches_the_formula() -> None:
    t = A.analytic_param_table({"bpe+scratch": 50257, "word+word2vec": 16384})
    assert list(t["label"].unique()) == [
        "bpe+scratch",
        "word+word2vec",
        "word-level 50,000",
        "word-level 100,000",
        "word-level 200,000",
    ]
    assert len(t) == 10 and set(t["model"]) == {"gpt2_small"}
    row = t[(t["vocab_size"] == 50257) & t["tied"]].iloc[0]
    assert row["total"] == 124_439_808 == gpt2_small_total(50257, True)
    for _, r in t.iterrows():
        assert r["total"] == gpt2_small_total(r["vocab_size"], r["tied"])
        assert r["embedding"] == r["vocab_size"] * 768
        assert r["stack_output_head"] == (0 if r["tied"] else r["vocab_size"] * 768)
        assert (
            r["embedding"] + r["stack_output_head"] + r["position"] + r["stack_body"] == r["total"]
        )


def test_model_shape() -> None:
    assert A.model_shape("gpt2_small") == ModelConfig(
        name="gpt2_small",
        n_layer=12,
        n_head=12,
        d_model=768,
        block_size=1024,
        dropout=0.0,
        bias=True,
        tie_embeddings=True,
    )
    with pytest.raises(A.AnalysisError, match="unknown model shape"):
        A.model_shape("nope")


# ------------------------------------------------------------------------------ other tables


def test_oov_and_throughput_tables(study: Path) -> None:
    runs = A.load_runs(study)
    oov = A.oov_table(runs, "bpe+scratch").set_index("arm")
    assert list(oov.index) == ["bpe+scratch", "word+scratch", "word+word2vec"]
    assert oov.loc["bpe+scratch", "val_token_rate"] == 0.0
    assert oov.loc["word+word2vec", "val_unk_byte_share"] == pytest.approx(0.05)
    assert oov.loc["word+word2vec", "init_coverage_types"] == pytest.approx(0.9)
    assert math.isnan(oov.loc["word+scratch", "init_coverage_types"])
    tp = A.throughput_table(runs, "bpe+scratch").set_index("arm")
    assert tp.loc["word+scratch", "tokens_per_byte"] == pytest.approx(0.2)
    assert tp.loc["bpe+scratch", "wall_s"] == pytest.approx(11.0)  # mean of 10, 11, 12
    assert tp.loc["bpe+scratch", "bytes_per_s"] == pytest.approx(50 * 8192 / 8.0)
    assert tp.loc["word+scratch", "n_seeds"] == 2


def test_incomplete_runs_lists_diverged_with_step(study: Path) -> None:
    inc = A.incomplete_runs(A.load_runs(study))
    assert inc[["arm", "seed", "status"]].values.tolist() == [
        ["word+scratch", 2, "diverged"],
        ["word+word2vec", 3, "missing"],
    ]
    assert inc["diverged_at_step"].iloc[0] == 120 and pd.isna(inc["diverged_at_step"].iloc[1])


def test_config_summary_splits_shared_per_arm_and_seed(study: Path) -> None:
    runs = A.completed(A.load_runs(study))
    shared, per_arm, by_seed = A.config_summary(A.load_configs(study), runs)
    assert "seed" not in shared and "seed" not in shared.get("init", {})
    assert shared["study"]["reference_arm"] == "bpe+scratch"
    assert shared["data"]["split_seed"] == 0
    assert set(per_arm["key"]) == {"vocab.name", "vocab.size", "init.name"}
    assert per_arm.set_index("key").loc["vocab.size", "word+word2vec"] == "16384"
    assert set(by_seed) == {"seed", "init.seed"}


def test_config_summary_on_hydra_saved_configs(tmp_path: Path) -> None:
    """The real composed config, saved the way Hydra saves .hydra/config.yaml (unresolved)."""
    from omegaconf import OmegaConf

    from tests.conftest import compose_config

    rows = []
    for arm, override in (
        ("bpe+scratch", "arm=bpe_scratch"),
        ("word+word2vec", "arm=word_word2vec"),
    ):
        cfg = compose_config([override, "study=arms", f"paths.root={tmp_path}"])
        for seed in (0, 1):
            cfg.seed = seed
            run = tmp_path / "arms" / arm / f"seed{seed}"
            (run / ".hydra").mkdir(parents=True)
            OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
            rows.append(
                {"arm": arm, "seed": seed, "status": "completed", "run_dir": f"{arm}/seed{seed}"}
            )
    configs = A.load_configs(tmp_path / "arms")
    assert configs["word+word2vec/seed1"]["init"]["seed"] == 1  # ${seed} resolved
    shared, per_arm, by_seed = A.config_summary(configs, pd.DataFrame(rows))
    assert shared["model"]["name"] == "tiny" and shared["study"]["reference_arm"] == "bpe+scratch"
    assert {"vocab.name", "init.name"} <= set(per_arm["key"])
    assert set(by_seed) == {"seed", "init.seed"}
