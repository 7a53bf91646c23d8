"""The benchmark CLI times the real trainer step and reports one JSON line; CUDA paths skip here."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from embinit.params import param_breakdown
from embinit.run.model import GPT, fused_adamw_supported
from embinit.tools import bench
from tests.conftest import ROOT

TINY = ["--layers", "1", "--heads", "2", "--d-model", "32", "--block", "16", "--batch", "2",
        "--vocab", "300", "--steps", "2", "--warmup", "1"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# MFU >= 0.45 is a claim about the GPUs it was set for; elsewhere the test says why it skips.
MFU_DEVICES = ("H100", "H200")
MFU_FLOOR = 0.45


def _mfu_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA device (MFU floor is for H100/H200)"
    name = torch.cuda.get_device_name(0)
    if not any(d in name for d in MFU_DEVICES):
        return f"MFU floor {MFU_FLOOR} is set for H100/H200, this device is {name!r}"
    return None


def _run_cli(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "embinit.tools.bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def test_cli_prints_one_json_line_with_the_figures() -> None:
    out = _run_cli(*TINY, "--device", "cpu", "--reference")
    for key in ("tokens_per_s", "step_ms_median", "step_ms_min", "step_ms_max", "params",
                "flops_per_token", "achieved_tflops", "mfu", "device", "dtype", "torch",
                "reference_tokens_per_s", "ratio_vs_reference"):
        assert key in out, key
    assert out["tokens_per_s"] > 0 and out["reference_tokens_per_s"] > 0
    assert out["step_ms_min"] <= out["step_ms_median"] <= out["step_ms_max"]
    assert out["tokens_per_step"] == 2 * 16
    assert out["device"] == "cpu" and out["dtype"] == "float32"
    assert out["loss_chunk"] == 0  # auto: V=300 keeps the plain loss
    assert out["mfu"] is None  # no peak for a CPU unless --peak-tflops is given
    assert out["fused_adamw"] == fused_adamw_supported("cpu")
    assert out["params"] == param_breakdown(bench.Shape(1, 2, 32, 16, 2, 300).model_config(), 300)


def test_peak_tflops_gives_mfu_from_the_flops_formula() -> None:
    shape = bench.Shape(layers=1, heads=2, d_model=32, block=16, batch=2, vocab=300)
    out = bench.bench(shape, steps=2, warmup=1, device="cpu", peak_tflops=1e-6)
    assert out["mfu"] == pytest.approx(out["tokens_per_s"] * out["flops_per_token"] / 1e6,
                                       rel=1e-3)


def test_untied_and_grad_accum() -> None:
    shape = bench.Shape(layers=1, heads=2, d_model=32, block=16, batch=2, vocab=300, tied=False)
    out = bench.bench(shape, steps=1, warmup=0, device="cpu", grad_accum=2)
    assert out["params"]["output_head"] == 300 * 32
    assert out["tokens_per_step"] == 2 * 2 * 16


@pytest.mark.parametrize("tied", [True, False])
def test_reference_model_matches_embinit_shape(tied: bool) -> None:
    shape = bench.Shape(layers=2, heads=2, d_model=32, block=16, batch=2, vocab=300, tied=tied)
    ref = bench.ReferenceGPT(shape)
    assert sum(p.numel() for p in ref.parameters()) == GPT(shape.model_config(), 300).num_params()


def test_grid_writes_json_and_plot(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(bench, "GRID_VOCABS", (300, 600))
    shape = bench.Shape(layers=1, heads=2, d_model=32, block=16, batch=2, vocab=300)
    result = bench.run_grid(shape, tmp_path, steps=1, warmup=0, reference=True,
                            compile_cuda=False)
    rows = [r for r in result["rows"] if r["device"] == "cpu"]
    assert [r["shape"]["vocab"] for r in rows] == [300, 600]
    assert json.loads((tmp_path / "bench.json").read_text())["vocabs"] == [300, 600]
    assert (tmp_path / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chunked_loss_lowers_the_measured_cpu_step_peak() -> None:
    # 256 positions x V=50,000: one fp32 copy of the logits is 51 MB; the plain step holds the
    # logits, their log-softmax and their gradient, the chunked one 32 positions at a time.
    shape = bench.Shape(layers=1, heads=2, d_model=32, block=64, batch=4, vocab=50_000)
    plain = bench.memory_row("word", 50_000, replace(shape, loss_chunk=0), "cpu", "auto", False)
    chunked = bench.memory_row("word", 50_000, replace(shape, loss_chunk=32), "cpu", "auto",
                               False)
    assert (plain["loss_chunk"], chunked["loss_chunk"]) == (0, 32)
    logits_bytes = 256 * 50_000 * 4
    assert plain["peak_bytes"] - chunked["peak_bytes"] > 1.5 * logits_bytes


def test_memory_table_has_plain_and_chunked_peaks() -> None:
    result = bench.run_memory("cpu", "auto", False, batch=1, block=16,
                              arms=(("bpe", 300), ("word", 600)))
    assert result["loss_chunk"] == 2  # 16 positions / 8
    assert [r["vocab_size"] for r in result["rows"]] == [300, 600]
    for r in result["rows"]:
        assert r["loss_chunk"] == 0 and r["chunked_loss_chunk"] == 2
        assert r["peak_bytes"] > 0 and r["chunked_peak_bytes"] > 0
    table = bench.memory_table(result)
    assert "chunked loss" in table and table.count("\n| word | 600 |") == 1


def test_memory_child_reports_peak_and_optimizer_state() -> None:
    shape = bench.Shape(layers=1, heads=2, d_model=32, block=16, batch=1, vocab=300)
    row = bench.memory_row("bpe", 300, shape, "cpu", "auto", False)
    # Analytic columns are for gpt2_small at this vocabulary; AdamW keeps two fp32 moments.
    assert row["adamw_state_bytes"] == 2 * row["param_bytes"] == 8 * row["params"]
    n = GPT(shape.model_config(), 300).num_params()
    assert row["measured_params"] == n
    # Two moments per parameter plus a scalar step counter per tensor.
    assert 8 * n <= row["measured_optimizer_state_bytes"] <= 8 * n + 8 * 64
    assert row["peak_bytes"] >= row["runtime_rss_bytes"] > 0


@cuda
def test_cuda_bf16_fused_compiled_step_has_mfu_in_unit_interval() -> None:
    shape = bench.Shape(layers=2, heads=4, d_model=256, block=256, batch=8, vocab=8192)
    out = bench.bench(shape, steps=5, warmup=3, device="cuda", dtype="bfloat16",
                      compile_model=True, peak_tflops=None)
    assert out["device"] == "cuda" and out["dtype"] == "bfloat16"
    assert out["compile"] and out["fused_adamw"]
    if out["peak_tflops"] is None:
        pytest.skip(f"no peak FLOP/s known for {out['device_name']}")
    assert 0 < out["mfu"] < 1


@cuda
def test_cuda_memory_is_measured_with_the_allocator() -> None:
    shape = bench.Shape(layers=1, heads=2, d_model=64, block=64, batch=2, vocab=1000)
    row = bench.memory_row("bpe", 1000, shape, "cuda", "auto", False)
    assert row["peak_kind"] == "torch.cuda.max_memory_allocated"
    assert row["peak_bytes"] > 3 * 4 * row["measured_params"]  # weights + grads + moments


@cuda
def test_cuda_chunked_loss_lowers_peak_memory_at_a_large_vocabulary() -> None:
    shape = bench.Shape(layers=1, heads=2, d_model=64, block=256, batch=8, vocab=100_000)
    plain = bench.memory_row("word", 100_000, replace(shape, loss_chunk=0), "cuda", "auto", False)
    chunked = bench.memory_row("word", 100_000, replace(shape, loss_chunk=256), "cuda", "auto",
                               False)
    logits_bytes = 8 * 256 * 100_000 * 4  # one fp32 copy of the step's logits
    assert plain["peak_bytes"] - chunked["peak_bytes"] > logits_bytes


@pytest.mark.skipif(_mfu_skip_reason() is not None, reason=_mfu_skip_reason() or "")
def test_gpt2_small_bf16_compiled_mfu_is_at_least_045_on_h100_h200() -> None:
    out = bench.bench(bench.GPT2_SMALL, steps=10, warmup=5, device="cuda", dtype="bfloat16",
                      compile_model=True)
    assert out["peak_tflops"] is not None, out["device_name"]
    assert out["loss_chunk"] == 0  # V=50257 keeps the plain loss under auto
    assert out["mfu"] >= MFU_FLOOR, (out["mfu"], out["tokens_per_s"], out["device_name"])
