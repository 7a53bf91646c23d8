"""Generate text from a finished run: `embinit-sample RUN_DIR --prompt "The city"`.

Autoregressive sampling with the context the model was trained with
(`summary.context.block_tokens`, else its position table): the prompt is encoded with the
run's own tokenizer, each step feeds at most that many trailing tokens, and the whole
sequence (prompt + continuation) is decoded and printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from embinit.errors import EmbinitError


def generate(
    model: object,
    ids: list[int],
    max_new_tokens: int,
    block_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[int]:
    """`ids` + `max_new_tokens` sampled tokens. temperature 0 is greedy (argmax)."""
    import torch

    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device  # type: ignore[attr-defined]
    out = list(ids)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            # Only the last block_tokens tokens: the window the model was trained on.
            idx = torch.tensor([out[-block_tokens:]], dtype=torch.long, device=device)
            logits, _ = model(idx)  # type: ignore[operator]
            last = logits[0, -1].float().cpu()
            if temperature <= 0:
                out.append(int(last.argmax()))
                continue
            last = last / temperature
            if top_k is not None and 0 < top_k < last.numel():
                kth = torch.topk(last, top_k).values[-1]
                last = last.masked_fill(last < kth, float("-inf"))
            probs = torch.softmax(last, dim=-1)
            out.append(int(torch.multinomial(probs, 1, generator=gen)))
    return out


def sample_text(
    run_dir: str,
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
    device: str = "cpu",
) -> str:
    """Load the run, sample a continuation of `prompt`, return prompt + continuation decoded."""
    from embinit.errors import ConfigError
    from embinit.load import load_run

    loaded = load_run(run_dir, device=device)
    ids = loaded.tokenizer.encode(prompt).ids
    if not ids:
        raise ConfigError(f"--prompt {prompt!r} encodes to no tokens; give some text")
    out = generate(loaded.model, ids, max_new_tokens, loaded.block_tokens, temperature, top_k, seed)
    # Specials kept: an end-of-document token in the continuation is informative.
    return loaded.tokenizer.decode(out, skip_special_tokens=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="embinit-sample",
        description="Sample a continuation of a prompt from a finished run's trained model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run_dir", help="a finished run: experiments/<study>/<arm>/seed<k>")
    parser.add_argument("--prompt", required=True, default=argparse.SUPPRESS,
                        help="text to continue (required)")
    parser.add_argument("--max-new-tokens", type=int, default=100, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=50, help="0 = no top-k cut")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same text)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 0:
        parser.error("--max-new-tokens must be >= 0")
    try:
        text = sample_text(args.run_dir, args.prompt, args.max_new_tokens, args.temperature,
                           args.top_k or None, args.seed, args.device)
    except EmbinitError as e:
        print(f"embinit-sample: error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
