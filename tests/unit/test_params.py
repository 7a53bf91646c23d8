import json
import subprocess
import sys
from pathlib import Path

import pytest

from embinit.config import ModelConfig
from embinit.params import flops_per_token, main, mfu, param_breakdown, peak_flops

REPO = Path(__file__).resolve().parents[2]
GPT2_SMALL = ModelConfig(name="gpt2_small", n_layer=12, n_head=12, d_model=768,
                         block_size=1024, bias=True, tie_embeddings=True)


def test_gpt2_small_breakdown():
    b = param_breakdown(GPT2_SMALL, 50257)
    assert b == {
        "total": 124_439_808,
        "embedding": 50257 * 768,
        "output_head": 0,
        "position": 1024 * 768,
        "non_embedding": 124_439_808 - 50257 * 768,
        "body": 12 * (12 * 768**2 + 13 * 768) + 2 * 768,
    }


def test_untied_head_adds_exactly_v_times_d():
    untied = ModelConfig(**{**GPT2_SMALL.__dict__, "tie_embeddings": False})
    b = param_breakdown(untied, 50257)
    assert b["total"] - 124_439_808 == 50257 * 768 == b["output_head"]
    assert b["non_embedding"] == param_breakdown(GPT2_SMALL, 50257)["non_embedding"]


def test_hand_computed_tiny_shape():
    # L=1, d=4, block=3, V=5. Per block with bias: 2 LayerNorms 2*(4+4)=16,
    # qkv 4*12+12=60, attn proj 4*4+4=20, fc 4*16+16=80, mlp proj 16*4+4=68 -> 244.
    cfg = ModelConfig(n_layer=1, n_head=1, d_model=4, block_size=3, bias=True, tie_embeddings=True)
    b = param_breakdown(cfg, 5)
    assert b == {"total": 284, "embedding": 20, "output_head": 0, "position": 12,
                 "non_embedding": 264, "body": 252}
    # Without bias: LayerNorm 4, block 2*4+48+16+64+64=200, body 200+4.
    nb = ModelConfig(n_layer=1, n_head=1, d_model=4, block_size=3, bias=False, tie_embeddings=True)
    assert param_breakdown(nb, 5)["total"] == 20 + 12 + 204


def test_flops_per_token_hand_computed():
    cfg = ModelConfig(n_layer=1, n_head=1, d_model=4, block_size=3)
    # N_matmul = 12*4^2 + 5*4 = 212; 6*212 = 1272; attention 12*1*S*4.
    assert flops_per_token(cfg, 5) == 1272 + 12 * 3 * 4
    assert flops_per_token(cfg, 5, seq_len=2) == 1272 + 12 * 2 * 4
    # The head matmul runs whether or not it is tied.
    untied = ModelConfig(n_layer=1, n_head=1, d_model=4, block_size=3, tie_embeddings=False)
    assert flops_per_token(untied, 5) == flops_per_token(cfg, 5)
    assert flops_per_token(GPT2_SMALL, 50257) == 854_438_400


def test_peak_flops_and_mfu():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == 989e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA H200", "bfloat16") == 989e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312e12
    assert peak_flops("NVIDIA L4", "bfloat16") == 121e12
    assert peak_flops("NVIDIA L40S", "bfloat16") is None
    assert peak_flops("NVIDIA GeForce RTX 4090", "float16") == 165e12
    assert peak_flops("NVIDIA H100 80GB HBM3", "float32") is None
    assert peak_flops("cpu", "bfloat16") is None
    assert mfu(1000.0, 2e9, 1e13) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        mfu(1.0, 1.0, 0.0)


def test_cli_prints_json(capsys):
    assert main(["model=gpt2_small", "vocab.size=50257"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == 124_439_808 and out["model"] == "gpt2_small"
    assert out["vocab_size"] == 50257 and out["flops_per_token"] == 854_438_400


def test_cli_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "embinit.params", "model=gpt2_small", "vocab.size=50257"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["total"] == 124_439_808


@pytest.mark.parametrize("override", ["model=nope", "model.n_layer=abc", "model.d_model=130", "foo=1"])
def test_cli_bad_override_exits_2_with_one_line(override, capsys):
    assert main([override]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("embinit.params: error:") and "\n" not in err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_cli_help_explains_and_exits_0(flag, capsys):
    assert main([flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m embinit.params") and "model=gpt2_small" in out
