"""Throughput and memory benchmarks of the real trainer step.

``python -m embinit.tools.bench --layers 4 --heads 4 --d-model 256 --block 256 --batch 8
--vocab 8192 --steps 20`` builds the real `GPT` and the real `Trainer` on a stream of
random tokens and times ``Trainer.train_step`` (sampling, host-to-device copy, forward,
backward, clipping, optimizer, loss readback: everything the trainer does per step) after
warm-up. It prints one JSON line: ``tokens_per_s`` (median step), step times, the parameter
breakdown, FLOPs per token, achieved TFLOP/s and, on CUDA, MFU.

FLOPs per token (``embinit.params.flops_per_token``, forward + backward):

    6 * (12 * L * d^2 + V * d) + 12 * L * T * d

-- every weight matmul including the output layer (counted even when tied), plus the
attention score/value matmuls over a context of T = block tokens (no causal discount).
MFU divides achieved FLOP/s by the device's dense bf16 peak (``embinit.params.peak_flops``,
or ``--peak-tflops``).

``--reference`` also times a plain GPT of the same shape (pre-LN, SDPA, tied head, AdamW, a
textbook loop: `ReferenceGPT` below) in the same process, alternating steps with the
trainer so both see the same machine state, and reports the ratio.

``--grid --out results/bench`` runs vocab 8192/32768/65536 at that shape (CPU, and CUDA if
present) and writes ``bench.json`` and ``throughput.png``. ``--memory`` reports, per arm
vocabulary at ``model=gpt2_small``, parameter, gradient and AdamW-state bytes and the
measured peak memory of a training step with the plain loss and with the loss in chunks of
positions (``model.loss_chunk``; ``--loss-chunk`` sets the chunk) (CUDA:
``max_memory_allocated``; CPU: peak RSS of a fresh subprocess per configuration).

One module of ~540 lines on purpose: the reference model, the timing loop and the memory
child process must stay side by side, so a reader can check that both sides of the
comparison are timed the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from embinit.config import ModelConfig, TrainConfig
from embinit.params import flops_per_token, mfu, param_breakdown, peak_flops
from embinit.run.data.cache import ids_dtype
from embinit.run.model import AUTO_LOSS_CHUNK, GPT
from embinit.run.train.loop import Trainer, autocast_factory
from embinit.storage import atomic_write_bytes, atomic_write_json

FLOPS_FORMULA = "6*(12*L*d^2 + V*d) + 12*L*T*d"
GRID_VOCABS = (8192, 32768, 65536)
# Arms' vocabulary sizes for the memory table: BPE 8k / GPT-2's 50257; word-level 16k-200k.
MEMORY_ARMS = (("bpe", 8192), ("bpe", 50257), ("word", 16384), ("word", 100000),
               ("word", 200000))
STREAM_TOKENS = 1 << 20  # random tokens the sampler draws windows from
FP32 = 4  # bytes


@dataclass(frozen=True)
class Shape:
    layers: int = 4
    heads: int = 4
    d_model: int = 256
    block: int = 256
    batch: int = 8
    vocab: int = 8192
    tied: bool = True
    loss_chunk: int = -1  # model.loss_chunk: -1 auto, 0 plain, N positions per chunk

    def model_config(self) -> ModelConfig:
        return ModelConfig(name="bench", n_layer=self.layers, n_head=self.heads,
                           d_model=self.d_model, block_size=self.block, dropout=0.0, bias=True,
                           tie_embeddings=self.tied, loss_chunk=self.loss_chunk)


# ---------------------------------------------------------------- the reference


class _RefBlock(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_head, C // self.n_head).permute(
            2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class ReferenceGPT(nn.Module):
    """A plain pre-LN GPT (SDPA attention, tied head unless --untied): the trainer's yardstick."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        d = shape.d_model
        self.wte = nn.Embedding(shape.vocab, d)
        self.wpe = nn.Embedding(shape.block, d)
        self.blocks = nn.ModuleList(_RefBlock(d, shape.heads) for _ in range(shape.layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, shape.vocab, bias=False)
        if shape.tied:
            self.head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))


def reference_step_fn(shape: Shape, ids: np.ndarray, device: torch.device, dtype: str,
                      compile_model: bool) -> Callable[[int], float]:
    """One plain training step per call: random windows, forward, backward, clip, AdamW."""
    model = ReferenceGPT(shape).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1,
                            fused=device.type == "cuda")
    run = torch.compile(model) if compile_model else model
    autocast = autocast_factory(TrainConfig(dtype=dtype), device)
    rng = np.random.default_rng(0)
    offsets = np.arange(shape.block + 1)

    def step(_: int) -> float:
        starts = rng.integers(0, len(ids) - shape.block - 1, size=shape.batch)
        chunk = torch.from_numpy(ids[starts[:, None] + offsets].astype(np.int64)).to(device)
        with autocast():
            loss = run(chunk[:, :-1], chunk[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


# ---------------------------------------------------------------- the real trainer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("embinit.tools.bench: --device cuda but no CUDA device is visible")
    return torch.device(name)


def random_stream(vocab: int, n: int = STREAM_TOKENS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random token ids (the cache's dtype for this vocabulary) and 4 bytes per token."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=n).astype(ids_dtype(vocab))
    nbytes = np.full(n, 4, dtype=np.uint32)
    return ids, nbytes


def make_trainer(shape: Shape, device: torch.device, dtype: str, compile_model: bool,
                 steps: int, grad_accum: int = 1, seed: int = 0) -> Trainer:
    """The real Trainer, configured as a run would configure it, on random tokens."""
    ids, nbytes = random_stream(shape.vocab, seed=seed)
    n_val = 2 * shape.block + 1
    cfg = TrainConfig(name="bench", device=device.type, dtype=dtype, compile=compile_model,
                      batch_size=shape.batch, grad_accum=grad_accum, budget="steps", max_steps=steps,
                      max_bytes=None, warmup_steps=min(20, steps), eval_windows=1)
    torch.manual_seed(seed)
    model = GPT(shape.model_config(), shape.vocab, seed=seed)
    return Trainer(cfg, model, ids, nbytes, ids[:n_val], nbytes[:n_val], seed=seed,
                   device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(fns: Sequence[Callable[[int], float]], device: torch.device, warmup: int,
               steps: int) -> list[list[float]]:
    """Seconds per step of each function, interleaved step by step, after `warmup` steps each."""
    for i in range(warmup):
        for fn in fns:
            fn(i)
    _sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for i in range(warmup, warmup + steps):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn(i)
            _sync(device)
            out.append(time.perf_counter() - t0)
    return times


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def bench(shape: Shape, *, steps: int = 20, warmup: int = 5, device: str = "auto",
          dtype: str = "auto", compile_model: bool = False, reference: bool = False,
          peak_tflops: float | None = None, grad_accum: int = 1) -> dict[str, Any]:
    """Time the trainer's step (and optionally the reference's) and describe the result."""
    dev = resolve_device(device)
    trainer = make_trainer(shape, dev, dtype, compile_model, warmup + steps, grad_accum)
    fns: list[Callable[[int], float]] = [trainer.train_step]
    if reference:
        fns.append(reference_step_fn(shape, trainer.train_ids, dev, dtype, compile_model))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = time_steps(fns, dev, warmup, steps)
    tokens_per_step = trainer.tokens_per_step
    mcfg = shape.model_config()
    fpt = flops_per_token(mcfg, shape.vocab)
    median = statistics.median(times[0])
    tps = tokens_per_step / median
    autocast_bf16 = autocast_factory(trainer.cfg, dev) is not contextlib.nullcontext
    amp = "bfloat16" if autocast_bf16 else "float32"
    peak = peak_tflops * 1e12 if peak_tflops else (
        peak_flops(device_name(dev), amp) if dev.type == "cuda" else None)
    out: dict[str, Any] = {
        "tokens_per_s": round(tps, 1),
        "step_ms_median": round(1e3 * median, 2),
        "step_ms_min": round(1e3 * min(times[0]), 2),
        "step_ms_max": round(1e3 * max(times[0]), 2),
        "tokens_per_step": tokens_per_step,
        "shape": asdict(shape),
        "grad_accum": grad_accum,
        "steps": steps,
        "warmup": warmup,
        "params": param_breakdown(mcfg, shape.vocab),
        "flops_per_token": fpt,
        "flops_formula": FLOPS_FORMULA,
        "achieved_tflops": round(tps * fpt / 1e12, 4),
        "peak_tflops": round(peak / 1e12, 1) if peak else None,
        "mfu": round(mfu(tps, fpt, peak), 4) if peak else None,
        "device": dev.type,
        "device_name": device_name(dev),
        "dtype": amp,
        "compile": compile_model,
        "loss_chunk": trainer.raw_model.loss_chunk_size,  # effective: 0 = plain cross-entropy
        "fused_adamw": bool(trainer.optimizer.defaults.get("fused")),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        # CUDA: the allocator's peak over warm-up and timed steps (model, optimizer included).
        "peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
    }
    if reference:
        ref_median = statistics.median(times[1])
        out["reference_tokens_per_s"] = round(tokens_per_step / ref_median, 1)
        out["reference_step_ms_median"] = round(1e3 * ref_median, 2)
        # Same tokens per step (grad_accum=1 in the reference): a ratio of median step times.
        out["ratio_vs_reference"] = round(ref_median * grad_accum / median, 3) \
            if grad_accum == 1 else None
    return out


# ---------------------------------------------------------------- grid and plot


def run_grid(base: Shape, out_dir: Path, steps: int, warmup: int, reference: bool,
             compile_cuda: bool) -> dict[str, Any]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dev in devices:
        for vocab in GRID_VOCABS:
            row = bench(replace(base, vocab=vocab), steps=steps, warmup=warmup, device=dev,
                        compile_model=compile_cuda and dev == "cuda",
                        reference=reference)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {"shape": asdict(base), "vocabs": list(GRID_VOCABS), "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "bench.json", result)
    atomic_write_bytes(out_dir / "throughput.png", plot_grid(rows))
    return result


def plot_grid(rows: list[dict[str, Any]]) -> bytes:
    """Tokens/s against vocabulary size, and the output layer's share of the FLOPs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for dev in sorted({r["device"] for r in rows}):
        rs = [r for r in rows if r["device"] == dev]
        v = [r["shape"]["vocab"] for r in rs]
        ax.plot(v, [r["tokens_per_s"] for r in rs], "o-", label=f"embinit ({dev})")
        if all("reference_tokens_per_s" in r for r in rs):
            ax.plot(v, [r["reference_tokens_per_s"] for r in rs], "s--",
                    label=f"plain reference ({dev})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("vocabulary size")
    ax.set_ylabel("training tokens / s (median step)")
    ax.legend()
    ax.grid(alpha=0.3)
    first = [r for r in rows if r["device"] == rows[0]["device"]]
    v = [r["shape"]["vocab"] for r in first]
    share = [6 * r["shape"]["vocab"] * r["shape"]["d_model"] / r["flops_per_token"] for r in first]
    ax2.bar([str(x) for x in v], share)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("vocabulary size")
    ax2.set_ylabel("output layer's share of FLOPs / token")
    s = rows[0]["shape"]
    fig.suptitle(f"L={s['layers']} d={s['d_model']} T={s['block']} batch={s['batch']}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------- memory


GPT2_SMALL = Shape(layers=12, heads=12, d_model=768, block=1024, batch=16, vocab=50257)


def memory_row(vocab_name: str, vocab: int, shape: Shape, device: str, dtype: str,
               compile_model: bool) -> dict[str, Any]:
    """Analytic bytes at gpt2_small (block 1024) plus the measured peak of one step at `shape`."""
    analytic = param_breakdown(replace(GPT2_SMALL, vocab=vocab).model_config(), vocab)["total"]
    row: dict[str, Any] = {
        "arm_vocab": vocab_name,
        "vocab_size": vocab,
        "params": analytic,
        "param_bytes": analytic * FP32,
        "grad_bytes": analytic * FP32,
        "adamw_state_bytes": 2 * analytic * FP32,  # exp_avg and exp_avg_sq, fp32
        "training_state_bytes": 4 * analytic * FP32,  # weights + grads + two moments
    }
    dev = resolve_device(device)
    if dev.type == "cuda":
        row.update(_measure_step_memory(shape, dev, dtype, compile_model))
    else:  # a fresh process per config: ru_maxrss is a high-water mark that never goes down
        cmd = [sys.executable, "-m", "embinit.tools.bench", "--memory-child", json.dumps(asdict(shape)),
               "--device", "cpu", "--dtype", dtype]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return row


def _peak_rss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _proc_status_bytes(field: str) -> int | None:
    """VmRSS / VmHWM of this process from /proc (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _proc_status_bytes("VmHWM") is not None


def _measure_step_memory(shape: Shape, dev: torch.device, dtype: str,
                         compile_model: bool) -> dict[str, Any]:
    """Peak memory of two trainer steps (the second one with optimizer state allocated).

    CUDA: the allocator's peak since the model was built. CPU: the RSS high-water mark,
    reset after the model is built when the kernel allows (so a transient of model
    construction, such as the untied head allocated before tying, is not counted).
    """
    runtime = _proc_status_bytes("VmRSS") or _peak_rss_bytes()  # torch loaded, no model yet
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    trainer = make_trainer(shape, dev, dtype, compile_model, steps=2)
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    build_peak = _peak_rss_bytes()
    reset = dev.type == "cpu" and _reset_peak_rss()
    for step in range(2):
        trainer.train_step(step)
    _sync(dev)
    opt_bytes = sum(t.numel() * t.element_size() for s in trainer.optimizer.state.values()
                    for t in s.values() if torch.is_tensor(t))
    out: dict[str, Any] = {
        "measured_batch": shape.batch,
        "measured_block": shape.block,
        "measured_params": trainer.raw_model.num_params(),
        "loss_chunk": trainer.raw_model.loss_chunk_size,
        "measured_optimizer_state_bytes": opt_bytes,
        "device": dev.type,
        "dtype": "bfloat16" if autocast_factory(trainer.cfg, dev) is not contextlib.nullcontext
        else "float32",
    }
    if dev.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(dev)
        out["peak_kind"] = "torch.cuda.max_memory_allocated"  # over two steps
    elif reset:
        out["peak_bytes"] = _proc_status_bytes("VmHWM")
        out["runtime_rss_bytes"] = runtime
        out["build_peak_rss_bytes"] = build_peak
        out["peak_kind"] = ("peak RSS over two steps (VmHWM reset after model build), "
                            "torch runtime included")
    else:
        out["peak_bytes"] = _peak_rss_bytes()
        out["runtime_rss_bytes"] = runtime
        out["peak_kind"] = "peak RSS of a fresh process (ru_maxrss), torch runtime included"
    del trainer
    return out


def memory_chunk(device_type: str, positions: int) -> int:
    """Positions per loss chunk for the memory table: the training default on CUDA; on CPU's
    small measured step (128 positions), an eighth of the positions so chunking shows."""
    return AUTO_LOSS_CHUNK if device_type == "cuda" else max(1, positions // 8)


def run_memory(device: str, dtype: str, compile_model: bool, batch: int | None,
               block: int | None, loss_chunk: int | None = None,
               arms: Sequence[tuple[str, int]] = MEMORY_ARMS) -> dict[str, Any]:
    """Per arm vocabulary: the step's peak with the plain loss and with the chunked loss."""
    dev = resolve_device(device)
    # CPU: one small step (batch 1, block 128) keeps every config within a laptop's memory.
    default = (16, 1024) if dev.type == "cuda" else (1, 128)
    shape_base = replace(GPT2_SMALL, batch=batch or default[0], block=block or default[1])
    chunk = loss_chunk or memory_chunk(dev.type, shape_base.batch * shape_base.block)
    rows = []
    for name, v in arms:
        plain = memory_row(name, v, replace(shape_base, vocab=v, loss_chunk=0), dev.type, dtype,
                           compile_model)
        chunked = memory_row(name, v, replace(shape_base, vocab=v, loss_chunk=chunk), dev.type,
                             dtype, compile_model)
        plain["chunked_peak_bytes"] = chunked["peak_bytes"]
        plain["chunked_loss_chunk"] = chunked["loss_chunk"]
        rows.append(plain)
    return {"mode": "memory", "model": "gpt2_small", "device": dev.type,
            "device_name": device_name(dev), "measured_batch": shape_base.batch,
            "measured_block": shape_base.block, "loss_chunk": chunk,
            "torch": torch.__version__, "rows": rows}


def memory_table(result: dict[str, Any]) -> str:
    """The memory result as a Markdown table (MiB)."""
    def mib(x: float) -> str:
        return f"{x / 2**20:,.0f}"

    lines = [
        f"gpt2_small, analytic bytes at block 1024 (fp32 master weights); measured peak of one "
        f"{result['device']} training step at batch {result['measured_batch']}, block "
        f"{result['measured_block']}, with the plain loss and with the loss in chunks of "
        f"{result['loss_chunk']} positions",
        "",
        "| arm vocab | V | params | param MiB | grad MiB | AdamW state MiB | weights+grads+AdamW MiB "
        "| step peak MiB, plain loss | step peak MiB, chunked loss | of which runtime MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['arm_vocab']} | {r['vocab_size']:,} | {r['params']:,} | "
                     f"{mib(r['param_bytes'])} | {mib(r['grad_bytes'])} | "
                     f"{mib(r['adamw_state_bytes'])} | {mib(r['training_state_bytes'])} | "
                     f"{mib(r['peak_bytes'])} | {mib(r['chunked_peak_bytes'])} | "
                     f"{mib(r['runtime_rss_bytes']) if 'runtime_rss_bytes' in r else '-'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m embinit.tools.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    s = Shape()
    p.add_argument("--layers", type=int, default=s.layers)
    p.add_argument("--heads", type=int, default=s.heads)
    p.add_argument("--d-model", type=int, default=s.d_model)
    p.add_argument("--block", type=int, default=None,
                   help=f"context length (default {s.block}; --memory: 128 on CPU, 1024 on CUDA)")
    p.add_argument("--batch", type=int, default=None,
                   help=f"sequences per micro-batch (default {s.batch}; --memory: 1 on CPU, 16 on CUDA)")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--vocab", type=int, default=s.vocab)
    p.add_argument("--loss-chunk", type=int, default=None,
                   help="positions per chunk of the output layer + loss (model.loss_chunk): "
                   "0 plain, -1 auto (default; chunks of 2048 from V=65,536); --memory measures "
                   "both plain and chunked (default 2048 on CUDA, positions/8 on CPU)")
    p.add_argument("--tied", action=argparse.BooleanOptionalAction, default=True,
                   help="tie the output layer to the token embedding (--untied: separate)")
    p.add_argument("--untied", dest="tied", action="store_false", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps after warm-up (default 20; --grid: 10)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5; --grid: 2)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on CPU (as train.dtype)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--reference", action="store_true",
                   help="also time a plain reference GPT of the same shape, interleaved")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="peak FLOP/s (in TFLOP/s) for MFU; default: embinit.params table")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--grid", action="store_true",
                   help="vocab 8192/32768/65536 on CPU (and CUDA): bench.json + throughput.png")
    p.add_argument("--memory", action="store_true",
                   help="per-arm parameter / optimizer / peak memory at model=gpt2_small")
    p.add_argument("--out", type=Path, default=None, help="--grid / --memory: output folder")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        shape = Shape(**json.loads(args.memory_child))
        print(json.dumps(_measure_step_memory(shape, torch.device("cpu"), args.dtype, False)))
        return 0
    shape = Shape(layers=args.layers, heads=args.heads, d_model=args.d_model,
                  block=args.block or Shape.block, batch=args.batch or Shape.batch,
                  vocab=args.vocab, tied=args.tied,
                  loss_chunk=-1 if args.loss_chunk is None else args.loss_chunk)
    if args.grid:  # fewer steps per point: the whole grid stays within a few minutes on 2 cores
        out = args.out or Path("results/bench")
        run_grid(shape, out, args.steps or 10, 2 if args.warmup is None else args.warmup,
                 reference=True, compile_cuda=args.compile)
        print(f"wrote {out / 'bench.json'} and {out / 'throughput.png'}", file=sys.stderr)
        return 0
    if args.memory:
        result = run_memory(args.device, args.dtype, args.compile, args.batch, args.block,
                            args.loss_chunk)
        print(json.dumps(result))
        print(memory_table(result), file=sys.stderr)
        if args.out:
            atomic_write_json(args.out / "memory.json", result)
        return 0
    steps, warmup = args.steps or 20, 5 if args.warmup is None else args.warmup
    if steps < 1 or warmup < 0:
        raise SystemExit("embinit.tools.bench: --steps must be >= 1 and --warmup >= 0")
    print(json.dumps(bench(shape, steps=steps, warmup=warmup, device=args.device,
                           dtype=args.dtype, compile_model=args.compile,
                           reference=args.reference, peak_tflops=args.peak_tflops,
                           grad_accum=args.grad_accum)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
