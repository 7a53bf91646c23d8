"""The trainer's pure pieces: schedule, budget, byte-aligned sampling, exact evaluation."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from embinit.config import ModelConfig, TrainConfig
from embinit.errors import DataError
from embinit.run.model import GPT
from embinit.run.train.evaluate import eval_windows, evaluate, spaced_subset
from embinit.run.train.loop import Trainer, lr_at, plan_steps
from embinit.run.train.sampling import (
    ByteAlignedSampler,
    gather_windows,
    global_batch_starts,
    window_target_bytes,
)


def test_lr_schedule_warmup_then_cosine() -> None:
    assert lr_at(0, 100, 10, 1.0, 0.1) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert lr_at(10, 100, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0, 0.1) == pytest.approx(0.55)  # half way: mean of lr and min
    assert lr_at(100, 100, 10, 1.0, 0.1) == pytest.approx(0.1)


def test_plan_steps_from_bytes_budget() -> None:
    # train.budget names the budget (it used to be "max_steps if set, else max_bytes").
    cfg = TrainConfig(budget="bytes", max_steps=None, max_bytes=10_000)
    # 256 tokens per step at 4 bytes per token = 1024 bytes per step -> ceil(10000/1024) = 10
    assert plan_steps(cfg, 256, 4.0) == 10
    assert plan_steps(TrainConfig(budget="steps", max_steps=7, max_bytes=None), 256, 4.0) == 7


def test_sampler_maps_byte_positions_to_covering_token() -> None:
    # Token i covers bytes [cum[i-1], cum[i]); with stride 2 the coarse index is exercised.
    nbytes = np.array([0, 3, 1, 4, 2, 5, 1, 1, 1, 1, 1, 1], dtype=np.uint32)
    s = ByteAlignedSampler(nbytes, block=2, stride=2)
    assert s.total_bytes == 21
    cum = np.cumsum(nbytes)

    class FixedRng:
        def __init__(self, values: list[int]) -> None:
            self.values = np.array(values, dtype=np.uint64)

        def integers(self, lo, hi, size, dtype):  # noqa: ANN001
            return self.values

    u = list(range(21))
    got = s.starts(FixedRng(u), len(u))  # type: ignore[arg-type]
    want = np.minimum(np.searchsorted(cum, u, side="right"), s.max_start)
    np.testing.assert_array_equal(got, want)


def test_sampler_rejects_stream_shorter_than_a_block() -> None:
    with pytest.raises(DataError, match="fewer than one block"):
        ByteAlignedSampler(np.ones(5, dtype=np.uint32), block=8)


def test_same_text_positions_across_tokenizations() -> None:
    # Two tokenizations of the same 12-byte text: coarse (4-byte tokens) and fine (1-byte).
    coarse = np.array([0] + [4] * 3 + [0] * 20, dtype=np.uint32)
    fine = np.array([0] + [1] * 12 + [0] * 20, dtype=np.uint32)
    a = global_batch_starts(ByteAlignedSampler(coarse, 2), 3, 5, 1, 1, 64)
    b = global_batch_starts(ByteAlignedSampler(fine, 2), 3, 5, 1, 1, 64)
    # The fine stream's start byte lies inside the coarse token chosen at the same draw.
    np.testing.assert_array_equal((b - 1) // 4 + 1, a)


def test_global_batch_is_a_function_of_seed_and_step() -> None:
    s = ByteAlignedSampler(np.ones(1000, dtype=np.uint32), block=16)
    a = global_batch_starts(s, 0, 42, 2, 2, 4)
    assert a.shape == (2, 2, 4)
    np.testing.assert_array_equal(a, global_batch_starts(s, 0, 42, 2, 2, 4))
    assert not np.array_equal(a, global_batch_starts(s, 0, 43, 2, 2, 4))
    # The global batch does not depend on how it is split across ranks.
    np.testing.assert_array_equal(a.reshape(-1), global_batch_starts(s, 0, 42, 2, 1, 8).reshape(-1))


def test_eval_windows_predict_every_target_once() -> None:
    w = eval_windows(11, 4)
    assert w == [(0, 4), (4, 4), (8, 2)]
    assert sum(n for _, n in w) == 10
    assert spaced_subset(w, 5) == [(0, 4), (4, 4)]
    assert spaced_subset(eval_windows(101, 4), 3) == [(0, 4), (48, 4), (96, 4)]


def test_gather_windows_and_target_bytes() -> None:
    ids = np.arange(10, dtype=np.uint16)
    nbytes = np.arange(10, dtype=np.uint32)
    x, y = gather_windows(ids, np.array([2, 5]), 3)
    np.testing.assert_array_equal(x, [[2, 3, 4], [5, 6, 7]])
    np.testing.assert_array_equal(y, [[3, 4, 5], [6, 7, 8]])
    assert window_target_bytes(nbytes, np.array([2, 5]), 3) == (3 + 4 + 5) + (6 + 7 + 8)


class UniformModel(torch.nn.Module):
    """Predicts every token with probability 1/V: NLL = ln V per target."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def token_nll(self, x: torch.Tensor, y: torch.Tensor, first: int = 0) -> torch.Tensor:
        return torch.full(y[:, first:].shape, math.log(self.vocab))


def test_evaluate_sums_exact_nats_and_bytes() -> None:
    ids = np.zeros(23, dtype=np.uint16)
    nbytes = np.array([0] + [2] * 22, dtype=np.uint32)
    res = evaluate(UniformModel(16), ids, nbytes, eval_windows(23, 5), torch.device("cpu"), 2,
                   contextlib.nullcontext)
    assert res.targets == 22
    assert res.bytes == 44
    assert res.nats == pytest.approx(22 * math.log(16))
    assert res.bpb == pytest.approx(22 * 4 / 44)  # 4 bits per token, 2 bytes per token


def _tiny_trainer(seed: int, sampling: str = "epochs") -> Trainer:
    torch.manual_seed(seed)
    # Dropout on: resuming must restore the RNG too, not only weights and optimizer.
    model = GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=8, dropout=0.1), 50)
    ids = np.random.default_rng(0).integers(0, 50, size=2000).astype(np.uint16)
    nbytes = np.ones(2000, dtype=np.uint32)
    cfg = TrainConfig(device="cpu", dtype="float32", batch_size=2, budget="steps", max_steps=6,
                      max_bytes=None, sampling=sampling, warmup_steps=1, log_interval=2,
                      eval_interval=100, eval_windows=1, ckpt_interval=3)
    return Trainer(cfg, model, ids, nbytes, ids[:100], nbytes[:100], seed=0)


@pytest.mark.parametrize("sampling", ["epochs", "random"])
def test_checkpoint_round_trip_continues_bit_identically(sampling: str) -> None:
    straight_rows: list[dict] = []
    saved: list[bytes] = []

    def save(payload: dict) -> None:
        buf = io.BytesIO()
        torch.save(payload, buf)  # serialised at once, as the pipeline does
        saved.append(buf.getvalue())

    straight = _tiny_trainer(seed=0, sampling=sampling)
    straight.fit(straight_rows.append, save)

    # A fresh process would build the model from another state; the checkpoint decides.
    resumed = _tiny_trainer(seed=1, sampling=sampling)
    resumed.load_state_dict(torch.load(io.BytesIO(saved[0]), weights_only=True))
    assert resumed.state.step == 3 and len(resumed.state.window_losses) == 1
    resumed_rows: list[dict] = []
    resumed.fit(resumed_rows.append, lambda payload: None)

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]

    assert strip(resumed_rows) == strip([r for r in straight_rows if r["step"] > 3])
    for (name, a), b in zip(straight.raw_model.state_dict().items(),
                            resumed.raw_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_step_larger_than_the_training_split_is_refused() -> None:
    model = GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=8), 50)
    ids = np.zeros(40, dtype=np.uint16)
    cfg = TrainConfig(device="cpu", batch_size=8, budget="steps", max_steps=1, max_bytes=None)
    with pytest.raises(DataError, match="train.batch_size=8"):
        Trainer(cfg, model, ids, np.ones(40, dtype=np.uint32), ids, np.ones(40, dtype=np.uint32),
                seed=0)


def test_evaluate_adds_lossless_charges_of_the_targets_only() -> None:
    ids = np.zeros(23, dtype=np.uint16)
    nbytes = np.array([0] + [2] * 22, dtype=np.uint32)
    extra = np.array([100.0] + [0.5] * 22, dtype=np.float32)  # position 0 is never a target
    res = evaluate(UniformModel(16), ids, nbytes, eval_windows(23, 5), torch.device("cpu"), 2,
                   contextlib.nullcontext, charges=extra)
    assert res.charge_nats == pytest.approx(11.0)
    assert res.bpb_lossless == pytest.approx((22 * math.log(16) + 11.0) / (math.log(2) * 44))
