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


def test_order_is_by_chunk_key_then_start() -> None:
    s = EpochSampler(_stream(1 + 200 * 2), block=2, chunk_bytes=16)
    for epoch in range(3):
        order = s.epoch_order(5, epoch)
        keys = s.chunk_keys(5, epoch)[s.window_chunk[order]]
        assert np.all(np.diff(keys) >= 0)
        same_key = np.diff(keys) == 0
        assert np.all(np.diff(order)[same_key] > 0)  # within a chunk, in text order
        assert same_key.any()  # several windows share a 16-byte chunk, so ties are exercised


def test_two_tokenizations_of_one_text_read_regions_in_the_same_order() -> None:
    text_bytes = 2100  # 9 chunks of 256 bytes, the last one partial
    fine = np.array([0] + [1] * text_bytes, dtype=np.uint32)  # one token per byte
    coarse = np.array([0] + [3] * (text_bytes // 3), dtype=np.uint32)  # one token per 3 bytes
    a, b = EpochSampler(fine, block=4), EpochSampler(coarse, block=2)
    assert a.n_chunks == b.n_chunks == 9
    np.testing.assert_array_equal(a.first_target_byte, np.arange(a.n_windows) * 4)
    np.testing.assert_array_equal(b.first_target_byte, np.arange(b.n_windows) * 6)
    for epoch in range(3):
        np.testing.assert_array_equal(a.chunk_keys(11, epoch), b.chunk_keys(11, epoch))
        keys = a.chunk_keys(11, epoch)
        regions = []
        for s in (a, b):
            starts = s.window_starts(11, epoch * s.n_windows, s.n_windows)
            chunk = s.first_target_byte[starts // s.block].astype(np.int64) // 256
            assert np.all(np.diff(keys[chunk]) >= 0)  # both follow the same chunk keys
            visited = chunk[np.r_[True, np.diff(chunk) != 0]]
            regions.append(visited)
        # Both arms visit the 9 regions of text in one and the same order.
        np.testing.assert_array_equal(regions[0], regions[1])
        np.testing.assert_array_equal(regions[0], np.argsort(keys))


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
