import math

import numpy as np
import pytest
import torch

from embinit.config import ModelConfig
from embinit.params import param_breakdown
from embinit.run.model import GPT

V = 97


def tiny(**kw) -> ModelConfig:
    base = dict(name="t", n_layer=2, n_head=2, d_model=16, block_size=12, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def make(cfg: ModelConfig | None = None, vocab_size: int = V, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg or tiny(), vocab_size).eval()


def test_output_shapes_and_loss():
    m = make()
    idx = torch.randint(0, V, (3, 12))
    logits, loss = m(idx)
    assert logits.shape == (3, 12, V) and loss is None
    logits, loss = m(idx, idx)
    assert loss.shape == () and loss.dtype == torch.float32


def test_sequence_longer_than_block_size_is_rejected():
    with pytest.raises(ValueError, match="block_size 12"):
        make()(torch.zeros(1, 13, dtype=torch.long))


def test_causal_future_token_does_not_change_earlier_logits():
    m = make()
    idx = torch.randint(0, V, (2, 12))
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % V
    a, _ = m(idx)
    b, _ = m(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 8, 4), (2, 2, 16, 12), (3, 4, 32, 7)])
def test_num_params_matches_closed_form(tie, bias, shape):
    n_layer, n_head, d_model, block = shape
    cfg = ModelConfig(n_layer=n_layer, n_head=n_head, d_model=d_model, block_size=block,
                      bias=bias, tie_embeddings=tie)
    assert make(cfg, vocab_size=50).num_params() == param_breakdown(cfg, 50)["total"]


def test_gpt2_small_param_count_on_meta_device():
    cfg = ModelConfig(n_layer=12, n_head=12, d_model=768, block_size=1024, bias=True,
                      tie_embeddings=True)
    with torch.device("meta"):  # shapes only, no 500 MB allocation
        m = GPT(cfg, 50257)
    assert m.num_params() == 124_439_808


def test_tied_head_shares_storage_with_wte():
    m = make(tiny(tie_embeddings=True))
    assert m.lm_head.weight is m.wte.weight
    assert m.lm_head.weight.data_ptr() == m.wte.weight.data_ptr()
    untied = make(tiny(tie_embeddings=False))
    assert untied.lm_head.weight.data_ptr() != untied.wte.weight.data_ptr()


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_optimizer_groups(tie, bias):
    m = make(tiny(tie_embeddings=tie, bias=bias))
    opt = m.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids))  # each parameter exactly once
    assert set(ids) == {id(p) for p in m.parameters()}
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == m.num_params()

    decay_ids = {id(p) for p in decay["params"]}
    expected_decay = {id(b.attn.c_attn.weight) for b in m.blocks}
    expected_decay |= {id(b.attn.c_proj.weight) for b in m.blocks}
    expected_decay |= {id(b.mlp.c_fc.weight) for b in m.blocks}
    expected_decay |= {id(b.mlp.c_proj.weight) for b in m.blocks}
    if not tie:
        expected_decay.add(id(m.lm_head.weight))
    assert decay_ids == expected_decay
    # embeddings, norms and biases are all in the no-decay group
    assert id(m.wte.weight) not in decay_ids and id(m.wpe.weight) not in decay_ids
    for name, p in m.named_parameters():
        if name.endswith("bias") or ".ln_" in name or name.startswith("ln_f"):
            assert id(p) not in decay_ids, name


def test_set_token_embedding_copies_rows_into_wte_and_tied_head():
    m = make()
    matrix = np.random.default_rng(1).standard_normal((V, 16)).astype(np.float32)
    m.set_token_embedding(matrix)
    torch.testing.assert_close(m.wte.weight.detach(), torch.from_numpy(matrix))
    torch.testing.assert_close(m.lm_head.weight[5].detach(), torch.from_numpy(matrix[5]))
    matrix[0] = 7.0  # the model holds a copy, not a view of the caller's array
    assert m.wte.weight[0, 0].item() != 7.0
    m.set_token_embedding(torch.ones(V, 16))
    assert torch.equal(m.wte.weight.detach(), torch.ones(V, 16))


def test_set_token_embedding_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(96, 16\).*\(97, 16\)"):
        make().set_token_embedding(np.zeros((96, 16), dtype=np.float32))


def test_token_nll_mean_equals_loss():
    m = make()
    idx = torch.randint(0, V, (4, 12))
    targets = torch.randint(0, V, (4, 12))
    nll = m.token_nll(idx, targets)
    assert nll.shape == (4, 12) and nll.dtype == torch.float32
    _, loss = m(idx, targets)
    torch.testing.assert_close(nll.mean(), loss)


def test_loss_at_init_is_about_log_vocab():
    vocab = 500
    m = make(tiny(d_model=32), vocab_size=vocab)
    idx = torch.randint(0, vocab, (8, 12))
    _, loss = m(idx, torch.randint(0, vocab, (8, 12)))
    assert abs(loss.item() - math.log(vocab)) < 0.2


def test_gpt2_init_scales():
    # 256x1024 / 1024x256 matrices: the sample std of ~262k N(0, s) entries is within
    # 0.5% of s with overwhelming probability; 3% leaves ample slack.
    m = make(ModelConfig(n_layer=2, n_head=4, d_model=256, block_size=8))
    assert abs(m.blocks[0].mlp.c_fc.weight.std().item() / 0.02 - 1) < 0.03
    resid = 0.02 / math.sqrt(2 * 2)
    assert abs(m.blocks[1].mlp.c_proj.weight.std().item() / resid - 1) < 0.03
    assert abs(m.blocks[0].attn.c_proj.weight.std().item() / resid - 1) < 0.03
    assert torch.count_nonzero(m.blocks[0].attn.c_attn.bias) == 0


@pytest.mark.parametrize("tied", [True, False])
def test_body_is_identical_across_vocabularies_at_the_same_seed(tied: bool) -> None:
    # A difference between arms must come from the token rows, not from another draw of the
    # body: the vocabulary size must not shift the random stream the blocks are drawn from.
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=16, block_size=8, tie_embeddings=tied)
    small, large = GPT(cfg, 300, seed=3), GPT(cfg, 5000, seed=3)
    for (name, a), (_, b) in zip(small.body_parameters(), large.body_parameters(), strict=True):
        assert torch.equal(a, b), name
    assert small.body_sha256() == large.body_sha256()
    assert GPT(cfg, 300, seed=4).body_sha256() != small.body_sha256()
    # The body hash covers positions and blocks, never a vocabulary-sized tensor.
    names = [n for n, _ in small.body_parameters()]
    assert "wpe.weight" in names and "wte.weight" not in names and "lm_head.weight" not in names


def test_init_keeps_gpt2_scales() -> None:
    cfg = ModelConfig(n_layer=4, n_head=4, d_model=64, block_size=16)
    m = GPT(cfg, 1000, seed=0)
    assert abs(float(m.blocks[0].mlp.c_fc.weight.detach().std()) - 0.02) < 0.002
    resid = 0.02 / (2 * cfg.n_layer) ** 0.5
    assert abs(float(m.blocks[1].attn.c_proj.weight.detach().std()) - resid) < 0.1 * resid
    assert float(m.ln_f.weight.detach().min()) == 1.0
    assert float(m.blocks[0].attn.c_attn.bias.detach().abs().max()) == 0.0


def test_token_nll_from_a_position_equals_the_tail_of_the_full_nll() -> None:
    # The sliding evaluation skips the output layer for context-only positions: the scored
    # positions must get exactly the values a full pass gives them.
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=16, block_size=12)
    m = GPT(cfg, 50, seed=0).eval()
    idx = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = m.token_nll(idx, targets)
        tail = m.token_nll(idx, targets, first=7)
    assert tail.shape == (3, 5)
    torch.testing.assert_close(tail, full[:, 7:], rtol=1e-6, atol=1e-6)


def _loss_and_grads(cfg: ModelConfig, vocab: int, idx: torch.Tensor,
                    targets: torch.Tensor
                    ) -> tuple[torch.Tensor | None, torch.Tensor, dict[str, torch.Tensor]]:
    m = GPT(cfg, vocab, seed=0)
    logits, loss = m(idx, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
    grads["lm_head.weight"] = m.lm_head.weight.grad.detach().clone()
    return logits, loss.detach(), grads


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 16, 100])  # 36 positions: ragged, exact and one chunk
def test_chunked_loss_equals_the_plain_loss_and_gradients(tied: bool, chunk: int) -> None:
    vocab = 97
    idx = torch.randint(0, vocab, (3, 12), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, vocab, (3, 12), generator=torch.Generator().manual_seed(2))
    plain_logits, plain, g_plain = _loss_and_grads(tiny(tie_embeddings=tied, loss_chunk=0),
                                                   vocab, idx, targets)
    logits, chunked, g_chunk = _loss_and_grads(tiny(tie_embeddings=tied, loss_chunk=chunk),
                                               vocab, idx, targets)
    assert plain_logits is not None and logits is None  # the chunked path never builds them
    assert abs(plain.item() - math.log(vocab)) < 0.3  # a real loss, not a zero
    torch.testing.assert_close(chunked, plain, rtol=0, atol=1e-5)
    assert g_plain.keys() == g_chunk.keys()
    for name in ("wte.weight", "lm_head.weight", "wpe.weight", "blocks.0.attn.c_attn.weight"):
        assert g_plain[name].abs().max() > 1e-4, name  # the gradient is there to compare
        torch.testing.assert_close(g_chunk[name], g_plain[name], rtol=0, atol=1e-5)
    if not tied:  # the untied head's gradient comes from the loss alone
        assert not torch.equal(g_chunk["wte.weight"], g_chunk["lm_head.weight"])


def test_chunked_loss_with_a_frozen_embedding_and_under_no_grad() -> None:
    vocab = 60
    idx = torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(3))
    m0, m5 = GPT(tiny(loss_chunk=0), vocab), GPT(tiny(loss_chunk=5), vocab)
    with torch.no_grad():
        torch.testing.assert_close(m5(idx, idx)[1], m0(idx, idx)[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(m5.token_nll(idx, idx, first=4), m0.token_nll(idx, idx, 4),
                                   rtol=0, atol=1e-6)
    m5.wte.weight.requires_grad_(False)  # init.freeze: only the body learns
    m5(idx, idx)[1].backward()
    assert m5.wte.weight.grad is None and m5.blocks[1].mlp.c_fc.weight.grad is not None


def test_chunked_loss_runs_under_bf16_autocast() -> None:
    vocab = 97
    idx = torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(4))
    losses = []
    for chunk in (0, 8):
        m = GPT(tiny(loss_chunk=chunk), vocab)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(idx, idx)[1]
        loss.backward()
        assert loss.dtype == torch.float32 and m.wte.weight.grad.dtype == torch.float32
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=2e-2)  # bf16 matmuls, either order


def test_loss_chunk_auto_turns_on_at_large_vocabularies() -> None:
    cfg = ModelConfig(n_layer=1, n_head=1, d_model=8, block_size=4)  # loss_chunk=-1: auto
    assert cfg.loss_chunk == -1
    assert GPT(cfg, 65_535).loss_chunk_size == 0
    assert GPT(cfg, 100_000).loss_chunk_size == 2048
    assert GPT(ModelConfig(n_layer=1, n_head=1, d_model=8, loss_chunk=0), 100_000).loss_chunk_size == 0
    with pytest.raises(ValueError, match="loss_chunk"):
        GPT(ModelConfig(n_layer=1, n_head=1, d_model=8, loss_chunk=-2), 10)
