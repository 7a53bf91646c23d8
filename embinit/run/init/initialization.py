"""Initial token-embedding matrices: scratch, static or contextual vectors, and controls.

Pure functions of (vocabulary, vectors, config, seed); no I/O. The rule for a
vector-initialized arm (word2vec, glove, contextual):

1. Every row is first drawn N(0, fallback_std) (fallback_std defaults to init.std),
   from the same generator and in the same order as `scratch_matrix`. So with equal
   seeds and fallback_std == std, the rows that get no vector are exactly the rows the
   scratch arm of the same vocabulary starts with (a paired comparison).
2. Each row has a lookup key (``vector_keys``; by default the token string itself). A row
   whose key is None never takes a vector (e.g. the specials and the 256 byte rows of
   vocab=word vocab.oov=bytes); see `embinit.run.data.tokenizer.vector_lookup_keys`. A row
   is covered if the vectors contain its key, or else (with init.lowercase_fallback) the
   lowercase key.
3. A covered row is ``vector @ P`` (P maps the vector dimension to d_model, see
   `projection_matrix`), then scaled by the policy init.scale (`scale_rows`): std (default)
   multiplies all covered rows by one factor so their per-element standard deviation is
   init.std, the scale of the scratch init (directions and relative norms kept); raw leaves
   them; standardized centres each dimension and scales it to std init.std; norm_matched
   gives every row the norm init.std * sqrt(d_model), a scratch row's expected norm.
4. Controls (init=shuffled, init=matched_random) first build the matrix of init.source
   exactly as steps 1-3, then destroy the meaning and keep the scale: shuffled permutes the
   covered rows among themselves (the same multiset of rows, hence the same spectrum),
   matched_random replaces each by a random direction with that row's norm.
5. init.oov_rows=mean|mean_cov then overwrite the rows without a vector (random keeps the
   draws of step 1) with the covered rows' mean, or draws from a Gaussian with their mean
   and covariance.

Draw order from the generator: fallback matrix, projection, control, OOV rows; steps that
a config does not use draw nothing, so the defaults reproduce older matrices exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embinit.config import (
    CONTROL_INITS,
    INIT_NAMES,
    OOV_ROWS,
    PROJECTIONS,
    SCALES,
    VECTOR_INITS,
    InitConfig,
)
from embinit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors


def scratch_matrix(vocab_size: int, d_model: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """A (vocab_size x d_model) float32 matrix with entries N(0, std)."""
    return (rng.standard_normal((vocab_size, d_model)) * std).astype(np.float32)


def projection_matrix(
    in_dim: int, out_dim: int, kind: str, rng: np.random.Generator
) -> np.ndarray | None:
    """Matrix P (in_dim x out_dim, float64) mapping a vector x to x @ P; None = identity.

    - "none": only valid when the dimensions agree (returns None).
    - "orthogonal": random semi-orthogonal matrix, the Q factor of a Gaussian matrix
      (signs fixed so it is uniformly (Haar) distributed). in_dim <= out_dim: orthonormal
      rows, so x @ P preserves norms and inner products exactly. in_dim > out_dim:
      orthonormal columns (a random orthogonal projection onto out_dim directions).
    - "pad": [I | 0], i.e. the vector followed by zeros (in_dim <= out_dim only).

    With in_dim == out_dim every kind returns None: any orthogonal P would preserve all
    inner products anyway, and the identity keeps a row equal to the vector times the
    scale, which is easier to check.
    """
    if kind not in ("none", "orthogonal", "pad"):
        raise ConfigError(f"init.projection={kind!r} is unknown; choose one of {PROJECTIONS}")
    if in_dim == out_dim:
        return None
    if kind == "none":
        raise ConfigError(
            f"the vectors have dimension {in_dim} but model.d_model is {out_dim}; set "
            f"init.projection=orthogonal (or pad), or init.dim={out_dim} when training Word2Vec"
        )
    if kind == "pad":
        if in_dim > out_dim:
            raise ConfigError(
                f"init.projection=pad cannot shrink vectors of dimension {in_dim} to "
                f"model.d_model={out_dim}; use init.projection=orthogonal"
            )
        return np.eye(in_dim, out_dim, dtype=np.float64)
    big, small = max(in_dim, out_dim), min(in_dim, out_dim)
    q, r = np.linalg.qr(rng.standard_normal((big, small)))  # q: big x small, orthonormal columns
    # QR's sign convention is not unique; multiplying by sign(diag(R)) makes Q Haar-random.
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if in_dim < out_dim else q


def rescale_factor(vectors: np.ndarray, target_std: float) -> float:
    """target_std / std(all entries): covered rows scaled to the scratch init's std.

    The standard deviation is taken over every element of every covered (projected)
    row together (population std, ddof=0), so relative norms between tokens are kept.
    """
    std = float(np.std(vectors, dtype=np.float64)) if vectors.size else 0.0
    if not std > 0.0:
        raise DataError(
            "the embedding vectors have zero variance (all entries equal), so they cannot be "
            "rescaled to init.std; check the vectors file or use init.scale=raw"
        )
    return target_std / std


def scale_rows(covered: np.ndarray, policy: str, target_std: float,
               d_model: int) -> tuple[np.ndarray, float | None]:
    """The covered (projected) rows under scale policy `policy` (init.scale), float64.

    Returns the rows and the one factor applied to all of them (std, raw), or None when
    the factor differs per dimension (standardized) or per row (norm_matched).

    - std: ``rows * target_std / std(all entries)`` (see `rescale_factor`).
    - raw: unchanged.
    - standardized: each dimension centred and divided by its std over the covered rows,
      times target_std. A dimension without variance (e.g. the zero columns of
      init.projection=pad) is left centred, at 0.
    - norm_matched: each row rescaled to norm ``target_std * sqrt(d_model)``, the expected
      norm of a scratch row; a zero row stays zero (it has no direction).
    """
    rows = np.asarray(covered, dtype=np.float64)
    if policy == "raw":
        return rows, 1.0
    if policy == "std":
        factor = rescale_factor(rows, target_std)
        return rows * factor, factor
    if policy == "standardized":
        centred = rows - rows.mean(axis=0)
        std = centred.std(axis=0)
        if not (std > 0).any():
            raise DataError(
                f"init.scale=standardized needs covered rows that differ ({len(rows)} covered, "
                "every dimension constant); use init.scale=std or raw"
            )
        # Dimensions without variance stay at 0 instead of dividing by zero.
        return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0) * target_std, None
    if policy == "norm_matched":
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        target = target_std * np.sqrt(d_model)
        return np.divide(rows * target, norms, out=np.zeros_like(rows), where=norms > 0), None
    raise ConfigError(f"init.scale={policy!r} is unknown; choose one of {SCALES}")


def shuffled_rows(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The rows permuted among themselves: same multiset (scale, spectrum), no meaning."""
    return rows[rng.permutation(len(rows))]


def matched_random_rows(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row replaced by a uniformly random direction (a normalized Gaussian draw) with
    that row's norm: the norm distribution kept, directions and their covariance lost."""
    z = rng.standard_normal(rows.shape)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return z * np.linalg.norm(rows, axis=1, keepdims=True)


def oov_rows(covered: np.ndarray, n: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    """`n` rows for the rows without a vector under init.oov_rows=mean|mean_cov (float64).

    mean: the covered rows' mean, repeated. mean_cov: draws from N(mean, C) with C the
    covered rows' population covariance, via its eigendecomposition (C is often singular:
    fewer covered rows than dimensions, or vectors of lower dimension projected up).
    """
    if len(covered) == 0:
        raise DataError(
            f"init.oov_rows={mode} needs covered rows to take their mean, and none is covered; "
            "use init.oov_rows=random"
        )
    mean = covered.mean(axis=0)
    if mode == "mean":
        return np.broadcast_to(mean, (n, covered.shape[1])).copy()
    if mode == "mean_cov":
        centred = covered - mean
        cov = centred.T @ centred / len(covered)
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))  # C = root @ root.T
        return mean + rng.standard_normal((n, covered.shape[1])) @ root.T
    raise ConfigError(f"init.oov_rows={mode!r} is unknown; choose one of {OOV_ROWS}")


@dataclass
class InitResult:
    """An initial token-embedding matrix and how it was made."""

    matrix: np.ndarray  # (V x d_model) float32
    from_vectors: np.ndarray  # (V,) bool: row came from a vector (for controls: its source's)
    eligible: np.ndarray  # (V,) bool: row has a lookup key, so it may take a vector
    # Coverage counts only the eligible rows, those with a lookup key (all V by default):
    coverage_types: float | None  # covered rows / eligible rows (None for scratch)
    coverage_tokens: float | None  # train tokens of covered rows / train tokens of eligible rows
    # The one factor applied to covered rows (init.scale std or raw); None for scratch and
    # for per-dimension / per-row policies (standardized, norm_matched).
    scale: float | None
    n_covered: int
    n_lowercase_hits: int  # covered only through the lowercase fallback


def _eligible(V: int, vector_keys: Sequence[str | None] | None) -> np.ndarray:
    if vector_keys is None:
        return np.ones(V, dtype=bool)
    if len(vector_keys) != V:
        raise ValueError(f"vector_keys has {len(vector_keys)} entries, the vocabulary {V}")
    return np.array([k is not None for k in vector_keys], dtype=bool)


def vector_init(
    vocab: list[str],
    kv: KeyedVectors,
    d_model: int,
    cfg: InitConfig,
    rng: np.random.Generator,
    token_counts: np.ndarray | None = None,
    vector_keys: Sequence[str | None] | None = None,
) -> InitResult:
    """Token-embedding matrix from vectors (see the module docstring for the rule).

    ``kv`` holds the vectors of the arm, or of init.source for a control (cfg.name shuffled
    or matched_random). Draw order from `rng`: the full fallback matrix, the projection, then
    the control's draws, then init.oov_rows=mean_cov's draws.
    ``vector_keys[i]`` is the key row i looks up (None: the row takes no vector); by default
    the token string ``vocab[i]``. ``token_counts[i]`` is the training-token count of
    vocabulary entry i; with it, coverage_tokens = counts of covered rows / counts of rows
    with a key. coverage_types = covered rows / rows with a key.
    """
    V = len(vocab)
    if token_counts is not None and np.shape(token_counts) != (V,):
        raise ValueError(f"token_counts has shape {np.shape(token_counts)}, expected ({V},)")
    keys: Sequence[str | None] = vocab if vector_keys is None else vector_keys
    eligible = _eligible(V, keys)
    n_eligible = int(eligible.sum())
    fallback_std = cfg.std if cfg.fallback_std is None else cfg.fallback_std
    matrix = scratch_matrix(V, d_model, fallback_std, rng)
    proj = projection_matrix(kv.vector_size, d_model, cfg.projection, rng)

    key_to_index = kv.key_to_index
    rows: list[int] = []
    sources: list[int] = []
    n_lower = 0
    for i, token in enumerate(keys):
        if token is None:
            continue
        j = key_to_index.get(token)
        if j is None and cfg.lowercase_fallback:
            lower = token.lower()
            if lower != token:
                j = key_to_index.get(lower)
                n_lower += j is not None
        if j is not None:
            rows.append(i)
            sources.append(j)

    n_cov = len(rows)
    coverage_types = n_cov / n_eligible if n_eligible else 0.0
    if coverage_types < cfg.min_coverage:
        raise DataError(
            f"only {n_cov} of {n_eligible} vocabulary types ({coverage_types:.2%}) have a vector "
            f"(init.min_coverage={cfg.min_coverage}); the vectors do not match this "
            "tokenization: try init.lowercase_fallback=true, a vectors file built for this "
            "vocabulary (init.vectors_path=...), or a lower init.min_coverage"
        )

    from_vectors = np.zeros(V, dtype=bool)
    scale: float | None = None
    if n_cov:
        covered = np.asarray(kv.vectors[sources], dtype=np.float64)
        if proj is not None:
            covered = covered @ proj
        covered, scale = scale_rows(covered, cfg.scale, cfg.std, d_model)
        if cfg.name == "shuffled":
            covered = shuffled_rows(covered, rng)
        elif cfg.name == "matched_random":
            covered = matched_random_rows(covered, rng)
        matrix[rows] = covered.astype(np.float32)
        from_vectors[rows] = True
        if cfg.oov_rows != "random":
            fill = ~from_vectors
            matrix[fill] = oov_rows(covered, int(fill.sum()), cfg.oov_rows, rng).astype(np.float32)
    elif cfg.oov_rows != "random":
        oov_rows(np.empty((0, d_model)), V, cfg.oov_rows, rng)  # raises: nothing to take from

    coverage_tokens = None
    if token_counts is not None:
        counts = np.asarray(token_counts, dtype=np.float64)
        total = float(counts[eligible].sum())
        coverage_tokens = float(counts[from_vectors].sum()) / total if total else 0.0
    return InitResult(
        matrix=matrix,
        from_vectors=from_vectors,
        eligible=eligible,
        coverage_types=coverage_types,
        coverage_tokens=coverage_tokens,
        scale=scale,
        n_covered=n_cov,
        n_lowercase_hits=int(n_lower),
    )


def init_matrix(
    vocab: list[str],
    d_model: int,
    cfg: InitConfig,
    seed: int,
    kv: KeyedVectors | None = None,
    token_counts: np.ndarray | None = None,
    vector_keys: Sequence[str | None] | None = None,
) -> InitResult:
    """The initial token-embedding matrix of an arm, reproducible from `seed`.

    ``kv``: the arm's vectors (for a control, those of init.source); unused by scratch.
    ``vector_keys``: the lookup key of each row, None for a row that takes no vector
    (default: the token strings); see `vector_init`. Scratch draws no row from it but
    reports it as ``eligible``, so its rows can be compared with a vector arm's.
    """
    rng = np.random.default_rng(seed)
    if cfg.name == "scratch":
        V = len(vocab)
        return InitResult(
            matrix=scratch_matrix(V, d_model, cfg.std, rng),
            from_vectors=np.zeros(V, dtype=bool),
            eligible=_eligible(V, vector_keys),
            coverage_types=None,
            coverage_tokens=None,
            scale=None,
            n_covered=0,
            n_lowercase_hits=0,
        )
    if cfg.name in VECTOR_INITS or cfg.name in CONTROL_INITS:
        if kv is None:
            what = f"init.source={cfg.source!r}" if cfg.name in CONTROL_INITS else "its"
            raise ValueError(f"init.name={cfg.name!r} needs {what} vectors (kv) to be passed in")
        return vector_init(vocab, kv, d_model, cfg, rng, token_counts, vector_keys)
    raise ConfigError(f"init={cfg.name!r} is unknown; choose one of {INIT_NAMES}")
