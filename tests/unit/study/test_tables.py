"""study.tables: the tables the report shows, from fabricated records with known numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embinit.study import load as L
from embinit.study import tables as T
from tests.unit.study.fabricate import (
    SPELLED,
    T975_DF1,
    T975_DF2,
    ci,
    tiny_params,
    val_curve,
    write_new_study,
)

# ------------------------------------------------------------------------------ arm summary


def test_arm_summary_means_cis_and_counts(study: Path) -> None:
    s = T.arm_summary(L.load_runs(study), "bpe+scratch").set_index("arm")
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
    s = T.arm_summary(L.load_runs(study), "bpe+scratch").set_index("arm")
    v = s.loc["word+word2vec"]
    m, lo, hi = ci([0.10, 0.11, 0.09], T975_DF2)
    assert v["val_bpb_diff"] == pytest.approx(m, abs=1e-12)
    assert (v["val_bpb_diff_lo"], v["val_bpb_diff_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    assert v["val_bpb_diff_n"] == 3
    # t = 0.1 / (0.01/sqrt 3); df 2: p = 1 - |t| / sqrt(2 + t^2)
    t = 0.1 / (0.01 / math.sqrt(3))
    assert v["val_bpb_p"] == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)


def test_pairing_uses_common_seeds_only(study: Path) -> None:
    s = T.arm_summary(L.load_runs(study), "bpe+scratch").set_index("arm")
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
    runs = L.load_runs(study)
    dup = runs[runs["status"] == "completed"].iloc[[0]].assign(run_dir="elsewhere/seed0")
    with pytest.raises(L.AnalysisError, match="same arm and seed"):
        T.arm_summary(pd.concat([runs, dup]), "bpe+scratch")



# ------------------------------------------------------------------------------ curves


def test_curve_band_aligns_seeds_on_step(study: Path) -> None:
    band = T.curve_band(L.load_curves(study), x="bytes_seen", y="val_bpb")
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
    band = T.curve_band(curves, x="step", y="train_loss")
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
    band = T.curve_band(curves, x="step", y="val_bpb")
    assert list(band["step"]) == [0, 10]
    assert band["mean"].tolist() == pytest.approx([2.1, 1.1])


# ------------------------------------------------------------------------------ parameters


def test_param_table_parts_sum_to_total(study: Path) -> None:
    p = T.param_table(L.load_runs(study)).set_index("arm")
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
    t = T.analytic_param_table({"bpe+scratch": 50257, "word+word2vec": 16384})
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


# ------------------------------------------------------------------------------ other tables


def test_oov_and_throughput_tables(study: Path) -> None:
    runs = L.load_runs(study)
    oov = T.oov_table(runs, "bpe+scratch").set_index("arm")
    assert list(oov.index) == ["bpe+scratch", "word+scratch", "word+word2vec"]
    assert oov.loc["bpe+scratch", "val_token_rate"] == 0.0
    assert oov.loc["word+word2vec", "val_unk_byte_share"] == pytest.approx(0.05)
    assert oov.loc["word+word2vec", "init_coverage_types"] == pytest.approx(0.9)
    assert math.isnan(oov.loc["word+scratch", "init_coverage_types"])
    spelled = ["val_spelled_word_rate", "val_spelled_byte_share", "test_spelled_word_rate",
               "test_spelled_byte_share"]
    assert oov[spelled].isna().all().all()  # records older than the spelled shares
    tp = T.throughput_table(runs, "bpe+scratch").set_index("arm")
    assert tp.loc["word+scratch", "tokens_per_byte"] == pytest.approx(0.2)
    assert tp.loc["bpe+scratch", "wall_s"] == pytest.approx(11.0)  # mean of 10, 11, 12
    assert tp.loc["bpe+scratch", "bytes_per_s"] == pytest.approx(50 * 8192 / 8.0)
    assert tp.loc["word+scratch", "n_seeds"] == 2


def test_incomplete_runs_lists_diverged_with_step(study: Path) -> None:
    inc = T.incomplete_runs(L.load_runs(study))
    assert inc[["arm", "seed", "status"]].values.tolist() == [
        ["word+scratch", 2, "diverged"],
        ["word+word2vec", 3, "missing"],
    ]
    assert inc["diverged_at_step"].iloc[0] == 120 and pd.isna(inc["diverged_at_step"].iloc[1])


def test_config_summary_splits_shared_per_arm_and_seed(study: Path) -> None:
    runs = L.completed(L.load_runs(study))
    shared, per_arm, by_seed = T.config_summary(L.load_configs(study), runs)
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
    configs = L.load_configs(tmp_path / "arms")
    assert configs["word+word2vec/seed1"]["init"]["seed"] == 1  # ${seed} resolved
    shared, per_arm, by_seed = T.config_summary(configs, pd.DataFrame(rows))
    assert shared["model"]["name"] == "tiny" and shared["study"]["reference_arm"] == "bpe+scratch"
    assert {"vocab.name", "init.name"} <= set(per_arm["key"])
    assert set(by_seed) == {"seed", "init.seed"}


def test_oov_table_spelled_shares(tmp_path: Path) -> None:
    oov = T.oov_table(L.load_runs(write_new_study(tmp_path)), "bpe+scratch").set_index("arm")
    cols = list(SPELLED)
    assert oov.loc["word+word2vec", cols].to_dict() == pytest.approx(SPELLED)
    for arm in ("bpe+scratch", "bpe+word2vec", "word_unk+scratch"):
        assert (oov.loc[arm, cols] == 0.0).all(), arm
