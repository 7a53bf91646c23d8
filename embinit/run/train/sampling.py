"""Which windows of the training stream each optimizer step reads.

Two samplers, chosen by `train.sampling`; both are pure functions of (seed, step), so
every tokenizer reads the same passages at the same point of training, and a resumed or
multi-rank run reads exactly the windows of an uninterrupted single-process one.

- `EpochSampler` (epochs): the non-overlapping windows tiling the stream, each read once
  per epoch, in an order keyed by *byte* positions of the text (phase-rotated chunks).
- `ByteAlignedSampler` (random): window starts drawn uniformly over bytes, with replacement.
"""

from __future__ import annotations

import math

import numpy as np

from embinit.errors import DataError

# The epoch order reads all chunks of this many bytes side by side, each from a random phase.
# Much larger than any window (432 B on CPU, ~4 KB at GPT-2 scale), so the windows two
# tokenizers put over the same text land at nearly the same point of the epoch.
CHUNK_BYTES = 1 << 16
MIN_CHUNKS = 64  # a smaller text gets smaller chunks, so its epochs are still shuffled


def _check_length(n: int, block: int) -> None:
    if n < block + 1:
        raise DataError(
            f"the training split has {n} tokens, fewer than one block of {block} + 1; "
            "use a larger corpus, smaller data.val_fraction/test_fraction, or a smaller "
            "model.block_size"
        )


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
        _check_length(n, block)
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


class EpochSampler:
    """Epochs over the N = (n_tokens - 1) // block non-overlapping windows of the stream.

    Window j starts at token j*block and has block inputs and block targets, so every
    target position 1..N*block is read exactly once per epoch; the (n_tokens - 1) % block
    tail tokens after the last full window (fewer than one block) are never targets.

    Epoch e orders the windows by a key that depends only on bytes, never on the tokenizer:
    the text is cut into chunks of `chunk_bytes`; each chunk k gets a random phase
    phi_k ~ U[0, chunk_bytes) drawn from (seed, e); a window whose first target byte sits at
    offset o of chunk k gets the key (o + phi_k) mod chunk_bytes (ties by chunk). So an
    epoch reads every chunk side by side, each starting at its own random point: the
    windows of one batch come from different chunks (decorrelated when the text has at
    least a batch of chunks), and the windows of two tokenizations over the same text get
    keys that differ by their offset difference / chunk_bytes, a small fraction of the
    epoch (except at the one wrap-around point per chunk). Global window g (counted from
    step 0) is position g % N of epoch g // N, which makes a batch a pure function of
    (seed, step). Memory: O(N) per cached epoch order plus O(total_bytes / chunk_bytes).
    """

    def __init__(self, nbytes: np.ndarray, block: int, chunk_bytes: int | None = None) -> None:
        n = len(nbytes)
        _check_length(n, block)
        self.block = block
        self.n_windows = (n - 1) // block
        starts = np.arange(self.n_windows, dtype=np.int64) * block
        # Per-window byte sums (O(N) memory, no full-stream cumsum), then the byte offset of
        # each window's first target, token start+1: all bytes of tokens 0..start.
        window_sums = np.add.reduceat(np.asarray(nbytes[: self.n_windows * block]), starts,
                                      dtype=np.uint64)
        before = np.concatenate([[0], np.cumsum(window_sums[:-1], dtype=np.uint64)])
        self.first_target_byte = before + np.asarray(nbytes[starts], dtype=np.uint64)
        self.total_bytes = int(np.asarray(nbytes).sum(dtype=np.uint64))
        # A function of the text's length only, so every tokenizer of it gets the same chunks.
        if chunk_bytes is None:
            chunk_bytes = min(CHUNK_BYTES, max(1, self.total_bytes // MIN_CHUNKS))
        self.chunk_bytes = chunk_bytes
        self.n_chunks = max(1, math.ceil(self.total_bytes / chunk_bytes))
        # A window whose first target byte is the end of the text (zero-byte tail tokens)
        # belongs to the last chunk.
        chunk = np.uint64(chunk_bytes)
        self.window_chunk = np.minimum(self.first_target_byte // chunk,
                                       self.n_chunks - 1).astype(np.int64)
        self.window_offset = (self.first_target_byte
                              - self.window_chunk.astype(np.uint64) * chunk).astype(np.int64)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def chunk_phases(self, seed: int, epoch: int) -> np.ndarray:
        """Each chunk's random starting phase in this epoch, in bytes."""
        return np.random.default_rng([seed, epoch]).integers(0, self.chunk_bytes, self.n_chunks)

    def window_keys(self, seed: int, epoch: int) -> np.ndarray:
        """Each window's reading key in this epoch (bytes; smaller is read earlier)."""
        phase = self.chunk_phases(seed, epoch)[self.window_chunk]
        return (self.window_offset + phase) % self.chunk_bytes

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """Window indices of one epoch in reading order (two epochs are cached)."""
        key = (seed, epoch)
        order = self._cache.get(key)
        if order is None:
            order = np.lexsort((self.window_chunk, self.window_keys(seed, epoch)))
            # A step straddles at most two epochs: keep only the newest two orders.
            for old in sorted(self._cache)[:-1]:
                del self._cache[old]
            self._cache[key] = order
        return order

    def window_starts(self, seed: int, first: int, count: int) -> np.ndarray:
        """Start tokens of global windows first, first+1, ..., first+count-1."""
        g = first + np.arange(count, dtype=np.int64)
        epoch, pos = np.divmod(g, self.n_windows)
        out = np.empty(count, dtype=np.int64)
        for e in np.unique(epoch):
            sel = epoch == e
            out[sel] = self.epoch_order(seed, int(e))[pos[sel]] * self.block
        return out


Sampler = ByteAlignedSampler | EpochSampler


def global_batch_starts(
    sampler: Sampler, seed: int, step: int, grad_accum: int, world: int, batch: int
) -> np.ndarray:
    """Starts of one optimizer step's global batch, shape (grad_accum, world, batch).

    Derived from (seed, step) alone, so resuming at step k or changing the number of
    ranks at a fixed global batch reads exactly the same windows.
    """
    count = grad_accum * world * batch
    if isinstance(sampler, EpochSampler):
        flat = sampler.window_starts(seed, step * count, count)
    else:
        flat = sampler.starts(np.random.default_rng([seed, step]), count)
    return flat.reshape(grad_accum, world, batch)


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
