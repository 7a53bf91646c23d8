"""Parameter and FLOP bookkeeping from the model's shapes alone (no model is allocated).

`python -m embinit.params [overrides]` composes the real Hydra config and prints the
breakdown as one JSON object, e.g. ``python -m embinit.params model=gpt2_small
vocab.size=50257`` -> total 124439808.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from embinit.config import ModelConfig


def param_breakdown(cfg: ModelConfig, vocab_size: int) -> dict[str, int]:
    """Closed-form parameter counts of `embinit.model.GPT`.

    With V = vocab_size, d = d_model, L = n_layer, T = block_size, b = 1 if bias else 0:

      LayerNorm            = d + b*d                    (weight, optional bias)
      Linear(i -> o)       = i*o + b*o
      block                = 2*LayerNorm + Linear(d->3d) + Linear(d->d)
                             + Linear(d->4d) + Linear(4d->d)
                           = 12*d^2 + (2 + 11*b)*d
      body                 = L*block + LayerNorm        (blocks + final norm ln_f)
      embedding            = V*d                        (token embedding wte)
      output_head          = V*d if untied else 0       (a tied head shares wte)
      position             = T*d                        (learned positions wpe)
      total                = embedding + output_head + position + body
      non_embedding        = total - embedding - output_head = position + body

    GPT-2 small (L=12, d=768, T=1024, bias, tied, V=50257) gives 124,439,808.
    """
    d, b = cfg.d_model, int(cfg.bias)

    def linear(i: int, o: int) -> int:
        return i * o + b * o

    layer_norm = d + b * d
    block = 2 * layer_norm + linear(d, 3 * d) + linear(d, d) + linear(d, 4 * d) + linear(4 * d, d)
    body = cfg.n_layer * block + layer_norm
    embedding = vocab_size * d
    output_head = 0 if cfg.tie_embeddings else vocab_size * d
    position = cfg.block_size * d
    total = embedding + output_head + position + body
    return {
        "total": total,
        "embedding": embedding,
        "output_head": output_head,
        "position": position,
        "non_embedding": total - embedding - output_head,
        "body": body,
    }


def flops_per_token(cfg: ModelConfig, vocab_size: int, seq_len: int | None = None) -> int:
    """Training FLOPs per token (forward + backward), PaLM appendix B / nanoGPT convention.

        flops = 6 * N_matmul + 12 * L * S * d

    N_matmul counts every weight matrix used in a matmul: per block 12*d^2 (qkv 3d^2,
    attention output d^2, MLP 8d^2), plus the output layer V*d -- counted even when tied,
    because the head matmul is executed. Embedding lookups, norms and biases are
    excluded (no matmul). 6 = 2 FLOPs per multiply-add x (1 forward + 2 backward).
    The second term is the attention score and value matmuls (QK^T and AV) over a
    context of S = seq_len tokens (default block_size), without causal-mask savings.
    """
    s = cfg.block_size if seq_len is None else seq_len
    d, L = cfg.d_model, cfg.n_layer
    n_matmul = L * 12 * d * d + vocab_size * d
    return 6 * n_matmul + 12 * L * s * d


# Dense (no sparsity) bf16 tensor-core peak FLOP/s from the vendors' datasheets.
# Matched in order against torch.cuda.get_device_name(); more specific patterns first.
_BF16_PEAK: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756e12),
    (r"H100", 989e12),  # SXM
    (r"H200", 989e12),
    (r"A100", 312e12),
    (r"\bL4\b", 121e12),  # word boundary: not L40 / L40S
    (r"RTX 4090", 165e12),
)
_HALF_DTYPES = {"bf16", "bfloat16", "fp16", "float16"}


def peak_flops(device_name: str, dtype: str) -> float | None:
    """Dense peak FLOP/s for a known GPU at bf16/fp16, else None.

    None for float32 and unknown devices: fp32 matmuls may or may not run on TF32
    tensor cores (torch's matmul precision setting), so there is no single honest peak.
    """
    if dtype.lower() not in _HALF_DTYPES:
        return None
    for pattern, peak in _BF16_PEAK:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peak
    return None


def mfu(tokens_per_s: float, flops_per_token: int | float, peak: float) -> float:
    """Model FLOPs utilization: achieved training FLOP/s as a fraction of peak."""
    if peak <= 0:
        raise ValueError(f"peak FLOP/s must be > 0, got {peak}")
    return tokens_per_s * flops_per_token / peak


CONF_DIR = Path(__file__).resolve().parent / "conf"


def main(argv: list[str] | None = None) -> int:
    """Compose the config from Hydra overrides and print the breakdown as JSON."""
    # Imported here so that importing the formulas does not pull in Hydra.
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from embinit.config import register_configs, validate
    from embinit.errors import EmbinitError

    overrides = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in overrides):
        prog = ("embinit-params" if Path(sys.argv[0]).name == "embinit-params"
                else "python -m embinit.params")
        print(f"usage: {prog} [hydra overrides ...]\n\n"
              "Print the parameter breakdown and training FLOPs per token of the composed\n"
              "config as one JSON line, without allocating a model. Overrides are the same\n"
              "as run.py's, e.g.: python -m embinit.params model=gpt2_small vocab.size=50257\n"
              "(total 124439808) or python -m embinit.params arm=word100k_scratch "
              "model=gpt2_small")
        return 0
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        validate(cfg)
        model_cfg = ModelConfig(**OmegaConf.to_container(cfg.model, resolve=True))  # type: ignore[arg-type]
        vocab_size = int(cfg.vocab.size)
    except (HydraException, OmegaConfBaseException, EmbinitError) as exc:
        # One line: Hydra's and validate()'s messages can span several, and Hydra keeps
        # the useful part ("could not be converted to Integer") in the chained cause.
        msg = str(exc)
        if exc.__cause__ is not None:
            msg += f": {str(exc.__cause__).splitlines()[0]}"
        msg = " ".join(msg.split())
        print(f"embinit.params: error: {msg}", file=sys.stderr)
        return 2
    out: dict[str, int | str] = {"model": model_cfg.name, "vocab_size": vocab_size}
    out.update(param_breakdown(model_cfg, vocab_size))
    out["flops_per_token"] = flops_per_token(model_cfg, vocab_size)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
