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

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from embinit.config import ModelConfig

INIT_STD = 0.02  # GPT-2's std for every Linear and Embedding weight


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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position (B, T, V); loss = mean cross-entropy in nats if targets."""
        logits = self._logits(idx)
        if targets is None:
            return logits, None
        # Float32 cross-entropy even under bf16 autocast: the loss is a measurement.
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def token_nll(self, idx: torch.Tensor, targets: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Per-token negative log-likelihood (nats, float32) of targets[:, first:].

        The evaluator sums these to get exact total nats, hence bits per byte, without
        the rounding of averaging per batch. A sliding window scores only its last
        positions: `first` skips the output layer (most of the FLOPs at a large
        vocabulary) for the positions that only serve as context.
        """
        logits = self._logits(idx, first)
        kept = targets[:, first:]
        nll = F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), kept.reshape(-1), reduction="none"
        )
        return nll.view(kept.shape)

    def _logits(self, idx: torch.Tensor, first: int = 0) -> torch.Tensor:
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
        return self.lm_head(self.ln_f(x[:, first:]))

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
