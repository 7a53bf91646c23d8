"""Checkpoint files: written atomically, loaded safely (tensors and plain containers only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from embinit.errors import ConfigError, DataError
from embinit.record import config_diff
from embinit.storage import atomic_torch_save

CHECKPOINT_FORMAT = 1


def save_checkpoint_file(path: Path, payload: dict[str, Any], signature: dict[str, Any]) -> None:
    """Atomically write a checkpoint with the signature a resume must match."""
    atomic_torch_save(path, {**payload, "signature": signature})


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely: tensors and plain containers only (weights_only=True)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt or not a torch file: torch raises many types
        first_sentence = str(e).split(". ")[0]
        raise DataError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {first_sentence}); delete it "
            "to restart this run from step 0"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(
            f"checkpoint {path} is not an embinit checkpoint of format {CHECKPOINT_FORMAT}; "
            "delete it to restart this run from step 0"
        )
    return ckpt


def load_matching_checkpoint(path: Path, signature: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at `path` if there is one, refusing one written by another run shape.

    The signature holds what a resume must match: the shapes, and the batch geometry and
    sampling that fix the schedule and the data order.
    """
    if not path.exists():
        return None
    ckpt = load_checkpoint_file(path)
    saved = ckpt.get("signature")
    if saved != signature:
        diff = config_diff(saved, signature) if isinstance(saved, dict) else [repr(saved)]
        raise ConfigError(
            f"checkpoint {path} was written by an incompatible model shape "
            f"({'; '.join(diff)}); restore the original model and vocab settings to resume "
            f"it, or delete {path.parent} to start fresh"
        )
    return ckpt
