"""Checkpoint files: written atomically, loaded safely (tensors and plain containers only),
and verified: each carries the sha256 of its contents (`payload_sha256`), so a file damaged
after it was written (flipped bytes that torch still loads) refuses the resume instead of
training on from wrong weights."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from embinit.errors import ConfigError, DataError
from embinit.record import config_diff
from embinit.storage import atomic_torch_save

CHECKPOINT_FORMAT = 1
log = logging.getLogger(__name__)


CHECKSUM_KEY = "sha256"


def payload_sha256(payload: Any) -> str:
    """sha256 of a checkpoint's contents: every tensor's dtype, shape and bytes, and every
    other value, in key order (independent of how torch lays out the file)."""
    h = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().to("cpu").contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself: no copy
        elif isinstance(obj, dict):
            h.update(f"D{len(obj)}".encode())
            for k in sorted(obj, key=repr):
                h.update(repr(k).encode())
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            h.update(f"L{len(obj)}".encode())
            for v in obj:
                feed(v)
        else:
            h.update(f"V{obj!r}".encode())

    feed(payload)
    return h.hexdigest()


def save_checkpoint_file(path: Path, payload: dict[str, Any], signature: dict[str, Any]) -> None:
    """Atomically write a checkpoint with the signature a resume must match, and the sha256
    of everything else in it."""
    content = {**payload, "signature": signature}
    atomic_torch_save(path, {**content, CHECKSUM_KEY: payload_sha256(content)})


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
    saved = ckpt.pop(CHECKSUM_KEY, None)
    if saved is None:  # written before checkpoints carried one: nothing to check it against
        log.warning("checkpoint %s has no checksum (written by an older version); resuming "
                    "from it unverified", path)
    elif saved != payload_sha256(ckpt):
        raise DataError(
            f"checkpoint {path} fails its checksum: it was damaged after it was written, so "
            f"resuming would train on wrong weights. Delete it to restart this run from step 0 "
            f"(rm {path})"
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
