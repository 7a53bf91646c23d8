"""Checkpoint files: written atomically, loaded safely (tensors and plain containers only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from embinit.errors import DataError
from embinit.storage import atomic_torch_save

CHECKPOINT_FORMAT = 1


def save_checkpoint_file(path: Path, payload: dict[str, Any], extra: dict[str, Any]) -> None:
    """Atomically write a checkpoint; `extra` carries the run's identity for resume checks."""
    atomic_torch_save(path, {**payload, **extra})


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
