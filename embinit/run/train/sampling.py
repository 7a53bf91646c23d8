"""Which windows of the training stream each optimizer step reads.

Window starts are drawn at *byte* positions of the training text, from (seed, step)
alone, so every tokenizer reads the same passages at the same step, and a resumed or
multi-rank run reads exactly the windows of an uninterrupted single-process one.
"""

from __future__ import annotations

import numpy as np

from embinit.errors import DataError


class ByteAlignedSampler:
    """Draws window starts uniformly over the bytes of a token stream.

    A start byte u ~ U[0, total_bytes) maps to the token covering it, so two
    tokenizations of the same text, sampled with the same generator, begin their
    windows at the same places in the text. A coarse cumulative index (one entry per
    `stride` tokens) keeps memory at 1/stride of the stream; starts past the last full
    window are clipped to it.
    """

    def __init__(self, nbytes: np.ndarray, block: int, stride: int = 256) -> None:
        n = len(nbytes)
        if n < block + 1:
            raise DataError(
                f"the training split has {n} tokens, fewer than one block of {block} + 1; "
                "use a larger corpus, smaller data.val_fraction/test_fraction, or a smaller "
                "model.block_size"
            )
        self.nbytes = nbytes
        self.block = block
        self.stride = stride
        self.max_start = n - block - 1
        chunk_sums = np.add.reduceat(np.asarray(nbytes), np.arange(0, n, stride), dtype=np.uint64)
        self.coarse = np.concatenate([[0], np.cumsum(chunk_sums, dtype=np.uint64)])
        self.total_bytes = int(self.coarse[-1])

    def starts(self, rng: np.random.Generator, count: int) -> np.ndarray:
        u = rng.integers(0, self.total_bytes, size=count, dtype=np.uint64)
        chunk = np.searchsorted(self.coarse, u, side="right") - 1
        out = np.empty(count, dtype=np.int64)
        for i, (c, ui) in enumerate(zip(chunk, u, strict=True)):
            lo = int(c) * self.stride
            local = np.cumsum(self.nbytes[lo : lo + self.stride], dtype=np.uint64)
            out[i] = lo + int(np.searchsorted(local, ui - self.coarse[c], side="right"))
        return np.minimum(out, self.max_start)


def global_batch_starts(
    sampler: ByteAlignedSampler, seed: int, step: int, grad_accum: int, world: int, batch: int
) -> np.ndarray:
    """Starts of one optimizer step's global batch, shape (grad_accum, world, batch).

    Derived from (seed, step) alone, so resuming at step k or changing the number of
    ranks at a fixed global batch reads exactly the same windows.
    """
    rng = np.random.default_rng([seed, step])
    return sampler.starts(rng, grad_accum * world * batch).reshape(grad_accum, world, batch)


def gather_windows(ids: np.ndarray, starts: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets for windows beginning at `starts`."""
    idx = starts[:, None] + np.arange(block + 1)[None, :]
    chunk = np.asarray(ids[idx], dtype=np.int64)
    return chunk[:, :-1], chunk[:, 1:]


def _target_index(starts: np.ndarray, block: int) -> np.ndarray:
    """Stream positions of the targets of windows beginning at `starts`."""
    return starts.reshape(-1)[:, None] + 1 + np.arange(block)[None, :]


def window_target_bytes(nbytes: np.ndarray, starts: np.ndarray, block: int) -> int:
    return int(np.asarray(nbytes[_target_index(starts, block)], dtype=np.uint64).sum())


def window_target_sum(values: np.ndarray, starts: np.ndarray, block: int) -> float:
    """Sum of a per-token float array over the targets of the windows (float64)."""
    return float(np.asarray(values[_target_index(starts, block)], dtype=np.float64).sum())
