"""Model shapes the report can price vocabularies at, built in.

The consumer wing reads run records only, never the repo's ``conf/`` directory (an
installed package has none, and a report must not change when conf/ is edited after
the runs). These mirror ``conf/model/*.yaml``; a unit test keeps them in step.
"""

from __future__ import annotations

import dataclasses

from embinit.config import ModelConfig
from embinit.study.load import AnalysisError

# Dropout 0, biases and a tied head: ModelConfig's defaults, as in conf/model/*.yaml.
MODEL_SHAPES: dict[str, ModelConfig] = {
    "gpt2_small": ModelConfig(name="gpt2_small", n_layer=12, n_head=12, d_model=768,
                              block_size=1024),
    "small": ModelConfig(name="small", n_layer=6, n_head=6, d_model=384, block_size=256),
    "tiny": ModelConfig(name="tiny", n_layer=4, n_head=4, d_model=128, block_size=128),
}


def model_shape(model: str | ModelConfig) -> ModelConfig:
    """A ModelConfig by name from ``MODEL_SHAPES``; a ModelConfig is returned as is."""
    if isinstance(model, ModelConfig):
        return model
    if model in MODEL_SHAPES:
        return dataclasses.replace(MODEL_SHAPES[model])  # a copy: the table stays as built
    raise AnalysisError(
        f"unknown model shape {model!r}; choose one of {sorted(MODEL_SHAPES)} "
        "or pass a ModelConfig"
    )


__all__ = ["MODEL_SHAPES", "model_shape"]
