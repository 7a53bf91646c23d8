"""The shared trainer: every arm runs this same loop with the same data order and budget.

Only two things differ between arms: the token arrays (from the arm's tokenizer) and
the initial embedding matrix (and, under train.context=bytes, the context length in
tokens). The schedule, optimizer, batch geometry and evaluation are identical, and the
data order is keyed by *byte* positions of the training text for every tokenizer, so at
the same point of training all arms are reading (nearly) the same passages.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from embinit.config import BUDGETS, SAMPLINGS, TrainConfig
from embinit.errors import ConfigError, DataError
from embinit.run.train.checkpoint import CHECKPOINT_FORMAT
from embinit.run.train.distributed import Dist
from embinit.run.train.evaluate import EvalResult, eval_windows, evaluate, spaced_subset
from embinit.run.train.sampling import (
    ByteAlignedSampler,
    EpochSampler,
    Sampler,
    gather_windows,
    global_batch_starts,
    window_target_bytes,
)

log = logging.getLogger("embinit.train")


# ---------------------------------------------------------------- pure schedule / budget


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr_ratio: float) -> float:
    """Linear warmup to `lr` over `warmup_steps`, then cosine decay to lr * min_lr_ratio."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    min_lr = lr * min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def _written(x: float) -> Fraction:
    # The decimal the user wrote (0.1, 1e15), not its binary float: ceil(0.1 * 30) is 3.
    return Fraction(repr(float(x)))


def plan_steps(
    cfg: TrainConfig,
    tokens_per_step: int,
    train_bytes_per_token: float | Fraction,
    *,
    train_bytes: int | None = None,
    n_windows: int | None = None,
    windows_per_step: int | None = None,
    flops_per_token: float | None = None,
) -> int:
    """Optimizer steps for the budget named by `cfg.budget` (the other max_* are ignored).

    steps:  max_steps.
    bytes:  ceil(max_bytes / (tokens_per_step x train bytes per token)): arms with different
            tokenizers read the same amount of text, each at its own bytes per token.
    epochs: sampling=epochs: ceil(max_epochs x n_windows / windows_per_step);
            sampling=random: the bytes budget with max_bytes = max_epochs x train_bytes.
    flops:  ceil(max_flops / (flops_per_token x tokens_per_step)).

    Arithmetic is exact (pass bytes per token as a Fraction to keep it so), so a budget
    of a whole number of steps never rounds up to one more.
    """

    def need(value: Any, what: str) -> Any:
        if value is None:
            raise ConfigError(f"train.budget={cfg.budget} needs {what}")
        return value

    def steps_for_bytes(n_bytes: Fraction) -> int:
        return max(1, math.ceil(n_bytes / (tokens_per_step * Fraction(train_bytes_per_token))))

    if cfg.budget == "steps":
        return int(need(cfg.max_steps, "train.max_steps"))
    if cfg.budget == "bytes":
        return steps_for_bytes(Fraction(int(need(cfg.max_bytes, "train.max_bytes"))))
    if cfg.budget == "epochs":
        epochs = _written(need(cfg.max_epochs, "train.max_epochs"))
        if cfg.sampling == "epochs":
            windows = epochs * need(n_windows, "the number of training windows")
            return max(1, math.ceil(windows / need(windows_per_step, "windows per step")))
        return steps_for_bytes(epochs * need(train_bytes, "the training split's bytes"))
    if cfg.budget == "flops":
        flops = _written(need(cfg.max_flops, "train.max_flops"))
        per_token = Fraction(need(flops_per_token, "flops_per_token (FLOPs per trained token)"))
        return max(1, math.ceil(flops / (per_token * tokens_per_step)))
    raise ConfigError(f"train.budget={cfg.budget!r} is unknown; choose one of {BUDGETS}")


def make_sampler(cfg: TrainConfig, train_nbytes: np.ndarray, block: int) -> Sampler:
    if cfg.sampling == "epochs":
        return EpochSampler(train_nbytes, block)
    if cfg.sampling == "random":
        return ByteAlignedSampler(train_nbytes, block)
    raise ConfigError(f"train.sampling={cfg.sampling!r} is unknown; choose one of {SAMPLINGS}")


# ---------------------------------------------------------------- device


def resolve_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def autocast_factory(cfg: TrainConfig, device: torch.device) -> Callable[[], Any]:
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ---------------------------------------------------------------- the loop


@dataclass
class TrainState:
    step: int = 0  # optimizer steps completed
    tokens_seen: int = 0
    bytes_seen: int = 0
    train_wall_s: float = 0.0  # time inside training steps (excludes evals and checkpoints)
    elapsed_s: float = 0.0  # total wall time of the run so far
    diverged_at_step: int | None = None
    # Train losses of the log window still open: a checkpoint keeps them, so a run resumed
    # between two log steps reports the same train_loss as one that never stopped.
    window_losses: list[float] = field(default_factory=list)


class Diverged(Exception):
    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"non-finite training loss {loss} at step {step}")
        self.step = step


class Trainer:
    """Runs the optimizer loop; writes metrics rows and checkpoints through callbacks.

    The trainer knows nothing about arms or files: `on_metrics(row)` receives each
    log/eval row and `save_checkpoint(payload)` each checkpoint (rank 0 only).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        train_ids: np.ndarray,
        train_nbytes: np.ndarray,
        val_ids: np.ndarray,
        val_nbytes: np.ndarray,
        seed: int,
        dist: Dist | None = None,
        device: torch.device | None = None,
        val_charges: np.ndarray | None = None,
        block: int | None = None,
        flops_per_token: float | None = None,
        freeze_embedding_steps: int = 0,
    ) -> None:
        """`block`: training and periodic-eval context in tokens (default and maximum:
        the model's block_size). `flops_per_token`: training FLOPs per token at that
        context (`embinit.params.flops_per_token`), needed for train.budget=flops.
        `freeze_embedding_steps`: the token embedding (and so a tied head) takes no update
        in the first that many optimizer steps (>= total_steps: frozen for the whole run).
        """
        self.cfg = cfg
        self.dist = dist or Dist()
        self.device = device or resolve_device(cfg)
        self.seed = seed
        self.raw_model = model.to(self.device)
        max_block = model.cfg.block_size
        self.block = max_block if block is None else int(block)
        if not 1 <= self.block <= max_block:
            raise ConfigError(
                f"the training context of {self.block} tokens must be in [1, model.block_size="
                f"{max_block}] (the position table's size); raise model.block_size or lower "
                "train.context_bytes"
            )
        self.train_ids, self.train_nbytes = train_ids, train_nbytes
        self.val_ids, self.val_nbytes, self.val_charges = val_ids, val_nbytes, val_charges
        self.sampler = make_sampler(cfg, train_nbytes, self.block)
        self.windows_per_step = cfg.batch_size * cfg.grad_accum * self.dist.world_size
        self.tokens_per_step = self.windows_per_step * self.block
        n_train = len(train_ids) - 1  # every token after the first is a target
        if self.tokens_per_step > n_train:
            raise DataError(
                f"one optimizer step reads {self.tokens_per_step} tokens (train.batch_size="
                f"{cfg.batch_size} x train.grad_accum={cfg.grad_accum} x {self.dist.world_size} "
                f"rank(s) x {self.block}-token context), more than the {n_train} tokens of the "
                "training split; lower train.batch_size or model.block_size, or use a larger corpus"
            )
        self.train_bytes = self.sampler.total_bytes
        # Non-overlapping training windows (one epoch under sampling=epochs).
        self.n_windows = n_train // self.block
        self.total_steps = plan_steps(
            cfg, self.tokens_per_step, Fraction(self.train_bytes, max(n_train, 1)),
            train_bytes=self.train_bytes, n_windows=self.n_windows,
            windows_per_step=self.windows_per_step, flops_per_token=flops_per_token,
        )
        self.autocast = autocast_factory(cfg, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.optimizer = self.raw_model.configure_optimizer(
            cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), self.device.type
        )
        # The embedding is in the optimizer from the start and is frozen by dropping its
        # gradient after clipping: AdamW skips a parameter whose grad is None (no update, no
        # decay), so an unfrozen step later needs no new optimizer and a resume needs no
        # special case. Its gradient is still computed and counted in the clipping norm, so a
        # frozen arm clips over the same parameters as a trained one (see `train_step`).
        self.freeze_embedding_steps = int(freeze_embedding_steps)
        if self.freeze_embedding_steps and self.dist.enabled:
            raise ConfigError("init.freeze / init.freeze_steps are not supported with more than "
                              "one rank (DDP fixes which parameters take gradients); run on one")
        model_to_run: torch.nn.Module = self.raw_model
        if cfg.compile:
            model_to_run = torch.compile(model_to_run)  # type: ignore[assignment]
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model_to_run = DistributedDataParallel(model_to_run, device_ids=ids)
        self.model = model_to_run
        self.val_subset = spaced_subset(eval_windows(len(val_ids), self.block), cfg.eval_windows)
        self.state = TrainState()

    @property
    def epochs_per_step(self) -> float:
        """Passes over the training split per optimizer step (in expectation when random).

        Exact epochs seen are state.bytes_seen / train_bytes: bytes_seen sums the target
        bytes of the windows actually read.
        """
        if isinstance(self.sampler, EpochSampler):
            return self.windows_per_step / self.n_windows
        return self.tokens_per_step / (len(self.train_ids) - 1)

    # -- checkpoint state (same code path for fresh start and resume)

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": s.step,
            "tokens_seen": s.tokens_seen,
            "bytes_seen": s.bytes_seen,
            "train_wall_s": s.train_wall_s,
            "elapsed_s": s.elapsed_s,
            "window_losses": list(s.window_losses),
            "torch_rng": torch.get_rng_state(),
            "total_steps": self.total_steps,
        }
        if self.device.type == "cuda":  # dropout on the GPU draws from the device's generator
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.raw_model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state = TrainState(
            step=int(ckpt["step"]),
            tokens_seen=int(ckpt["tokens_seen"]),
            bytes_seen=int(ckpt["bytes_seen"]),
            train_wall_s=float(ckpt["train_wall_s"]),
            elapsed_s=float(ckpt["elapsed_s"]),
            window_losses=[float(x) for x in ckpt.get("window_losses", [])],
        )
        torch.set_rng_state(ckpt["torch_rng"])
        if "cuda_rng" in ckpt and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)

    # -- pieces of a step

    def _micro_batches(self, step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        cfg, d = self.cfg, self.dist
        starts = global_batch_starts(
            self.sampler, self.seed, step, cfg.grad_accum, d.world_size, cfg.batch_size
        )
        self._step_bytes = window_target_bytes(self.train_nbytes, starts, self.block)
        pin = self.device.type == "cuda"
        for m in range(cfg.grad_accum):
            x, y = gather_windows(self.train_ids, starts[m, d.rank], self.block)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            if pin:
                xt, yt = xt.pin_memory(), yt.pin_memory()
            yield xt.to(self.device, non_blocking=True), yt.to(self.device, non_blocking=True)

    def train_step(self, step: int) -> float:
        cfg = self.cfg
        frozen = step < self.freeze_embedding_steps
        lr = lr_at(step, self.total_steps, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        for m, (x, y) in enumerate(self._micro_batches(step)):
            last = m == cfg.grad_accum - 1
            # DDP: all-reduce gradients only on the last micro-batch of the step.
            sync = contextlib.nullcontext() if last or not self.dist.enabled else self.model.no_sync()
            with sync:
                with self.autocast():
                    # Keep only the loss: logits held through backward (B*T*V floats) cost
                    # a quarter of the step on CPU at V=65536, and peak memory on GPU.
                    loss = self.model(x, y)[1]
                (loss / cfg.grad_accum).backward()
            total += loss.detach()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        if frozen:
            # Counted in the norm above, never applied: withholding the embedding's gradient
            # from the backward instead would leave it out of the norm, so a frozen arm would
            # be clipped less than a trained one and freezing would be confounded with
            # clipping. (Tied: the head is the same tensor, so it is frozen too.)
            self.raw_model.wte.weight.grad = None
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        mean_loss = float(total) / cfg.grad_accum
        if self.dist.enabled:
            # Every rank must see a NaN on any rank, or the healthy ones wait forever at the
            # next gradient all-reduce; the ranks' mean is also the loss worth logging.
            mean_loss = self.dist.all_reduce_sum([mean_loss])[0] / self.dist.world_size
        if not math.isfinite(mean_loss):
            raise Diverged(step + 1, mean_loss)
        return mean_loss

    def eval_val_subset(self) -> EvalResult:
        return evaluate(
            self.raw_model, self.val_ids, self.val_nbytes, self.val_subset, self.device,
            self.cfg.batch_size, self.autocast, self.dist, self.val_charges,
        )

    # -- the loop

    def fit(
        self,
        on_metrics: Callable[[dict[str, Any]], None],
        save_checkpoint: Callable[[dict[str, Any]], None],
    ) -> TrainState:
        """Train from `self.state.step` to `total_steps`; raises Diverged on NaN/inf loss."""
        cfg, s = self.cfg, self.state
        self.model.train()
        t_run = time.perf_counter() - s.elapsed_s

        def emit(train_loss: float | None, ev: EvalResult | None, lr: float) -> None:
            s.elapsed_s = time.perf_counter() - t_run
            row = {
                "step": s.step, "tokens_seen": s.tokens_seen, "bytes_seen": s.bytes_seen,
                "train_loss": train_loss, "val_loss": ev.loss if ev else None,
                "val_bpb": ev.bpb if ev else None,
                "val_bpb_lossless": ev.bpb_lossless if ev else None,
                "lr": lr, "elapsed_s": round(s.elapsed_s, 3),
            }
            if self.dist.is_main:
                on_metrics(row)
                # The progress bar is off when stderr is not a terminal (sweeps, log files):
                # the log then carries the training loss too, at every log step.
                train = f"train loss {train_loss:.4f}, " if train_loss is not None else ""
                if ev is not None:  # the periodic subset, not the final evaluation
                    lossless = (f" (lossless {ev.bpb_lossless:.4f})"
                                if ev.bpb_lossless != ev.bpb else "")
                    log.info("step %d/%d: %speriodic val subset (%d windows): val loss %.4f, "
                             "val bpb %.4f%s, %.0f s", s.step, self.total_steps, train,
                             len(self.val_subset), ev.loss, ev.bpb, lossless, s.elapsed_s)
                elif train_loss is not None and not sys.stderr.isatty():
                    log.info("step %d/%d: %slr %.2e, %.0f s", s.step, self.total_steps, train,
                             lr, s.elapsed_s)

        if s.step == 0:
            emit(None, self.eval_val_subset(), 0.0)  # the initialization itself, before training
        pbar = _progress(self.total_steps, s.step, self.dist.is_main)
        while s.step < self.total_steps:
            t0 = time.perf_counter()
            loss = self.train_step(s.step)
            s.train_wall_s += time.perf_counter() - t0
            s.step += 1
            s.tokens_seen += self.tokens_per_step
            s.bytes_seen += self._step_bytes
            s.window_losses.append(loss)
            pbar.update(1)
            pbar.set_postfix(loss=f"{loss:.3f}")
            last = s.step == self.total_steps
            do_log = s.step % cfg.log_interval == 0 or last
            do_eval = s.step % cfg.eval_interval == 0 or last
            if do_log or do_eval:
                # train_step already averaged each loss over ranks: every rank holds the same.
                train_loss = float(np.mean(s.window_losses)) if s.window_losses else None
                lr = lr_at(s.step - 1, self.total_steps, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
                emit(train_loss, self.eval_val_subset() if do_eval else None, lr)
                s.window_losses = []
            if (s.step % cfg.ckpt_interval == 0 or last) and self.dist.is_main:
                s.elapsed_s = time.perf_counter() - t_run
                save_checkpoint(self.state_dict())
        pbar.close()
        s.elapsed_s = time.perf_counter() - t_run
        return s


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (sweeps, CI, log files).
    return tqdm(total=total, initial=initial, desc="train", unit="step",
                disable=None if enabled else True,
                leave=False, dynamic_ncols=True)


