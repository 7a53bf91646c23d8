"""init.freeze / init.freeze_steps: the token embedding takes no update while frozen."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embinit.config import ModelConfig, TrainConfig
from embinit.run.model import GPT
from embinit.run.train.loop import Trainer


def _trainer(freeze_steps: int, tie: bool = True) -> Trainer:
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, d_model=16, block_size=8,
                            tie_embeddings=tie), 50)
    ids = np.random.default_rng(0).integers(0, 50, size=2000).astype(np.uint16)
    nbytes = np.ones(2000, dtype=np.uint32)
    cfg = TrainConfig(device="cpu", dtype="float32", batch_size=2, budget="steps", max_steps=4,
                      max_bytes=None, warmup_steps=1)
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
