"""Exact evaluation: summed per-token NLL and the bytes those tokens cover."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from embinit.metrics import bits_per_byte
from embinit.run.train.distributed import Dist
from embinit.run.train.sampling import gather_windows, window_target_bytes, window_target_sum


def eval_windows(n_tokens: int, block: int) -> list[tuple[int, int]]:
    """Non-overlapping (start, length) windows in which every target is predicted once.

    Targets are positions 1..n_tokens-1 (the stream starts with an end-of-document
    token, so every real token is a target); the last window may be shorter.
    """
    n_targets = n_tokens - 1
    return [(s, min(block, n_targets - s)) for s in range(0, n_targets, block)]


@dataclass(frozen=True)
class EvalResult:
    nats: float  # summed over targets
    targets: int
    bytes: int  # UTF-8 bytes attributed to the targets
    extra_nats: float = 0.0  # lossless charges of the targets (word-level: <unk>, whitespace)

    @property
    def loss(self) -> float:
        return self.nats / self.targets

    @property
    def bpb(self) -> float:
        return bits_per_byte(self.nats, self.bytes)

    @property
    def bpb_lossless(self) -> float:
        return bits_per_byte(self.nats + self.extra_nats, self.bytes)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    ids: np.ndarray,
    nbytes: np.ndarray,
    windows: list[tuple[int, int]],
    device: torch.device,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
    dist: Dist | None = None,
    extra: np.ndarray | None = None,
) -> EvalResult:
    """Sum per-token NLL (nats) over `windows`; ranks split the windows and all-reduce.

    `extra` (word-level token caches) holds each target's lossless charge, summed alongside.
    """
    d = dist or Dist()
    mine = windows[d.rank :: d.world_size]
    was_training = model.training
    model.eval()
    nats, targets, nbytes_total, extra_total = 0.0, 0, 0, 0.0
    # Windows of equal length are batched together; only the tail window differs.
    by_len: dict[int, list[int]] = {}
    for s, length in mine:
        by_len.setdefault(length, []).append(s)
    for length, starts in by_len.items():
        for i in range(0, len(starts), batch_size):
            st = np.asarray(starts[i : i + batch_size], dtype=np.int64)
            x, y = gather_windows(ids, st, length)
            xt = torch.from_numpy(x).to(device, non_blocking=True)
            yt = torch.from_numpy(y).to(device, non_blocking=True)
            with autocast():
                nll = model.token_nll(xt, yt)
            nats += float(nll.double().sum())
            targets += y.size
            nbytes_total += window_target_bytes(nbytes, st, length)
            if extra is not None:
                extra_total += window_target_sum(extra, st, length)
    model.train(was_training)
    nats, targets_f, bytes_f, extra_total = d.all_reduce_sum(
        [nats, float(targets), float(nbytes_total), extra_total])
    return EvalResult(nats=nats, targets=int(targets_f), bytes=int(bytes_f),
                      extra_nats=extra_total)


def spaced_subset(windows: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """k evenly spaced full-length windows (a fixed, cheap subset for periodic evals)."""
    full = [w for w in windows if w[1] == windows[0][1]]
    if len(full) <= k:
        return full
    picks = np.linspace(0, len(full) - 1, k).round().astype(int)
    return [full[i] for i in picks]
