"""Final evaluations: sliding windows, per-target NLL, per-document sums, periodic = final."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from embinit.config import ModelConfig, TrainConfig
from embinit.run.model import GPT
from embinit.run.train.distributed import Dist
from embinit.run.train.evaluate import (
    EvalResult,
    default_stride,
    eval_windows,
    evaluate,
    per_document,
    result_from_targets,
    sliding_evaluate,
    sliding_windows,
    target_nll,
)
from embinit.run.train.loop import Trainer

CPU = torch.device("cpu")
null = contextlib.nullcontext


class Bigram(torch.nn.Module):
    """NLL of each target depends on the previous token only: no use for longer context."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0))

    def token_nll(self, x: torch.Tensor, y: torch.Tensor, first: int = 0) -> torch.Tensor:
        nll = -F.log_softmax(self.table[x], dim=-1).gather(-1, y[..., None])[..., 0]
        return nll[..., first:]


def _stream(n: int, vocab: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=n).astype(np.uint16)
    nbytes = rng.integers(1, 5, size=n).astype(np.uint32)
    nbytes[0] = 0
    extra = rng.random(n).astype(np.float32)
    return ids, nbytes, extra


def _gpt(block: int = 8, vocab: int = 20) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=block), vocab).eval()


def _scored(windows: list[tuple[int, int, int]]) -> np.ndarray:
    return np.concatenate([np.arange(s + k + 1, s + n + 1) for s, n, k in windows])


@pytest.mark.parametrize(("n", "block", "stride"),
                         [(23, 5, 2), (23, 5, 5), (23, 5, 1), (6, 8, 3), (41, 8, 4), (40, 8, 3)])
def test_sliding_windows_score_each_target_once_with_context(n: int, block: int,
                                                             stride: int) -> None:
    w = sliding_windows(n, block, stride)
    np.testing.assert_array_equal(_scored(w), np.arange(1, n))  # each of 1..n-1 once, in order
    assert w[0] == (0, min(block, n - 1), 0)
    for i, (s, length, skip) in enumerate(w[1:], start=1):
        assert s == i * stride and length <= block
        assert skip == block - stride  # context of every scored target >= block - stride
        assert length - skip <= stride


def test_sliding_windows_at_stride_block_are_the_non_overlapping_ones() -> None:
    for n, block in ((23, 5), (21, 5), (2, 4), (100, 7)):
        assert sliding_windows(n, block, block) == [(s, k, 0) for s, k in eval_windows(n, block)]
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(23, 5, 6)


def test_sliding_eval_equals_non_overlapping_for_a_context_free_model() -> None:
    ids, nbytes, extra = _stream(57)
    model = Bigram(20)
    flat = evaluate(model, ids, nbytes, eval_windows(57, 8), CPU, 3, null, charges=extra)
    slid = sliding_evaluate(model, ids, nbytes, 8, 3, CPU, 3, null, charges=extra)
    assert (slid.targets, slid.bytes) == (flat.targets, flat.bytes) == (56, int(nbytes[1:].sum()))
    assert slid.nats == pytest.approx(flat.nats, rel=1e-6)
    assert slid.charge_nats == pytest.approx(flat.charge_nats, rel=1e-6)
    assert flat.charge_nats == pytest.approx(float(extra[1:].astype(np.float64).sum()), rel=1e-6)


def test_sliding_eval_at_stride_block_is_the_non_overlapping_eval() -> None:
    ids, nbytes, extra = _stream(61)
    model = _gpt()
    flat = evaluate(model, ids, nbytes, eval_windows(61, 8), CPU, 4, null, charges=extra)
    assert sliding_evaluate(model, ids, nbytes, 8, 8, CPU, 4, null, charges=extra) == flat
    # A shorter stride gives every target more context, and so, for a real model, other nats.
    slid = sliding_evaluate(model, ids, nbytes, 8, 2, CPU, 4, null, charges=extra)
    assert (slid.targets, slid.bytes, slid.charge_nats) == (flat.targets, flat.bytes,
                                                           pytest.approx(flat.charge_nats))
    assert slid.nats != flat.nats
    # stride None: train.eval_stride's default, half a block.
    assert sliding_evaluate(model, ids, nbytes, 8, None, CPU, 4, null) == sliding_evaluate(
        model, ids, nbytes, 8, 4, CPU, 4, null)
    assert (default_stride(8), default_stride(7), default_stride(1)) == (4, 3, 1)


def test_target_nll_is_in_stream_order_and_sums_to_the_eval() -> None:
    ids, nbytes, _ = _stream(45)
    bigram = Bigram(20)
    nll = target_nll(bigram, ids, eval_windows(45, 8), CPU, 2, null)
    assert nll.dtype == np.float64 and nll.shape == (44,)
    x, y = torch.from_numpy(ids[:-1].astype(np.int64)), torch.from_numpy(ids[1:].astype(np.int64))
    np.testing.assert_allclose(nll, bigram.token_nll(x, y).double().numpy(), rtol=1e-6)
    gpt = _gpt()
    for windows in (eval_windows(45, 8), sliding_windows(45, 8, 3)):
        ev = evaluate(gpt, ids, nbytes, windows, CPU, 2, null)
        assert target_nll(gpt, ids, windows, CPU, 2, null).sum() == pytest.approx(ev.nats,
                                                                                       rel=1e-9)


@dataclass(frozen=True)
class OneRank(Dist):
    """Rank `rank` of `world_size`, without a process group: all_reduce returns local sums."""

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return values


def test_ranks_split_windows_and_their_sums_make_the_whole() -> None:
    ids, nbytes, extra = _stream(70)
    model = _gpt()
    whole = sliding_evaluate(model, ids, nbytes, 8, 3, CPU, 2, null, charges=extra)
    parts = [sliding_evaluate(model, ids, nbytes, 8, 3, CPU, 2, null, OneRank(r, 3), extra)
             for r in range(3)]
    assert all(p.targets > 0 for p in parts)
    assert sum(p.targets for p in parts) == whole.targets
    assert sum(p.bytes for p in parts) == whole.bytes
    assert sum(p.nats for p in parts) == pytest.approx(whole.nats, rel=1e-9)
    assert sum(p.charge_nats for p in parts) == pytest.approx(whole.charge_nats, rel=1e-9)


def test_per_document_sums_targets_into_documents() -> None:
    eod = 0
    # Position: 0  1  2  3  4  5  6  7  8  9  10
    ids = np.array([0, 5, 6, 0, 7, 0, 0, 8, 9, 9, 0])
    # Targets are positions 1..10; value of the target at position p is p.
    values = np.arange(1, 11, dtype=np.float64)
    # Docs: [5 6]+EOD at 1..3; [7]+EOD at 4..5; empty+EOD at 6; [8 9 9]+EOD at 7..10.
    got = per_document(values, ids, eod)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [1 + 2 + 3, 4 + 5, 6, 7 + 8 + 9 + 10])
    counts = per_document(np.ones(10, dtype=np.uint32), ids, eod)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [3, 2, 1, 4])  # tokens per document, closing EOD in
    with pytest.raises(ValueError, match="targets"):
        per_document(values[:-1], ids, eod)
    with pytest.raises(ValueError, match="end-of-document"):
        per_document(values, np.r_[ids[:-1], 3], eod)


def test_periodic_eval_over_all_windows_is_the_final_eval() -> None:
    # 1 + 6 x 8 tokens: six full windows, no short tail (the subset keeps full windows only).
    ids, nbytes, extra = _stream(1 + 6 * 8)
    train_ids, train_nbytes, _ = _stream(200)
    cfg = TrainConfig(device="cpu", dtype="float32", batch_size=2, budget="steps", max_steps=1,
                      eval_windows=100)
    trainer = Trainer(cfg, _gpt(), train_ids, train_nbytes, ids, nbytes, seed=0, val_charges=extra)
    periodic = trainer.eval_val_subset()
    final = evaluate(trainer.raw_model, ids, nbytes, eval_windows(len(ids), trainer.block), CPU,
                     cfg.batch_size, trainer.autocast, charges=extra)
    assert isinstance(periodic, EvalResult)
    assert periodic.targets == final.targets == 48
    assert periodic.bytes == final.bytes
    assert periodic.nats == pytest.approx(final.nats, rel=1e-12)
    assert periodic.charge_nats == pytest.approx(final.charge_nats, rel=1e-12)
    nll = target_nll(trainer.raw_model, ids, eval_windows(len(ids), trainer.block), CPU, 2,
                     trainer.autocast)
    from_targets = result_from_targets(nll, nbytes, extra)
    assert (from_targets.targets, from_targets.bytes) == (final.targets, final.bytes)
    assert from_targets.nats == pytest.approx(final.nats, rel=1e-9)
    assert from_targets.charge_nats == pytest.approx(final.charge_nats, rel=1e-9)


def _two_rank_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=2)
    try:
        ids, nbytes, extra = _stream(70)
        d = Dist(rank=rank, world_size=2)
        nll = target_nll(_gpt(), ids, sliding_windows(70, 8, 3), CPU, 2, null, d)
        ev = sliding_evaluate(_gpt(), ids, nbytes, 8, 3, CPU, 2, null, d, extra)
        np.save(f"{out_dir}/nll{rank}.npy", nll)
        np.save(f"{out_dir}/ev{rank}.npy", [ev.nats, ev.targets, ev.bytes, ev.charge_nats])
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes: ~5 s
def test_two_gloo_ranks_gather_the_whole_per_target_array(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_two_rank_worker, args=(str(tmp_path / "init"), str(tmp_path)),
                                nprocs=2, join=True)
    ids, nbytes, extra = _stream(70)
    nll = target_nll(_gpt(), ids, sliding_windows(70, 8, 3), CPU, 2, null)
    ev = sliding_evaluate(_gpt(), ids, nbytes, 8, 3, CPU, 2, null, charges=extra)
    for rank in range(2):  # every rank holds the whole array and the whole sums
        np.testing.assert_allclose(np.load(tmp_path / f"nll{rank}.npy"), nll, rtol=1e-6)
        np.testing.assert_allclose(np.load(tmp_path / f"ev{rank}.npy"),
                                   [ev.nats, ev.targets, ev.bytes, ev.charge_nats], rtol=1e-9)
