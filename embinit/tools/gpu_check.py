"""One-command GPU check: CUDA tests, gpt2_small benchmarks and two short runs -> report.md.

``python -m embinit.tools.gpu_check --out results/gpu`` (``make gpu-check``), from a checkout,
on one H100/H200 after ``make install TORCH=torch`` or, on a node without internet, after
``make install-offline`` onto the node's own torch (docs/gpu.md), with no network:

1. the CUDA tests (``tests/unit/tools/test_bench.py -k "cuda or mfu"``: allocator-measured
   memory, the chunked loss's memory saving, MFU >= 0.45 at gpt2_small bf16 compiled);
2. ``embinit.tools.bench`` at the gpt2_small shape (12 x 768, block 1024, batch 16, bf16,
   compiled) for V = 50,257 and V = 100,000, each with the plain and the chunked loss:
   tokens/s, MFU, peak memory;
3. two short gpt2_small runs on the embedded corpus, BPE + scratch and word + Word2Vec
   (``train=gpu`` with a steps budget, one micro-batch per step, eager: compiling would cost
   more than the 200 steps);

then writes ``report.md`` and ``gpu_check.json`` under ``--out``. Every step has its own
timeout and the whole check a budget (7.5 min by default): a step that does not fit is
reported as skipped, and the exit status is non-zero if any step failed or was skipped.

``--dry-run`` (``DRY=1 make gpu-check``) runs on CPU in seconds: it checks that the CUDA
tests are selected, parses every bench command with the bench's own parser and runs a tiny
CPU version of each bench mode, composes and validates every run's Hydra config, and trains
a 2-step CPU version of each run on a few documents. It writes ``<out>/dry_run/report.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CUDA_TESTS = ["tests/unit/tools/test_bench.py", "-k", "cuda or mfu"]
BENCH_VOCABS = (50_257, 100_000)
BENCH_CHUNKS = (0, 2048)  # plain loss, and 2048 positions per chunk (auto's size)
GPT2_SMALL_BENCH = ["--layers", "12", "--heads", "12", "--d-model", "768", "--block", "1024",
                    "--batch", "16"]
RUN_STEPS = 200  # x 16 x 1024 tokens = 3.3M tokens: a few epochs of the embedded corpus
RUN_ARMS = ("bpe_scratch", "word_word2vec")
BUDGET_S = 450.0  # the whole check, under the 8 minutes it must fit


@dataclass
class Step:
    """One command of the check, and what came of it."""

    name: str
    argv: list[str]
    timeout_s: float
    kind: str  # tests | bench | run
    status: str = "pending"  # passed | failed | skipped | pending
    wall_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    tail: str = ""


def bench_argv(vocab: int, chunk: int) -> list[str]:
    return ["-m", "embinit.tools.bench", *GPT2_SMALL_BENCH, "--vocab", str(vocab),
            "--loss-chunk", str(chunk), "--device", "cuda", "--dtype", "bfloat16", "--compile",
            "--steps", "10", "--warmup", "2"]


def run_overrides(arm: str, out: Path) -> list[str]:
    """The Hydra overrides of one short gpt2_small run (train=gpu, a steps budget)."""
    # Eager (train.compile=false): a 200-step run would spend most of its time compiling; the
    # compiled step's speed is what the benches measure.
    over = [f"arm={arm}", "model=gpt2_small", "train=gpu", "train.compile=false",
            "train.budget=steps",
            f"train.max_steps={RUN_STEPS}", "train.grad_accum=1", "train.warmup_steps=20",
            f"train.eval_interval={RUN_STEPS}", f"train.ckpt_interval={RUN_STEPS}",
            "train.eval_windows=50", "study.name=gpu_check", "logger=none", "seed=0",
            f"paths.experiments={out / 'experiments'}"]
    if arm.endswith("word2vec"):
        over.append("init.workers=8")  # 768-d Word2Vec: threads (not bit-reproducible)
    return over


def plan(out: Path) -> list[Step]:
    py = sys.executable
    steps = [Step("CUDA tests", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 *CUDA_TESTS], 200, "tests")]
    for v in BENCH_VOCABS:
        for c in BENCH_CHUNKS:
            label = "plain loss" if c == 0 else f"loss in chunks of {c}"
            steps.append(Step(f"bench V={v:,}, {label}", [py, *bench_argv(v, c)], 150, "bench"))
    for arm in RUN_ARMS:
        steps.append(Step(f"run {arm}", [py, str(ROOT / "run.py"), *run_overrides(arm, out)],
                          240, "run"))
    return steps


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                return obj
    return {}


def run_summary(out: Path, arm: str) -> dict[str, Any]:
    """Figures of a finished run, read through the record's own reader."""
    from embinit.record import find_runs, read_summary

    for ref in find_runs(out / "experiments" / "gpu_check"):
        _, summary = read_summary(ref.dir)
        if summary and f"{summary.get('vocab')}_{summary.get('init')}" == arm:
            train = summary.get("train") or {}
            val = summary.get("val") or {}
            return {"arm": summary.get("arm"), "status": summary.get("status"),
                    "steps": train.get("steps"), "tokens_per_s": train.get("tokens_per_s"),
                    "train_wall_s": train.get("train_wall_s"), "val_bpb": val.get("bpb"),
                    "vocab_size": summary.get("vocab_size"), "dir": str(ref.dir)}
    return {}


def execute(steps: list[Step], out: Path, budget_s: float) -> None:
    t_start = time.monotonic()
    for step in steps:
        left = budget_s - (time.monotonic() - t_start)
        if left < 30:
            step.status = "skipped"
            step.tail = f"not started: {left:.0f} s of the {budget_s:.0f} s budget left"
            continue
        t0 = time.monotonic()
        try:
            proc = subprocess.run(step.argv, cwd=ROOT, capture_output=True, text=True,
                                  timeout=min(step.timeout_s, left))
            text = proc.stdout + proc.stderr
            step.status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired as e:
            text = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            step.status = "failed"
            text += f"\ntimed out after {min(step.timeout_s, left):.0f} s"
        step.wall_s = round(time.monotonic() - t0, 1)
        step.tail = "\n".join(text.strip().splitlines()[-15:])
        if step.kind == "bench":
            step.result = _last_json(text)
        elif step.kind == "run" and step.status == "passed":
            step.result = run_summary(out, step.name.removeprefix("run "))
        print(f"[gpu-check] {step.status:7s} {step.wall_s:6.1f} s  {step.name}", flush=True)


# ---------------------------------------------------------------- the report


def _gib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**30:.2f}"


def report(steps: list[Step], device: str, dry: bool) -> str:
    lines = ["# GPU check" + (" (dry run on CPU: commands compose; no figures)" if dry else ""),
             "", f"Device: {device}. Written by `python -m embinit.tools.gpu_check`.", "",
             "| step | status | wall s |", "|---|---|---:|"]
    lines += [f"| {s.name} | {s.status} | {s.wall_s:.1f} |" for s in steps]
    benches = [s for s in steps if s.kind == "bench" and s.result]
    if benches:
        lines += ["", "## gpt2_small throughput and memory (bf16, compiled, batch 16 x 1024)", "",
                  "| V | loss | tokens/s | MFU | TFLOP/s | peak GiB |",
                  "|---:|---|---:|---:|---:|---:|"]
        for s in benches:
            r = s.result
            chunk = r.get("loss_chunk")
            mfu = r.get("mfu")
            lines.append(
                f"| {r['shape']['vocab']:,} | {'plain' if not chunk else f'chunks of {chunk}'} | "
                f"{r['tokens_per_s']:,.0f} | {'-' if mfu is None else f'{mfu:.3f}'} | "
                f"{r['achieved_tflops']:.1f} | {_gib(r.get('peak_bytes'))} |")
    runs = [s for s in steps if s.kind == "run" and s.result]
    if runs:
        lines += ["", f"## Short gpt2_small runs ({RUN_STEPS} steps x 16 x 1024 tokens, "
                  "embedded corpus, train=gpu, eager: compile off)", "",
                  "| arm | V | steps | tokens/s | train wall s | val bpb |",
                  "|---|---:|---:|---:|---:|---:|"]
        for s in runs:
            r = s.result
            tps, wall, bpb = r.get("tokens_per_s"), r.get("train_wall_s"), r.get("val_bpb")
            lines.append(f"| {r.get('arm')} | {r.get('vocab_size') or 0:,} | {r.get('steps')} | "
                         f"{'-' if tps is None else f'{tps:,.0f}'} | "
                         f"{'-' if wall is None else f'{wall:.0f}'} | "
                         f"{'-' if bpb is None else f'{bpb:.3f}'} |")
    bad = [s for s in steps if s.status != "passed"]
    if bad:
        lines += ["", "## Output of the steps that did not pass", ""]
        for s in bad:
            lines += [f"### {s.name} ({s.status})", "", "```", s.tail, "```", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- dry run


TINY_BENCH = ["--layers", "1", "--heads", "2", "--d-model", "32", "--block", "16", "--batch",
              "2", "--steps", "1", "--warmup", "0", "--device", "cpu", "--dtype", "float32"]
TINY_RUN = ["train=smoke", "train.max_steps=2", "train.num_threads=1", "vocab.size=300",
            "model.n_layer=1", "model.n_head=2", "model.d_model=32", "model.block_size=32",
            "data.max_docs=30", "init.epochs=1", "train.eval_windows=2"]


def _compose(overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir

    from embinit.config import register_configs, validate

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "embinit" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    validate(cfg)
    return cfg


class _Collected:
    """pytest plugin: the node ids left after -k selection."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: Any) -> None:
        self.ids = [item.nodeid for item in session.items]


def _dry_tests(step: Step) -> None:
    import pytest

    plugin = _Collected()
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider",
                            f"--rootdir={ROOT}", *[str(ROOT / a) if a.endswith(".py") else a
                                                   for a in CUDA_TESTS]], plugins=[plugin])
    if code != 0 or len(plugin.ids) < 3:
        raise RuntimeError(f"the CUDA tests were not selected (pytest {code}): {plugin.ids}")
    step.result = {"selected": plugin.ids}


def _dry_bench(step: Step) -> None:
    from embinit.tools import bench

    argv = step.argv[step.argv.index("embinit.tools.bench") + 1:]
    bench._parser().parse_args(argv)  # the GPU command parses as written
    vocab = int(argv[argv.index("--vocab") + 1])
    chunk = argv[argv.index("--loss-chunk") + 1]
    tiny = [*TINY_BENCH, "--vocab", str(vocab // 100), "--loss-chunk", "0" if chunk == "0" else "8"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        bench.main(tiny)
    step.result = _last_json(buf.getvalue())
    if not step.result.get("tokens_per_s"):
        raise RuntimeError(f"bench printed no figures: {buf.getvalue()[-300:]}")


def _tiny_run_overrides(overrides: list[str], work: Path, arm: str) -> list[str]:
    """The run's overrides at a CPU size: its arm, study and paths, a 2-step tiny model."""
    cfg = _compose(overrides)  # the GPU run's config composes and validates as written
    if cfg.model.name != "gpt2_small" or cfg.train.max_steps != RUN_STEPS:
        raise RuntimeError(f"{arm}: composed {cfg.model.name}, {cfg.train.max_steps} steps")
    keep = [o for o in overrides if o.startswith(("arm=", "study.", "logger=", "seed="))]
    # Own cache per arm: the two tiny runs train at once.
    tiny = [*keep, *TINY_RUN, f"paths.experiments={work / 'experiments'}",
            f"paths.cache={work / ('cache_' + arm)}"]
    _compose(tiny)
    return tiny


def dry_run(steps: list[Step], work: Path) -> None:
    """Check every command composes, on CPU, in seconds; fills each step's status.

    The tiny runs' records and caches go to `work` (a temporary folder), not beside the report.
    """
    procs: dict[str, tuple[subprocess.Popen[str], float]] = {}
    for step in steps:
        t0 = time.monotonic()
        try:
            if step.kind == "tests":
                _dry_tests(step)
            elif step.kind == "bench":
                _dry_bench(step)
            else:  # started here, awaited below: the two tiny runs train concurrently
                tiny = _tiny_run_overrides(step.argv[2:], work, step.name.removeprefix("run "))
                procs[step.name] = (subprocess.Popen(
                    [sys.executable, str(ROOT / "run.py"), *tiny], cwd=ROOT, text=True,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE), t0)
                continue
            step.status = "passed"
        except Exception as e:  # report every broken command, not only the first
            step.status, step.tail = "failed", f"{type(e).__name__}: {e}"
        step.wall_s = round(time.monotonic() - t0, 1)
    for step in steps:
        if step.name not in procs:
            continue
        proc, t0 = procs[step.name]
        _, err = proc.communicate(timeout=120)
        step.result = run_summary(work, step.name.removeprefix("run "))
        ok = proc.returncode == 0 and step.result.get("steps") == 2
        step.status = "passed" if ok else "failed"
        step.tail = "" if ok else err[-1500:]
        step.wall_s = round(time.monotonic() - t0, 1)
    for step in steps:
        print(f"[gpu-check --dry-run] {step.status:7s} {step.wall_s:5.1f} s  {step.name}",
              flush=True)


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embinit.tools.gpu_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "results" / "gpu")
    p.add_argument("--dry-run", action="store_true",
                   help="on CPU: check that every command composes (seconds), no figures")
    p.add_argument("--budget-s", type=float, default=BUDGET_S,
                   help=f"wall-clock budget of the whole check (default {BUDGET_S:.0f})")
    args = p.parse_args(argv)
    out = (args.out / "dry_run" if args.dry_run else args.out).resolve()
    shutil.rmtree(out / "experiments", ignore_errors=True)  # each check trains afresh
    out.mkdir(parents=True, exist_ok=True)
    steps = plan(out)
    if args.dry_run:
        with tempfile.TemporaryDirectory(prefix="embinit-gpu-check-") as work:
            dry_run(steps, Path(work))
        device = "cpu (dry run)"
    else:
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device visible; use --dry-run on CPU", file=sys.stderr)
            return 2
        device = torch.cuda.get_device_name(0)
        execute(steps, out, args.budget_s)
    from embinit.storage import atomic_write_json, atomic_write_text

    atomic_write_text(out / "report.md", report(steps, device, args.dry_run))
    atomic_write_json(out / "gpu_check.json", {
        "device": device, "dry_run": args.dry_run,
        "steps": [{"name": s.name, "argv": s.argv, "status": s.status, "wall_s": s.wall_s,
                   "result": s.result} for s in steps]})
    print(f"wrote {out / 'report.md'}", file=sys.stderr)
    return 0 if all(s.status == "passed" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
