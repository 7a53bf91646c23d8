"""Decoder-only GPT (nanoGPT-style), identical for every arm.

Classes appear in the order data flows: attention, MLP, the pre-LN block that combines
them, then the full model. The arm changes only the initial token-embedding matrix,
which `GPT.set_token_embedding` copies in after the standard GPT-2 initialization.
The closed-form parameter count lives in `embinit.params` and is tested against
`GPT.num_params`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from embinit.config import ModelConfig

INIT_STD = 0.02  # GPT-2's std for every Linear and Embedding weight
# model.loss_chunk=-1: chunk the loss from this vocabulary size, where a 16 x 1024 batch's fp32
# logits reach 4 GB; below it the plain pass is kept (no extra kernels, the measured MFU).
AUTO_CHUNK_MIN_VOCAB = 65_536
AUTO_LOSS_CHUNK = 2048  # positions: 2048 x 100k fp32 logits = 0.8 GB at a time


def _chunked_nll(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor,
                 chunk: int) -> torch.Tensor:
    """Per-position NLL (float32) of h (N, d) under the output layer w (V, d), chunk by chunk."""
    return torch.cat([
        F.cross_entropy(F.linear(h[i:i + chunk], w).float(), targets[i:i + chunk],
                        reduction="none")
        for i in range(0, h.shape[0], chunk)
    ])


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """mean_i CE(h_i @ w^T, t_i) without materializing all N x V logits.

    Forward walks the positions in chunks: logits for one chunk (matmuls under the caller's
    autocast, softmax in float32 like the plain path), its loss, and at once its gradients
    d/dh and d/dw, the chunk's logits then freed. Backward only scales the stored gradients,
    so the FLOPs equal the plain pass's (no recompute), and peak memory holds one chunk's
    logits plus dh (N x d) and dw (V x d) instead of N x V logits and their gradient.
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor,
                chunk: int) -> torch.Tensor:
        n = targets.numel()
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros_like(w, dtype=torch.float32) if want_w else None
        total = torch.zeros((), device=h.device, dtype=torch.float32)
        for i in range(0, n, chunk):
            h_c, t_c = h[i:i + chunk], targets[i:i + chunk]
            logits = F.linear(h_c, w).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t_c[:, None]).squeeze(1)).sum()
            if not (want_h or want_w):
                continue
            # d(mean CE)/d logits = (softmax - onehot) / N, in place over the chunk's logits.
            g = logits.sub_(lse[:, None]).exp_()
            g.scatter_add_(1, t_c[:, None], torch.full_like(lse[:, None], -1.0))
            g.div_(n)
            # Under bf16 autocast these matmuls run in bf16, as the plain head's backward does.
            if want_h:
                grad_h[i:i + chunk] = (g @ w).to(h.dtype)
            if want_w:
                grad_w += (g.t() @ h_c).float()
        ctx.w_dtype = w.dtype
        ctx.save_for_backward(grad_h, grad_w)
        return total / n

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        dh = grad_h * grad_out if grad_h is not None else None
        dw = (grad_w * grad_out).to(ctx.w_dtype) if grad_w is not None else None
        return dh, dw, None, None


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; each position attends only to itself and the past."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.d_model % cfg.n_head != 0:
            raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
        self.n_head = cfg.n_head
        self.d_model = cfg.d_model
        self.dropout = cfg.dropout
        # One fused matmul produces queries, keys and values for all heads.
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.d_model, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: d -> 4d -> d with GELU."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token + learned position embeddings, `n_layer` blocks, final LayerNorm, LM head."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, seed: int = 0) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if cfg.loss_chunk < -1:
            raise ValueError(f"model.loss_chunk must be -1 (auto), 0 (off) or a positive number "
                             f"of positions, got {cfg.loss_chunk}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.block_size = cfg.block_size
        self.wte = nn.Embedding(vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            # One Parameter serves as input embedding and output projection, so an init
            # matrix copied into wte also initializes the head.
            self.lm_head.weight = self.wte.weight
        self.init_weights(seed)

    def init_weights(self, seed: int) -> None:
        """GPT-2's initialization, drawn so the body is the same whatever the vocabulary.

        The body (positions, blocks, final norm) draws from its own generator seeded by
        `seed`, in a fixed order that never touches a vocabulary-sized tensor, so two arms
        with the same seed start from the identical body (`body_sha256` checks it) and differ
        only in their token rows. The token rows (and an untied head) draw from separate
        generators; an arm's init matrix then replaces wte.
        """
        body = torch.Generator().manual_seed(int(seed))
        vocab_rows = torch.Generator().manual_seed(int(seed) + 1_000_003)
        head = torch.Generator().manual_seed(int(seed) + 2_000_003)
        # GPT-2: the projections that write into the residual stream get std / sqrt(2 * n_layer)
        # so the stream's variance does not grow with depth (two residual additions per block).
        resid_std = INIT_STD / math.sqrt(2 * self.cfg.n_layer)
        with torch.no_grad():
            for name, m in self.named_modules():  # registration order: fixed for a shape
                if m is self.wte or m is self.lm_head:
                    continue
                if isinstance(m, nn.Linear):
                    std = resid_std if name.endswith("c_proj") else INIT_STD
                    m.weight.normal_(0.0, std, generator=body)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.Embedding):  # positions
                    m.weight.normal_(0.0, INIT_STD, generator=body)
                elif isinstance(m, nn.LayerNorm):
                    m.weight.fill_(1.0)
                    if m.bias is not None:
                        m.bias.zero_()
            self.wte.weight.normal_(0.0, INIT_STD, generator=vocab_rows)
            if not self.cfg.tie_embeddings:
                self.lm_head.weight.normal_(0.0, INIT_STD, generator=head)

    def body_parameters(self) -> list[tuple[str, torch.Tensor]]:
        """Every parameter that does not depend on the vocabulary, by name (sorted)."""
        skip = {"wte.weight", "lm_head.weight"}
        return sorted((n, p) for n, p in self.named_parameters() if n not in skip)

    def body_sha256(self) -> str:
        """sha256 of the non-embedding parameters (names, shapes and float32 bytes)."""
        h = hashlib.sha256()
        for name, p in self.body_parameters():
            t = p.detach().to("cpu", torch.float32).contiguous()
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    def set_token_embedding(self, matrix: torch.Tensor | np.ndarray) -> None:
        """Copy an init matrix (vocab_size x d_model) into wte (and the tied head)."""
        # torch.tensor copies, so a read-only memmap or a caller's array is never aliased.
        m = torch.tensor(matrix) if isinstance(matrix, np.ndarray) else matrix
        expected = tuple(self.wte.weight.shape)
        if tuple(m.shape) != expected:
            raise ValueError(
                f"token-embedding matrix has shape {tuple(m.shape)} but the model's wte is "
                f"{expected} (vocab_size x d_model)"
            )
        with torch.no_grad():
            self.wte.weight.copy_(m.to(dtype=self.wte.weight.dtype, device=self.wte.weight.device))

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits (B, T, V) and, with targets, the mean cross-entropy in nats.

        With targets and a chunked loss (`loss_chunk_size` > 0) the logits are never built
        whole, so the first element is None: callers that train read only the loss.
        """
        if targets is None:
            return self._logits(idx), None
        h = self._hidden(idx)
        chunk = self.loss_chunk_size
        if chunk:
            w = self.lm_head.weight
            flat_h, flat_t = h.reshape(-1, h.size(-1)), targets.reshape(-1)
            if torch.is_grad_enabled() and (flat_h.requires_grad or w.requires_grad):
                loss = ChunkedLinearCrossEntropy.apply(flat_h, w, flat_t, chunk)
            else:
                loss = _chunked_nll(flat_h, w, flat_t, chunk).sum() / flat_t.numel()
            return None, loss
        logits = self.lm_head(h)
        # Float32 cross-entropy even under bf16 autocast: the loss is a measurement.
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @property
    def loss_chunk_size(self) -> int:
        """Positions per chunk of the output layer + loss; 0 means one plain pass."""
        if self.cfg.loss_chunk >= 0:
            return self.cfg.loss_chunk
        return AUTO_LOSS_CHUNK if self.vocab_size >= AUTO_CHUNK_MIN_VOCAB else 0

    def token_nll(self, idx: torch.Tensor, targets: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Per-token negative log-likelihood (nats, float32) of targets[:, first:].

        The evaluator sums these to get exact total nats, hence bits per byte, without
        the rounding of averaging per batch. A sliding window scores only its last
        positions: `first` skips the output layer (most of the FLOPs at a large
        vocabulary) for the positions that only serve as context.
        """
        h = self._hidden(idx, first)
        kept = targets[:, first:]
        chunk = self.loss_chunk_size
        if chunk:  # an evaluation batch's logits are as large as a training batch's
            nll = _chunked_nll(h.reshape(-1, h.size(-1)), self.lm_head.weight,
                               kept.reshape(-1), chunk)
            return nll.view(kept.shape)
        logits = self.lm_head(h)
        nll = F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), kept.reshape(-1), reduction="none"
        )
        return nll.view(kept.shape)

    def _logits(self, idx: torch.Tensor, first: int = 0) -> torch.Tensor:
        return self.lm_head(self._hidden(idx, first))

    def _hidden(self, idx: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Final-norm hidden states of positions first: (the output layer's input)."""
        seq_len = idx.shape[1]
        if seq_len > self.block_size:
            raise ValueError(
                f"sequence length {seq_len} exceeds the model's block_size {self.block_size}; "
                f"feed windows of at most {self.block_size} tokens"
            )
        pos = torch.arange(seq_len, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x[:, first:])

    def num_params(self) -> int:
        """Number of unique parameters (a tied head is counted once)."""
        # Module.parameters() already yields a shared Parameter only once.
        return sum(p.numel() for p in self.parameters())

    def configure_optimizer(
        self,
        weight_decay: float,
        lr: float,
        betas: tuple[float, float],
        device_type: str,
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on Linear weight matrices only.

        Embeddings (wte, wpe, and so a tied head), LayerNorm weights and all biases are
        not decayed: decay would pull an informative init toward zero and norms/biases
        are not matrices. Each parameter appears in exactly one group.
        """
        embedding_ids = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        linear_weight_ids = {id(m.weight) for m in self.modules() if isinstance(m, nn.Linear)}
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for p in self.parameters():  # deduplicated, so a tied weight is seen once
            if not p.requires_grad:
                continue
            if id(p) in linear_weight_ids and id(p) not in embedding_ids:
                decay.append(p)
            else:
                no_decay.append(p)
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused_adamw_supported(device_type))


def fused_adamw_supported(device_type: str) -> bool:
    """Whether AdamW has a fused kernel (one pass per tensor) here: CUDA, and CPU from torch 2.4.

    On CPU the default per-tensor loop costs 20 ms per step at 5M parameters and 330 ms at
    20M; the fused kernel 5 and 15 ms, with the same update up to rounding.
    """
    if device_type == "cuda":
        return True
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    return device_type == "cpu" and (major, minor) >= (2, 4)
