"""Exact evaluation: summed per-token NLL and the bytes those tokens cover.

Windows are (start, length) or (start, length, skip): inputs ids[start : start+length],
targets at stream positions start+1 .. start+length, of which the first `skip` only give
context and are not scored. Targets are positions 1..n-1 (the stream starts with an
end-of-document token, so every real token is a target).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed

from embinit.metrics import bits_per_byte
from embinit.run.train.distributed import Dist
from embinit.run.train.sampling import gather_windows, window_target_bytes, window_target_sum

Autocast = Callable[[], contextlib.AbstractContextManager[Any]]
Progress = Callable[[int], None]  # called with the windows just scored

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 30.0  # a progress line this often when stderr is no terminal (log files)


class EvalProgress:
    """The progress of one evaluation pass, with its ETA: a tqdm bar on a terminal, and a log
    line every `every` seconds (and at the end) wherever the log goes. Call it with the
    number of windows scored; use it as a context manager."""

    def __init__(self, what: str, total: int, enabled: bool = True,
                 every: float = PROGRESS_SECONDS) -> None:
        from tqdm.auto import tqdm

        self.what, self.total, self.enabled, self.every = what, total, enabled, every
        self.done = 0
        self.t0 = self.last = time.perf_counter()
        # disable=None: no bar when stderr is not a terminal (the log lines stand in).
        self.bar = tqdm(total=total, desc=what, unit="window", leave=False,
                        dynamic_ncols=True, disable=None if enabled else True)
        self.bar_shown = not self.bar.disable

    def __call__(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        now = time.perf_counter()
        if self.enabled and not self.bar_shown and now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            log.info("%s: %d/%d windows (%.0f%%), %.0f s, ETA %.0f s", self.what, self.done,
                     self.total, 100 * self.done / max(self.total, 1), now - self.t0,
                     (self.total - self.done) / max(rate, 1e-9))

    def __enter__(self) -> EvalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        if self.enabled and exc[0] is None:
            log.info("%s: %d windows in %.1f s", self.what, self.done,
                     time.perf_counter() - self.t0)


def eval_windows(n_tokens: int, block: int) -> list[tuple[int, int]]:
    """Non-overlapping (start, length) windows in which every target is predicted once.

    The last window may be shorter.
    """
    n_targets = n_tokens - 1
    return [(s, min(block, n_targets - s)) for s in range(0, n_targets, block)]


def sliding_windows(n_tokens: int, block: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, length, skip) windows scoring every target exactly once with long context.

    The first window scores all of its targets; each later one starts `stride` tokens
    after the previous and scores only the targets the previous did not reach (its last
    `stride`, fewer at the end of the stream), so every target but the first `block` has
    at least block - stride tokens of context. stride = block gives `eval_windows`.
    """
    if not 1 <= stride <= block:
        raise ValueError(f"the eval stride (train.eval_stride) must be in [1, block={block}], "
                         f"got {stride}")
    n_targets = n_tokens - 1
    if n_targets <= 0:
        return []
    start, length = 0, min(block, n_targets)
    out = [(0, length, 0)]
    end = length  # targets scored so far: positions 1..end
    while end < n_targets:
        start += stride
        length = min(block, n_targets - start)
        out.append((start, length, end - start))
        end = start + length
    return out


@dataclass(frozen=True)
class EvalResult:
    nats: float  # summed over targets
    targets: int
    bytes: int  # UTF-8 bytes attributed to the targets
    charge_nats: float = 0.0  # lossless charges of the targets (word-level: <unk>, whitespace)

    @property
    def loss(self) -> float:
        return self.nats / self.targets

    @property
    def bpb(self) -> float:
        return bits_per_byte(self.nats, self.bytes)

    @property
    def bpb_lossless(self) -> float:
        return bits_per_byte(self.nats + self.charge_nats, self.bytes)


def _scored_batches(
    model: torch.nn.Module,
    ids: np.ndarray,
    windows: Sequence[tuple[int, ...]],
    device: torch.device,
    batch_size: int,
    autocast: Autocast,
    progress: Progress | None = None,
) -> Iterator[tuple[np.ndarray, int, int, torch.Tensor]]:
    """(starts, length, skip, NLL of the scored targets (B, length - skip)) per batch.

    Windows of equal (length, skip) are batched together; only the first and last differ.
    The caller sets eval mode and no_grad. `progress(n)` follows each batch of n windows.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for w in windows:
        groups.setdefault((w[1], w[2] if len(w) > 2 else 0), []).append(w[0])
    for (length, skip), starts in groups.items():
        for i in range(0, len(starts), batch_size):
            st = np.asarray(starts[i : i + batch_size], dtype=np.int64)
            x, y = gather_windows(ids, st, length)
            xt = torch.from_numpy(x).to(device, non_blocking=True)
            yt = torch.from_numpy(y).to(device, non_blocking=True)
            with autocast():
                nll = model.token_nll(xt, yt, skip)
            yield st, length, skip, nll
            if progress is not None:
                progress(len(st))


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def evaluate(
    model: torch.nn.Module,
    ids: np.ndarray,
    nbytes: np.ndarray,
    windows: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]],
    device: torch.device,
    batch_size: int,
    autocast: Autocast,
    dist: Dist | None = None,
    charges: np.ndarray | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Sum per-token NLL (nats) over the scored targets of `windows`; ranks split the
    windows and all-reduce.

    Takes `eval_windows` (every target once, short context at each window's start) or
    `sliding_windows` (every target once, long context). `charges` (word-level token
    caches) holds each target's lossless charge, summed alongside. `progress` is called with
    the number of windows of each batch as it is scored.
    """
    d = dist or Dist()
    nats, targets, nbytes_total, charge_total = 0.0, 0, 0, 0.0
    with _eval_mode(model):
        for st, length, skip, nll in _scored_batches(
            model, ids, windows[d.rank :: d.world_size], device, batch_size, autocast, progress
        ):
            nats += float(nll.double().sum())
            targets += nll.numel()
            # The scored targets of a window at `st` are those of a window at st + skip.
            nbytes_total += window_target_bytes(nbytes, st + skip, length - skip)
            if charges is not None:
                charge_total += window_target_sum(charges, st + skip, length - skip)
    nats, targets_f, bytes_f, charge_total = d.all_reduce_sum(
        [nats, float(targets), float(nbytes_total), charge_total])
    return EvalResult(nats=nats, targets=int(targets_f), bytes=int(bytes_f),
                      charge_nats=charge_total)


def sliding_evaluate(
    model: torch.nn.Module,
    ids: np.ndarray,
    nbytes: np.ndarray,
    block: int,
    stride: int | None,
    device: torch.device,
    batch_size: int,
    autocast: Autocast,
    dist: Dist | None = None,
    charges: np.ndarray | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """`evaluate` over `sliding_windows(len(ids), block, stride)`: every target once.

    stride None is block // 2 (at least 1), train.eval_stride's default.
    """
    windows = sliding_windows(len(ids), block, default_stride(block) if stride is None else stride)
    return evaluate(model, ids, nbytes, windows, device, batch_size, autocast, dist, charges,
                    progress)


def default_stride(block: int) -> int:
    """train.eval_stride=null: half a block, so every target but the first block's sees at
    least block // 2 tokens of context."""
    return max(1, block // 2)


def target_nll(
    model: torch.nn.Module,
    ids: np.ndarray,
    windows: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]],
    device: torch.device,
    batch_size: int,
    autocast: Autocast,
    dist: Dist | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """NLL (nats, float64) of every target position 1..n-1, in stream order (length n-1).

    `windows` must score every target once (`eval_windows` or `sliding_windows`). Ranks
    split the windows; every rank returns the full array. `progress` as in `evaluate`.
    """
    d = dist or Dist()
    out = np.zeros(len(ids) - 1, dtype=np.float64)
    with _eval_mode(model):
        for st, length, skip, nll in _scored_batches(
            model, ids, windows[d.rank :: d.world_size], device, batch_size, autocast, progress
        ):
            # Target position p is entry p - 1; a window at s scores positions s+1+skip...
            idx = st[:, None] + skip + np.arange(length - skip)[None, :]
            out[idx] = nll.double().cpu().numpy()
    if d.enabled:
        # Each position is written by exactly one rank and is zero elsewhere: a sum gathers.
        t = torch.from_numpy(out)
        if torch.distributed.get_backend() == "nccl":
            t = t.cuda()
        torch.distributed.all_reduce(t)
        out = t.cpu().numpy()
    return out


def result_from_targets(nll: np.ndarray, nbytes: np.ndarray,
                        charges: np.ndarray | None = None) -> EvalResult:
    """The EvalResult of a whole split from its `target_nll` array (saves a second pass)."""
    n_bytes = int(np.asarray(nbytes[1:]).sum(dtype=np.uint64))
    charges = 0.0 if charges is None else float(np.asarray(charges[1:], dtype=np.float64).sum())
    return EvalResult(nats=float(nll.sum()), targets=len(nll), bytes=n_bytes, charge_nats=charges)


def per_document(values: np.ndarray, ids: np.ndarray, eod_id: int) -> np.ndarray:
    """Sum a per-target array (positions 1..n-1, length n-1) into one value per document.

    The stream is [EOD] doc1 [EOD] doc2 ... [EOD]: document k's targets run from the
    token after its opening EOD up to and including its closing EOD (the EOD is the
    prediction that the document ends). Floats sum in float64, integers in int64; e.g.
    `per_document(nbytes[1:], ids, eod)` gives each document's bytes.
    """
    ids = np.asarray(ids)
    values = np.asarray(values)
    if len(values) != len(ids) - 1:
        raise ValueError(f"values has {len(values)} entries; a stream of {len(ids)} tokens has "
                         f"{len(ids) - 1} targets")
    if len(ids) < 2 or ids[0] != eod_id or ids[-1] != eod_id:
        raise ValueError("the stream must start and end with the end-of-document token")
    # Opening EODs at stream positions p are where each document's targets begin: entry p.
    opening = np.flatnonzero(ids[:-1] == eod_id)
    dtype = np.float64 if np.issubdtype(values.dtype, np.floating) else np.int64
    return np.add.reduceat(values, opening, dtype=dtype)


def spaced_subset(windows: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """k evenly spaced full-length windows (a fixed, cheap subset for periodic evals)."""
    full = [w for w in windows if w[1] == windows[0][1]]
    if len(full) <= k:
        return full
    picks = np.linspace(0, len(full) - 1, k).round().astype(int)
    return [full[i] for i in picks]


def leading_documents(ids: np.ndarray, eod_id: int, max_targets: int | None) -> int:
    """The length of the stream prefix that holds the leading whole documents with at most
    `max_targets` targets (the first document whole if it alone has more); len(ids) when
    `max_targets` is None or the stream fits. The prefix is itself a stream
    ([EOD] doc1 [EOD] ... docN [EOD]), so every per-document number of its documents is the
    one the whole stream gives (train.final_eval_tokens)."""
    n = len(ids)
    if max_targets is None or n - 1 <= max_targets:
        return n
    head = np.asarray(ids[1 : max_targets + 1])  # stream positions 1..max_targets
    ends = np.flatnonzero(head == eod_id)
    if len(ends):
        return int(ends[-1]) + 2  # the last EOD within the cap closes the prefix
    chunk = 1 << 20
    for start in range(max_targets + 1, n, chunk):  # the first document alone exceeds the cap
        found = np.flatnonzero(np.asarray(ids[start : start + chunk]) == eod_id)
        if len(found):
            return start + int(found[0]) + 1
    return n
