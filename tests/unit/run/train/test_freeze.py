"""init.freeze / init.freeze_steps: the token embedding takes no update while frozen, and
a frozen arm's gradients are clipped over the same parameters as a trained arm's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embinit.config import ModelConfig, TrainConfig
from embinit.run.model import GPT
from embinit.run.train.loop import Trainer, lr_at

FROZEN = 1 << 62  # init.freeze: every step (pipeline.freeze_steps)


def _trainer(freeze_steps: int, tie: bool = True, grad_clip: float = 1.0) -> Trainer:
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=8,
                            tie_embeddings=tie), 50)
    ids = np.random.default_rng(0).integers(0, 50, size=2000).astype(np.uint16)
    nbytes = np.ones(2000, dtype=np.uint32)
    cfg = TrainConfig(device="cpu", dtype="float32", batch_size=2, budget="steps", max_steps=4,
                      max_bytes=None, warmup_steps=1, grad_clip=grad_clip)
    return Trainer(cfg, model, ids, nbytes, ids[:100], nbytes[:100], seed=0,
                   freeze_embedding_steps=freeze_steps)


@pytest.mark.parametrize("tie", [True, False])
def test_embedding_is_untouched_while_frozen_then_trains(tie: bool) -> None:
    tr = _trainer(freeze_steps=2, tie=tie)
    m = tr.raw_model
    wte0 = m.wte.weight.detach().clone()
    body0 = m.blocks[0].mlp.c_fc.weight.detach().clone() if hasattr(m, "blocks") else None
    head0 = m.lm_head.weight.detach().clone()
    for step in range(2):
        tr.train_step(step)
    assert torch.equal(m.wte.weight, wte0)  # no update, and no weight decay either
    if not tie:
        assert not torch.equal(m.lm_head.weight, head0)  # the untied head still learns
    if body0 is not None:
        assert not torch.equal(m.blocks[0].mlp.c_fc.weight, body0)
    tr.train_step(2)
    assert not torch.equal(m.wte.weight, wte0)  # unfrozen from step freeze_steps on


def test_no_freeze_updates_the_embedding_at_the_first_step() -> None:
    tr = _trainer(freeze_steps=0)
    wte0 = tr.raw_model.wte.weight.detach().clone()
    tr.train_step(0)
    assert not torch.equal(tr.raw_model.wte.weight, wte0)


def _norms(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The total gradient norm of every clip the trainer makes, as clip_grad_norm_ sees it."""
    seen: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def watched(params, max_norm, *args, **kwargs):  # type: ignore[no-untyped-def]
        norm = clip(params, max_norm, *args, **kwargs)
        seen.append(float(norm))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", watched)
    return seen


@pytest.mark.parametrize("tie", [True, False])
def test_frozen_and_trained_arms_clip_over_the_same_parameters(
    tie: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Same init, same batch, clipping active (norm far above 0.01): the frozen arm's norm
    # counts the embedding's gradient as the trained arm's does, so both scale the body's
    # gradients alike and take the same body step; only the embedding differs (frozen at init).
    norms = _norms(monkeypatch)
    frozen, trained = _trainer(FROZEN, tie, grad_clip=0.01), _trainer(0, tie, grad_clip=0.01)
    wte0 = frozen.raw_model.wte.weight.detach().clone()
    frozen.train_step(0)
    trained.train_step(0)
    assert len(norms) == 2 and norms[0] == norms[1] > 0.01
    fs, ts = frozen.raw_model.state_dict(), trained.raw_model.state_dict()
    embedding = {"wte.weight", "lm_head.weight"} if tie else {"wte.weight"}
    for name in fs:
        if name not in embedding:
            assert torch.equal(fs[name], ts[name]), name
    assert torch.equal(frozen.raw_model.wte.weight, wte0)
    assert not torch.equal(trained.raw_model.wte.weight, wte0)


@pytest.mark.parametrize("tie", [True, False])
def test_an_embedding_frozen_for_the_whole_run_stays_exactly_at_init(tie: bool) -> None:
    tr = _trainer(FROZEN, tie, grad_clip=0.01)
    wte0 = tr.raw_model.wte.weight.detach().clone()
    for step in range(4):
        tr.train_step(step)
    assert torch.equal(tr.raw_model.wte.weight, wte0)
    assert tr.raw_model.wte.weight.grad is None
    assert tr.raw_model.wte.weight not in tr.optimizer.state  # AdamW never stepped it


@pytest.mark.parametrize("grad_clip", [1.0, 0.01, 0.0])
def test_a_trained_arm_takes_the_plain_clipped_step_bit_for_bit(grad_clip: float) -> None:
    # An arm that never freezes is untouched by how freezing works: its trajectory is the
    # plain step (backward, clip over every parameter, AdamW), bit for bit.
    tr, ref = _trainer(0, grad_clip=grad_clip), _trainer(0, grad_clip=grad_clip)
    cfg = ref.cfg
    for step in range(4):
        loss = tr.train_step(step)
        for group in ref.optimizer.param_groups:
            group["lr"] = lr_at(step, ref.total_steps, cfg.warmup_steps, cfg.lr,
                                cfg.min_lr_ratio)
        total = torch.zeros(())
        for x, y in ref._micro_batches(step):
            out = ref.model(x, y)[1]
            (out / cfg.grad_accum).backward()
            total += out.detach()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(ref.raw_model.parameters(), grad_clip)
        ref.optimizer.step()
        ref.optimizer.zero_grad(set_to_none=True)
        assert loss == float(total) / cfg.grad_accum
    a, b = tr.raw_model.state_dict(), ref.raw_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
