"""study.shapes: the built-in model shapes, and that they match conf/model/*.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from embinit.config import ModelConfig
from embinit.study import shapes as S
from embinit.study.load import AnalysisError

CONF_MODEL = Path(__file__).resolve().parents[3] / "embinit" / "conf" / "model"


def test_model_shape() -> None:
    assert S.model_shape("gpt2_small") == ModelConfig(
        name="gpt2_small",
        n_layer=12,
        n_head=12,
        d_model=768,
        block_size=1024,
        dropout=0.0,
        bias=True,
        tie_embeddings=True,
    )
    with pytest.raises(AnalysisError, match="unknown model shape"):
        S.model_shape("nope")


def test_model_shape_returns_a_copy() -> None:
    shape = S.model_shape("gpt2_small")
    shape.n_layer = 1
    assert S.model_shape("gpt2_small").n_layer == 12
    assert S.model_shape(shape) is shape  # a ModelConfig passes through


@pytest.mark.parametrize("name", sorted(S.MODEL_SHAPES))
def test_builtin_shapes_match_conf_model(name: str) -> None:
    """The study package never reads conf/; this keeps its copy of the shapes in step."""
    from omegaconf import OmegaConf

    path = CONF_MODEL / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
    assert OmegaConf.to_object(merged) == S.MODEL_SHAPES[name]
