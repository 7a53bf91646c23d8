"""What an initialization itself costs: the text its vectors were fitted on and the compute.

An init that read more text than the GPT is confounded with that text, so the run record
states it (`init_compute` in summary.json) and the report adds it to the training compute.
"""

from __future__ import annotations

from pathlib import Path

from embinit.config import InitConfig
from embinit.record import InitCompute
from embinit.storage import read_json

# GloVe 6B: fitted on Wikipedia 2014 + Gigaword 5, 6 billion tokens (Pennington et al. 2014).
GLOVE_6B_TOKENS = 6_000_000_000


def word2vec_flops(tokens: int, epochs: int, dim: int, window: int, negative: int,
                   skip_gram: bool) -> float:
    """FLOPs of gensim Word2Vec with negative sampling, counting multiply-adds as 2.

    Per (input, output) update: a dot product (2d), the output vector's update (2d) and the
    input gradient's accumulation (2d) = 6d, for the true word and each negative sample.
    gensim shrinks the window to b ~ U{1..window} per center word, so a center has on average
    window + 1 context words. Skip-gram updates once per (center, context) pair:

        tokens * epochs * (window + 1) * (1 + negative) * 6d

    CBOW averages the context (window + 1)d, updates once per center, and spreads the
    gradient back over the context (window + 1)d:

        tokens * epochs * ((1 + negative) * 6d + 2 (window + 1) d)

    Frequent-word subsampling lowers the real count, so this is an upper bound.
    """
    if skip_gram:
        per_token = (window + 1) * (1 + negative) * 6 * dim
    else:
        per_token = (1 + negative) * 6 * dim + 2 * (window + 1) * dim
    return float(tokens) * epochs * per_token


def init_compute(cfg: InitConfig, dim: int, train_text_tokens: int,
                 vectors_file: Path | None, trained_here: bool) -> InitCompute:
    """The init's data and compute for the run record (all zero for scratch)."""
    if cfg.name == "scratch":
        return InitCompute()
    if cfg.name == "glove":
        # External vectors: their corpus is known, their compute is not ours to count.
        return InitCompute(train_tokens=GLOVE_6B_TOKENS, source="external: GloVe 6B")
    if not trained_here:
        return InitCompute(source=f"external: {vectors_file}")
    wall = 0.0
    if vectors_file is not None:
        meta = vectors_file.parent / "meta.json"  # written by the vectors cache with the build time
        if meta.is_file():
            wall = float(read_json(meta).get("train_seconds", 0.0))
    return InitCompute(
        train_tokens=int(train_text_tokens) * int(cfg.epochs),
        epochs=float(cfg.epochs),
        wall_s=wall,
        flops=word2vec_flops(train_text_tokens, cfg.epochs, dim, cfg.window, cfg.negative,
                             bool(cfg.sg)),
        source="word2vec on the train split",
    )
