"""train.sampling=epochs: every window once per epoch, in a byte-keyed order shared by all
tokenizers, and a pure function of (seed, step)."""

from __future__ import annotations

import numpy as np
import pytest

from embinit.errors import DataError
from embinit.run.train.sampling import EpochSampler, global_batch_starts


def _stream(n: int, seed: int = 0) -> np.ndarray:
    nbytes = np.random.default_rng(seed).integers(1, 5, size=n).astype(np.uint32)
    nbytes[0] = 0  # the opening EOD carries no bytes
    return nbytes


def test_windows_tile_the_stream() -> None:
    s = EpochSampler(_stream(1 + 12 * 4 + 3), block=4)  # 3 tail tokens after 12 windows
    assert s.n_windows == 12
    # Window j's first target is token 4j + 1, whose bytes begin after tokens 0..4j.
    cum = np.cumsum(_stream(1 + 12 * 4 + 3))
    np.testing.assert_array_equal(s.first_target_byte, cum[np.arange(12) * 4])


def test_every_window_once_per_epoch_and_epochs_differ() -> None:
    block, n_win = 4, 12
    s = EpochSampler(_stream(1 + n_win * block + 3), block, chunk_bytes=8)
    per_step = 3  # 4 steps per epoch
    epochs = [
        np.concatenate([global_batch_starts(s, 7, step, 1, 1, per_step).reshape(-1)
                        for step in range(e * 4, (e + 1) * 4)])
        for e in range(3)
    ]
    for starts in epochs:
        np.testing.assert_array_equal(np.sort(starts), np.arange(n_win) * block)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    assert not np.array_equal(epochs[0], s.window_starts(8, 0, n_win))  # another seed


def test_steps_straddling_epochs_read_each_window_once_per_epoch() -> None:
    s = EpochSampler(_stream(1 + 10 * 3), block=3, chunk_bytes=4)
    # 4 windows per step do not divide the 10 of an epoch; 5 steps are exactly 2 epochs.
    starts = np.concatenate([global_batch_starts(s, 1, k, 2, 1, 2).reshape(-1) for k in range(5)])
    np.testing.assert_array_equal(np.bincount(starts // 3, minlength=10), np.full(10, 2))
    np.testing.assert_array_equal(np.sort(starts[:10]), np.arange(10) * 3)


def test_order_is_by_phase_rotated_offset_then_chunk() -> None:
    s = EpochSampler(_stream(1 + 400 * 2), block=2, chunk_bytes=64)
    for epoch in range(3):
        order = s.epoch_order(5, epoch)
        keys = s.window_keys(5, epoch)[order]
        assert np.all(np.diff(keys) >= 0)
        same_key = np.diff(keys) == 0
        assert np.all(np.diff(s.window_chunk[order])[same_key] > 0)  # ties: by chunk
        np.testing.assert_array_equal(
            s.window_keys(5, epoch),
            (s.window_offset + s.chunk_phases(5, epoch)[s.window_chunk]) % 64)
    assert not np.array_equal(s.chunk_phases(5, 0), s.chunk_phases(5, 1))


def _tokenization(text_bytes: int, mean: float, seed: int) -> np.ndarray:
    """Per-token byte counts of one text: tokens of 1..2*mean-1 bytes, summing to text_bytes."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, int(2 * mean), size=int(text_bytes / mean * 1.2) + 10)
    cum = np.cumsum(lengths)
    lengths = lengths[: np.searchsorted(cum, text_bytes) + 1]
    lengths[-1] -= int(lengths.sum()) - text_bytes
    return np.concatenate([[0], lengths[lengths > 0]]).astype(np.uint32)


def test_two_tokenizations_of_one_text_read_it_in_the_same_order() -> None:
    # The regime of the studies: ~432-byte windows (BPE 111 tokens at 3.9 B/token, the word
    # arm 126 at 3.43) over ~2 MB. The window of arm B over the text where arm A's window
    # begins must come at (nearly) the same point of the epoch.
    text = 2_000_000
    a = EpochSampler(_tokenization(text, 3.9, 0), block=111)
    b = EpochSampler(_tokenization(text, 3.43, 1), block=126)
    # Chunks depend on the text's length only: 64 chunks of 31,250 bytes for 2 MB.
    assert a.chunk_bytes == b.chunk_bytes == 31_250 and a.n_chunks == b.n_chunks == 64
    for epoch in range(2):
        np.testing.assert_array_equal(a.chunk_phases(11, epoch), b.chunk_phases(11, epoch))
        pos_a = np.empty(a.n_windows)
        pos_a[a.epoch_order(11, epoch)] = np.arange(a.n_windows) / a.n_windows
        pos_b = np.empty(b.n_windows)
        pos_b[b.epoch_order(11, epoch)] = np.arange(b.n_windows) / b.n_windows
        # B's window holding A's first target byte.
        j = np.searchsorted(b.first_target_byte, a.first_target_byte, side="right") - 1
        ok = j >= 0
        gap = np.abs(pos_a[ok] - pos_b[j[ok]])
        assert np.median(gap) < 0.008  # about half a window's bytes / chunk bytes
        assert np.mean(gap < 0.02) > 0.97  # only windows at a chunk's wrap-around point differ


def test_a_batch_draws_from_many_chunks() -> None:
    # Consecutive windows in reading order come from different places in the text, so a
    # batch is not 16 neighbouring windows of one article.
    s = EpochSampler(_tokenization(2_000_000, 3.9, 0), block=111)
    order = s.epoch_order(3, 0)
    distinct = [len(set(s.window_chunk[order[i:i + 16]])) for i in range(0, len(order) - 16, 16)]
    assert np.mean(distinct) > 14


def test_batches_are_a_function_of_seed_and_step_and_resume() -> None:
    nbytes = _stream(1 + 50 * 4)
    straight = EpochSampler(nbytes, 4)
    seen = [global_batch_starts(straight, 3, k, 2, 1, 4) for k in range(20)]  # 8 epochs / 5
    # A fresh sampler (a resumed process) at step k reads what the uninterrupted one read.
    for k in (0, 6, 7, 13, 19):
        np.testing.assert_array_equal(global_batch_starts(EpochSampler(nbytes, 4), 3, k, 2, 1, 4),
                                      seen[k])
    # And asking again, out of order, gives the same batches.
    np.testing.assert_array_equal(global_batch_starts(straight, 3, 2, 2, 1, 4), seen[2])
    assert not np.array_equal(global_batch_starts(straight, 4, 0, 2, 1, 4), seen[0])


def test_ddp_slicing_keeps_the_global_batch() -> None:
    s = EpochSampler(_stream(1 + 40 * 4), 4)
    for step in range(12):  # 40 windows at 4 per step: crosses epochs at step 10
        two_ranks = global_batch_starts(s, 0, step, 1, 2, 2)
        one_rank = global_batch_starts(s, 0, step, 1, 1, 4)
        assert two_ranks.shape == (1, 2, 2)
        assert set(two_ranks.reshape(-1)) == set(one_rank.reshape(-1))
        np.testing.assert_array_equal(two_ranks.reshape(-1), one_rank.reshape(-1))
        accum = global_batch_starts(s, 0, step, 2, 1, 2)
        np.testing.assert_array_equal(accum.reshape(-1), one_rank.reshape(-1))


def test_rejects_stream_shorter_than_a_block() -> None:
    with pytest.raises(DataError, match="fewer than one block"):
        EpochSampler(np.ones(5, dtype=np.uint32), block=8)
