"""Load a finished run directory: `embinit.load_run(dir)` -> model, tokenizer, config, summary.

A self-contained run directory holds, next to `config.json` and `summary.json`, the arm's
`tokenizer.json`, the trained `model.pt` (a state_dict) and `init_embedding.npy` (file
names from `embinit.record`). This module imports torch; `embinit/__init__.py` re-exports
`load_run` lazily, so `import embinit` (the report side) stays torch-free.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from embinit.errors import DataError
from embinit.record import (
    FINAL_WEIGHTS_FILE,
    INIT_EMBEDDING_FILE,
    TOKENIZER_FILE,
    read_config,
    read_summary,
)

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

    from embinit.run.model import GPT

# Prefixes torch.compile (`_orig_mod.`) and DDP (`module.`) put on state_dict keys.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


class LoadedRun(NamedTuple):
    """A trained run, ready to use: `model` is in eval mode on `device`."""

    dir: Path
    model: GPT
    tokenizer: Tokenizer
    config: dict[str, Any]
    summary: dict[str, Any] | None  # None if summary.json is missing or unreadable

    @property
    def block_tokens(self) -> int:
        """The context the model was trained with (`summary.context.block_tokens`), else
        its position table (`model.block_size`)."""
        ctx = (self.summary or {}).get("context") or {}
        block = ctx.get("block_tokens")
        return min(int(block), self.model.block_size) if block else self.model.block_size

    def init_embedding(self) -> np.ndarray | None:
        """The arm's initial token-embedding matrix (V x d_model float32), if the run saved it."""
        path = self.dir / INIT_EMBEDDING_FILE
        return np.load(path, allow_pickle=False) if path.exists() else None


def _not_self_contained(run: Path, missing: str) -> DataError:
    return DataError(
        f"{run} has no {missing}: the run has not finished or predates self-contained run "
        f"directories; re-run it (the same command resumes or retrains it) and try again"
    )


def _state_dict(path: Path, device: str) -> dict[str, torch.Tensor]:
    import torch

    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, pickled code refused
        raise DataError(f"cannot read {path} as a torch state_dict ({exc}); re-run the run") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # a checkpoint-style file
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise DataError(f"{path} does not hold a state_dict (got {type(obj).__name__}); re-run the run")
    out = {}
    for key, value in obj.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_run(run_dir: str | os.PathLike[str], device: str = "cpu") -> LoadedRun:
    """Load a run directory's trained model (eval mode), tokenizer, resolved config and summary.

    Raises DataError naming the missing file when the run is unfinished or was written before
    run directories carried their model and tokenizer.
    """
    from embinit.config import ModelConfig
    from embinit.run.data.tokenizer import load_tokenizer
    from embinit.run.model import GPT

    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run directory {run} does not exist; give experiments/<study>/<arm>/seed<k>")
    weights = run / FINAL_WEIGHTS_FILE
    if not weights.exists():
        raise _not_self_contained(run, FINAL_WEIGHTS_FILE)
    if not (run / TOKENIZER_FILE).exists():
        raise _not_self_contained(run, TOKENIZER_FILE)
    config = read_config(run)
    if not config:
        raise _not_self_contained(run, "config.json")
    _, summary = read_summary(run)

    state = _state_dict(weights, device)
    if "wte.weight" not in state:
        raise DataError(f"{weights} has no wte.weight: not an embinit GPT state_dict; re-run the run")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    model_cfg = ModelConfig(**{k: v for k, v in (config.get("model") or {}).items() if k in known})
    # The weights, not the config, say the vocabulary size (the trained tokenizer may be
    # smaller than vocab.size asked for).
    vocab_size = int(state["wte.weight"].shape[0])
    model = GPT(model_cfg, vocab_size, seed=int(config.get("seed", 0)))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(
            f"{weights} does not match the model its config.json describes ({exc}); re-run the run"
        ) from exc
    model.to(device).eval()
    try:
        # load_tokenizer restores what tokenizer.json cannot store (the Treebank splitter).
        tokenizer = load_tokenizer(run / TOKENIZER_FILE)
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise DataError(f"cannot read {run / TOKENIZER_FILE} ({exc}); re-run the run") from exc
    if tokenizer.get_vocab_size() > vocab_size:
        raise DataError(
            f"{run / TOKENIZER_FILE} has {tokenizer.get_vocab_size()} tokens but the model only "
            f"{vocab_size} rows; the files come from different runs: re-run it"
        )
    return LoadedRun(run, model, tokenizer, config, summary)
