"""The scale-ladder fit recovers a planted trend from fabricated run records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from embinit.study import ladder

PARAMS = {"ladder_s": 520_128, "ladder_m": 2_114_528, "ladder_l": 8_030_016}
FRACTIONS = {0.1: 258_000, 0.3: 774_000}  # training bytes seen
BYTES_PER_TOKEN = {"bpe": 4.0, "word": 3.5}
# Planted: gain = B0 + BN ln N + BD ln D per vocabulary (Word2Vec helps less as N, D grow).
PLANT = {"bpe": (-0.60, 0.020, 0.015), "word": (-0.30, 0.010, 0.005)}
HELD_BYTES = 478_000


def planted(vocab: str, params: float, nbytes: float) -> float:
    b0, bn, bd = PLANT[vocab]
    return b0 + bn * math.log(params) + bd * math.log(nbytes)


def _summary(vocab: str, init: str, model: str, frac: float, seed: int, bpb: float) -> dict:
    nbytes = FRACTIONS[frac]
    # Held-out nats split over val and test so the pooled bpb is exactly `bpb`.
    nats = bpb * math.log(2) * HELD_BYTES
    return {
        "status": "completed", "arm": f"{vocab}+{init}", "vocab": vocab, "init": init,
        "seed": seed, "study": model, "model": model,
        "params": {"non_embedding": PARAMS[model], "total": PARAMS[model] + 10**6},
        "data": {"train_fraction": frac},
        "train": {"steps": 10, "total_steps": 10, "bytes_seen": nbytes,
                  "tokens_seen": int(nbytes / BYTES_PER_TOKEN[vocab])},
        "val": {"nats": nats * 0.4, "bytes": int(HELD_BYTES * 0.4), "bpb": bpb},
        "test": {"nats": nats * 0.6, "bytes": HELD_BYTES - int(HELD_BYTES * 0.4), "bpb": bpb},
    }


def fabricate(root: Path, seeds: int = 3, noise: float = 0.0, rng_seed: int = 0) -> None:
    rng = np.random.default_rng(rng_seed)
    for model, n in PARAMS.items():
        for frac, nbytes in FRACTIONS.items():
            for vocab in PLANT:
                for seed in range(seeds):
                    scratch = 2.6 - 0.05 * math.log(n / 5e5) + 0.01 * seed
                    gain = planted(vocab, n, nbytes) + noise * rng.standard_normal()
                    for init, bpb in (("scratch", scratch), ("word2vec", scratch + gain)):
                        d = root / model / f"{vocab}+{init}+data{frac:g}" / f"seed{seed}"
                        d.mkdir(parents=True, exist_ok=True)
                        (d / "summary.json").write_text(
                            json.dumps(_summary(vocab, init, model, frac, seed, bpb)))
    # A run that has not finished is ignored.
    (root / "ladder_s" / "bpe+word2vec+data0.1" / "seed9").mkdir(parents=True)


def test_noise_free_trend_is_recovered_exactly(tmp_path: Path) -> None:
    fabricate(tmp_path)
    runs = ladder.load_runs(tmp_path)
    assert len(runs) == 3 * 2 * 2 * 2 * 3  # models x fractions x vocabs x inits x seeds
    gains = ladder.seed_gains(runs)
    assert len(gains) == 36
    cells = ladder.cell_table(gains)
    assert len(cells) == 12
    row = cells[(cells.vocab == "word") & (cells.model == "ladder_m") & (cells.fraction == 0.3)]
    assert row["gain"].item() == pytest.approx(planted("word", 2_114_528, 774_000), abs=1e-9)
    assert row["seeds"].item() == 3 and row["bytes"].item() == 774_000
    n_target = ladder.target_params()
    assert n_target == 85_842_432  # gpt2_small: blocks + final norm + 1024 positions
    for vocab, (b0, bn, bd) in PLANT.items():
        fit = ladder.fit_gain(gains, vocab, n_target, 300e6)
        np.testing.assert_allclose(fit.coef, [b0, bn, bd], atol=1e-8)
        assert fit.bytes_per_token == pytest.approx(BYTES_PER_TOKEN[vocab], rel=1e-4)
        target_bytes = 300e6 * fit.bytes_per_token
        assert fit.predicted_gain == pytest.approx(planted(vocab, n_target, target_bytes),
                                                   abs=1e-7)
        lo, hi = fit.prediction_interval
        assert hi - lo < 1e-6  # no residual: no uncertainty
        assert fit.extrapolation_factor[0] == pytest.approx(n_target / 8_030_016)
        # Taken apart from the largest fitted point: the two terms and the size-only reach.
        most = gains[gains.vocab == vocab]["bytes"].max()
        assert fit.params_term == pytest.approx(bn * math.log(n_target / 8_030_016), abs=1e-9)
        assert fit.data_term == pytest.approx(bd * math.log(target_bytes / most), abs=1e-9)
        assert fit.at_max_data == pytest.approx(planted(vocab, n_target, most), abs=1e-7)
        assert fit.predicted_gain == pytest.approx(
            planted(vocab, 8_030_016, most) + fit.params_term + fit.data_term, abs=1e-7)


def test_noisy_trend_intervals_cover_the_planted_values(tmp_path: Path) -> None:
    noise = 0.01
    fabricate(tmp_path, seeds=4, noise=noise, rng_seed=3)
    gains = ladder.seed_gains(ladder.load_runs(tmp_path))
    n_target = ladder.target_params()
    for vocab, (b0, bn, bd) in PLANT.items():
        fit = ladder.fit_gain(gains, vocab, n_target, 300e6)
        assert fit.n == 3 * 2 * 4 and len(fit.se) == 3
        # The OLS standard error of b_N equals sigma / sqrt(sum (ln N - mean)^2) here, since
        # the design is balanced (ln N and ln D orthogonal after centring).
        ln_n = np.log(gains[gains.vocab == vocab]["params"].to_numpy(float))
        assert fit.se[1] == pytest.approx(fit.resid_sd / math.sqrt(((ln_n - ln_n.mean()) ** 2).sum()),
                                          rel=1e-9)
        assert 0.5 * noise < fit.resid_sd < 1.6 * noise
        for k, true in enumerate((b0, bn, bd)):
            assert fit.ci_low[k] <= true <= fit.ci_high[k], (vocab, k)
        # The prediction interval is wider than the fitted mean's and contains the truth.
        truth = planted(vocab, n_target, 300e6 * fit.bytes_per_token)
        assert fit.prediction_interval[0] < fit.mean_ci[0] < fit.mean_ci[1] < \
            fit.prediction_interval[1]
        assert fit.prediction_interval[0] <= truth <= fit.prediction_interval[1]


def test_cell_interval_is_the_t_interval_across_seeds(tmp_path: Path) -> None:
    fabricate(tmp_path, seeds=4, noise=0.02, rng_seed=5)
    gains = ladder.seed_gains(ladder.load_runs(tmp_path))
    cells = ladder.cell_table(gains)
    g = gains[(gains.vocab == "bpe") & (gains.model == "ladder_l") & (gains.fraction == 0.1)]
    x = g["gain"].to_numpy()
    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    row = cells[(cells.vocab == "bpe") & (cells.model == "ladder_l") & (cells.fraction == 0.1)]
    assert row["ci_low"].item() == pytest.approx(x.mean() - half, abs=1e-12)
    assert row["ci_high"].item() == pytest.approx(x.mean() + half, abs=1e-12)


def test_cli_writes_report_figure_and_fit(tmp_path: Path) -> None:
    fabricate(tmp_path / "exp", noise=0.01)
    assert ladder.main([str(tmp_path / "exp"), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "EXTRAPOLATION" in report and "85,842,432" in report
    assert report.count("| ladder_") == 12
    assert (tmp_path / "out" / "ladder.png").read_bytes()[:4] == b"\x89PNG"
    fit = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert set(fit["fits"]) == {"bpe", "word"} and fit["runs"] == 72
    assert fit["fits"]["word"]["coef"][1] == pytest.approx(PLANT["word"][1], abs=0.01)


def test_a_prediction_beyond_every_measured_gain_is_called_not_credible(tmp_path: Path) -> None:
    # Planted: the gain falls 0.15 per e-fold of data (as BPE's did here); carried 1,000x
    # past the data fitted it exceeds every measured gain, and the report says so.
    fabricate(tmp_path / "exp", noise=0.0)
    gains = ladder.seed_gains(ladder.load_runs(tmp_path / "exp"))
    steep = gains.assign(gain=lambda d: -0.1 - 0.15 * np.log(d["bytes"] / d["bytes"].min()))
    fit = ladder.fit_gain(steep, "bpe", ladder.target_params(), 300e6)
    assert fit.beyond_observed and fit.predicted_gain < -1.0
    assert abs(fit.at_max_data) <= fit.max_abs_observed + 1e-9  # size alone stays in range
    report = ladder.report_md(ladder.cell_table(steep), {"bpe": fit}, len(steep))
    assert "**Not credible:**" in report and "Model size alone" in report
    mild = ladder.fit_gain(gains, "bpe", ladder.target_params(), 300e6)
    assert "Not credible" not in ladder.report_md(ladder.cell_table(gains), {"bpe": mild}, 1)


def test_too_few_sizes_is_an_error_naming_the_vocabulary(tmp_path: Path) -> None:
    fabricate(tmp_path)
    gains = ladder.seed_gains(ladder.load_runs(tmp_path))
    with pytest.raises(ValueError, match="word: need >= 2 model sizes"):
        ladder.fit_gain(gains[gains.model == "ladder_s"], "word", 10**8, 3e8)


def test_runs_without_a_pair_are_a_clear_error(tmp_path: Path) -> None:
    d = tmp_path / "ladder_s" / "bpe+scratch" / "seed0"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(_summary("bpe", "scratch", "ladder_s", 0.1, 0, 2.5)))
    with pytest.raises(SystemExit, match="no word2vec/scratch pair .* 1 completed runs"):
        ladder.analyze(tmp_path, tmp_path / "out")


def _with_documents(gains: pd.DataFrame, effect: np.ndarray, slope_on_ln_n: bool) -> pd.DataFrame:
    """Per-document losses behind each pair's gain: document d's gain is the pair's gain
    plus effect[d] (times ln N when ``slope_on_ln_n``), every document 1,000 bytes."""
    n_docs = len(effect)
    nbytes = np.full(n_docs, 1000.0)
    out = gains.copy()
    w2v, scratch = [], []
    for r in gains.itertuples():
        doc_gain = r.gain + effect * (math.log(r.params) if slope_on_ln_n else 1.0)
        base = np.full(n_docs, 3.0 * math.log(2) * 1000.0)
        scratch.append(base)
        w2v.append(base + doc_gain * math.log(2) * 1000.0)
    out["doc_ids"] = [tuple(f"d{i}" for i in range(n_docs))] * len(out)
    out["doc_nats_w2v"], out["doc_nats_scratch"] = w2v, scratch
    out["doc_bytes"] = [nbytes] * len(out)
    # The pooled gain, as load_runs reads it from the split totals.
    out["gain"] = [float((w - c).sum() / (math.log(2) * nbytes.sum()))
                   for w, c in zip(w2v, scratch, strict=True)]
    return out


def test_document_component_moves_the_coefficient_it_touches(tmp_path: Path) -> None:
    fabricate(tmp_path, noise=0.0)  # no seed noise: the OLS residual is zero
    base = ladder.seed_gains(ladder.load_runs(tmp_path))
    effect = np.random.default_rng(1).normal(0.0, 0.05, size=16)
    # Resampling documents shifts every pair's gain by the resampled mean effect.
    boot_sd = effect.std(ddof=0) / math.sqrt(len(effect))
    shift = _with_documents(base, effect, slope_on_ln_n=False)
    fit = ladder.fit_gain(shift, "word", ladder.target_params(), 300e6)
    assert fit.n_docs == 16
    # A shift common to every pair moves the intercept only.
    assert fit.se_doc[0] == pytest.approx(boot_sd, rel=0.05)
    assert fit.se_doc[1] < 1e-9 and fit.se_doc[2] < 1e-9
    # An effect proportional to ln N moves b_N by the same amount, and the prediction.
    slope = ladder.fit_gain(_with_documents(base, effect, slope_on_ln_n=True), "word",
                            ladder.target_params(), 300e6)
    assert slope.se_doc[1] == pytest.approx(boot_sd, rel=0.05) and slope.se_doc[2] < 1e-9
    assert slope.coef[1] == pytest.approx(PLANT["word"][1] + effect.mean(), abs=1e-9)
    lo, hi = slope.ci_low[1], slope.ci_high[1]
    assert lo < slope.coef[1] < hi and hi - lo > 2 * 1.96 * boot_sd  # t with finite df
    # Cells take the same document + seed interval the study reports use.
    cells = ladder.cell_table(shift)
    assert set(cells["interval"]) == {"documents + seeds"}
    g = shift[(shift.vocab == "word") & (shift.model == "ladder_m") & (shift.fraction == 0.3)]
    from embinit.study.stats import paired_interval
    iv = paired_interval(np.vstack(list(g["doc_nats_w2v"])), np.vstack(list(g["doc_nats_scratch"])),
                         np.asarray(g["doc_bytes"].iloc[0]))
    row = cells[(cells.vocab == "word") & (cells.model == "ladder_m") & (cells.fraction == 0.3)]
    assert (row["ci_low"].item(), row["ci_high"].item()) == pytest.approx((iv.lo, iv.hi))
    assert row["gain"].item() == pytest.approx(iv.estimate, abs=1e-12)


def test_heldout_documents_are_read_only_when_they_add_up() -> None:
    s = {"val": {"nats": 3.0, "bytes": 30, "doc_ids": ["a", "b"], "doc_nats": [1.0, 2.0],
                 "doc_bytes": [10, 20]},
         "test": {"nats": 4.0, "bytes": 40, "doc_ids": ["c"], "doc_nats": [4.0],
                  "doc_bytes": [40]}}
    ids, nats, nbytes = ladder._heldout_docs(s)
    assert ids == ("val:a", "val:b", "test:c")
    np.testing.assert_array_equal(nats, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(nbytes, [10, 20, 40])
    s["test"]["nats"] = 5.0  # a charge outside doc_nats: the pooled total is what counts
    assert ladder._heldout_docs(s) is None
    del s["val"]["doc_nats"]
    assert ladder._heldout_docs(s) is None


def test_document_resamples_weight_documents_by_their_bytes(tmp_path: Path) -> None:
    # Unequal documents: a resample's gain is pooled nats over pooled bytes, not a mean of
    # per-document gains; the fit is redone on each resample.
    fabricate(tmp_path, noise=0.003, rng_seed=2)
    g = ladder.seed_gains(ladder.load_runs(tmp_path))
    g = g[g.vocab == "bpe"].reset_index(drop=True)
    rng = np.random.default_rng(7)
    n_docs = 5
    nbytes = rng.integers(100, 5000, size=n_docs).astype(float)
    w2v = [rng.normal(2.0, 0.3, n_docs) * nbytes for _ in range(len(g))]
    scratch = [rng.normal(2.1, 0.3, n_docs) * nbytes for _ in range(len(g))]
    g["doc_ids"] = [tuple("abcde")] * len(g)
    g["doc_nats_w2v"], g["doc_nats_scratch"] = w2v, scratch
    g["doc_bytes"] = [nbytes] * len(g)
    X = np.column_stack([np.ones(len(g)), np.log(g["params"]), np.log(g["bytes"])])
    point = np.array([[1.0, 18.0, 20.0]])
    v_coef, v_pred, d, d_eff = ladder._doc_bootstrap_var(g, X, point, n_boot=300, seed=11)
    draws = np.random.default_rng(11).integers(0, n_docs, size=(300, n_docs))
    coefs = []
    for row in draws:
        gains = [(w[row].sum() - c[row].sum()) / (math.log(2) * nbytes[row].sum())
                 for w, c in zip(w2v, scratch, strict=True)]
        coefs.append(np.linalg.lstsq(X, np.asarray(gains), rcond=None)[0])
    coefs = np.asarray(coefs)
    assert d == n_docs
    assert d_eff == pytest.approx(nbytes.sum() ** 2 / (nbytes**2).sum())  # Kish, for the df
    np.testing.assert_allclose(v_coef, coefs.var(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(v_pred, (coefs @ point.T).var(axis=0, ddof=1), rtol=1e-9)
    # A pair scored on other documents (or other bytes) drops the document component.
    g["doc_bytes"] = [nbytes + 1] + [nbytes] * (len(g) - 1)
    assert ladder._doc_bootstrap_var(g, X, point) is None


def test_a_one_seed_cell_has_no_interval(tmp_path: Path) -> None:
    fabricate(tmp_path, seeds=1)
    cells = ladder.cell_table(ladder.seed_gains(ladder.load_runs(tmp_path)))
    assert cells["ci_low"].isna().all() and set(cells["interval"]) == {"one seed"}


def test_cli_refuses_a_missing_folder_and_writes_nothing(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ladder.main([str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2 and "not a directory of run records" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
