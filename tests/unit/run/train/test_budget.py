"""train.budget decides the step count; the Trainer's context length and bytes accounting."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from embinit.config import ModelConfig, TrainConfig
from embinit.errors import ConfigError
from embinit.run.model import GPT
from embinit.run.train.loop import Trainer, plan_steps
from embinit.run.train.sampling import ByteAlignedSampler, EpochSampler, global_batch_starts


def _cfg(**kw: object) -> TrainConfig:
    # Every max_* is set: only the one named by `budget` may count.
    base: dict[str, object] = dict(max_steps=7, max_bytes=10_000, max_epochs=2.5, max_flops=1e9)
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_each_budget_reads_only_its_own_key() -> None:
    geometry = dict(train_bytes=10_000, n_windows=100, windows_per_step=8, flops_per_token=1000)
    assert plan_steps(_cfg(budget="steps"), 256, 4.0, **geometry) == 7
    # 10000 bytes / (256 tokens x 4 bytes) = 9.77 -> 10
    assert plan_steps(_cfg(budget="bytes"), 256, 4.0, **geometry) == 10
    # 2.5 epochs x 100 windows / 8 windows per step = 31.25 -> 32
    assert plan_steps(_cfg(budget="epochs"), 256, 4.0, **geometry) == 32
    # random sampling: 2.5 x 10000 bytes / 1024 bytes per step = 24.4 -> 25
    assert plan_steps(_cfg(budget="epochs", sampling="random"), 256, 4.0, **geometry) == 25
    # 1e9 FLOPs / (1000 FLOPs per token x 256 tokens) = 3906.25 -> 3907
    assert plan_steps(_cfg(budget="flops"), 256, 4.0, **geometry) == 3907


def test_budgets_of_whole_steps_do_not_round_up() -> None:
    # In floats 0.1 x 30 / 3 = 1.0000000000000002, which would ceil to 2 steps.
    cfg = _cfg(budget="epochs", max_epochs=0.1)
    assert plan_steps(cfg, 12, 1.0, n_windows=30, windows_per_step=3) == 1
    # 3 bytes per 7 tokens: 70 tokens per step read exactly 30 bytes.
    bytes_cfg = _cfg(budget="bytes", max_bytes=300)
    assert plan_steps(bytes_cfg, 70, Fraction(3, 7)) == 10
    assert plan_steps(_cfg(budget="epochs", sampling="random", max_epochs=0.3), 70, Fraction(3, 7),
                      train_bytes=1000) == 10
    assert plan_steps(_cfg(budget="flops", max_flops=3e5), 100, 1.0, flops_per_token=300) == 10


def test_flops_budget_needs_flops_per_token() -> None:
    with pytest.raises(ConfigError, match="flops_per_token"):
        plan_steps(_cfg(budget="flops"), 256, 4.0)


def _model(block_size: int = 8) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=block_size), 50)


def _data(n: int = 1 + 30 * 4) -> tuple[np.ndarray, np.ndarray]:
    ids = np.random.default_rng(0).integers(0, 50, size=n).astype(np.uint16)
    nbytes = np.random.default_rng(1).integers(1, 6, size=n).astype(np.uint32)
    nbytes[0] = 0
    return ids, nbytes


def _trainer(cfg: TrainConfig, **kw: object) -> Trainer:
    ids, nbytes = _data()
    return Trainer(cfg, _model(), ids, nbytes, ids, nbytes, seed=0,  # type: ignore[arg-type]
                   **kw)


def _train_cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(device="cpu", dtype="float32", batch_size=2, grad_accum=3)
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_trainer_plans_from_its_context_and_geometry() -> None:
    t = _trainer(_train_cfg(budget="epochs", max_epochs=1.0), block=4)
    assert isinstance(t.sampler, EpochSampler)
    assert (t.block, t.n_windows, t.windows_per_step, t.tokens_per_step) == (4, 30, 6, 24)
    assert t.total_steps == 5 and t.epochs_per_step == pytest.approx(0.2)
    flops = _train_cfg(budget="flops", max_flops=24_000.0)
    assert _trainer(flops, block=4, flops_per_token=100).total_steps == 10
    with pytest.raises(ConfigError, match="flops_per_token"):
        _trainer(flops, block=4)
    rnd = _trainer(_train_cfg(sampling="random", budget="epochs", max_epochs=2.0))
    assert isinstance(rnd.sampler, ByteAlignedSampler)
    assert rnd.block == 8  # the model's block_size by default
    # 2 epochs of the train bytes at (120 targets' bytes / 120) x 48 tokens per step: 240 / 48
    assert rnd.total_steps == 5 and rnd.epochs_per_step == pytest.approx(0.4)


def test_context_longer_than_the_position_table_is_refused() -> None:
    cfg = TrainConfig(device="cpu", batch_size=1, budget="steps", max_steps=1)
    with pytest.raises(ConfigError, match="model.block_size=8"):
        _trainer(cfg, block=9)


@pytest.mark.parametrize("sampling", ["epochs", "random"])
def test_bytes_seen_is_the_sum_of_the_target_bytes_read(sampling: str) -> None:
    # 30 windows of 4 at 6 per step: 5 steps are one epoch.
    cfg = _train_cfg(sampling=sampling, budget="steps", max_steps=5, eval_interval=100,
                     eval_windows=1)
    t = _trainer(cfg, block=4)
    ids, nbytes = _data()
    fed: list[np.ndarray] = []
    batches = t._micro_batches

    def recording(step: int):  # noqa: ANN202
        for x, y in batches(step):
            fed.append(torch.cat([x, y[:, -1:]], dim=1).numpy())
            yield x, y

    t._micro_batches = recording  # type: ignore[method-assign]
    state = t.fit(lambda row: None, lambda payload: None)
    starts = np.concatenate([global_batch_starts(t.sampler, 0, k, 3, 1, 2).reshape(-1)
                             for k in range(5)])
    # The windows fed to the model are those of the global batches, in order...
    np.testing.assert_array_equal(np.concatenate(fed), ids[starts[:, None] + np.arange(5)])
    # ... and bytes_seen is the sum of their target tokens' bytes.
    assert state.bytes_seen == sum(int(nbytes[s + 1 : s + 5].sum()) for s in starts)
    if sampling == "epochs":  # one epoch reads every target 1..120 once
        assert state.bytes_seen == int(nbytes[1:121].sum())
    assert state.tokens_seen == 5 * 24
