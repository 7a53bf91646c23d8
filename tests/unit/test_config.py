"""Every shipped config composes against the schema; validation names every problem."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from embinit.config import validate
from embinit.errors import ConfigError
from tests.conftest import CONF, compose_config

GROUPS = ["data", "vocab", "init", "model", "train", "logger", "arm", "study"]


@pytest.mark.parametrize(
    "override",
    [f"{g}={p.stem}" for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))],
)
def test_every_group_option_composes_and_validates(override: str) -> None:
    extra = ["data.path=/tmp/x"] if override == "data=text_files" else []
    cfg = compose_config([override, *extra])
    OmegaConf.resolve(cfg)
    validate(cfg)


def test_default_arm_is_bpe_scratch() -> None:
    cfg = compose_config()
    assert (cfg.vocab.name, cfg.init.name, cfg.model.name) == ("bpe", "scratch", "tiny")


def test_arm_group_overrides_both_axes() -> None:
    cfg = compose_config(["arm=word_word2vec"])
    assert (cfg.vocab.name, cfg.init.name) == ("word", "word2vec")


def test_init_seed_follows_run_seed() -> None:
    cfg = compose_config(["init=word2vec", "seed=7"])
    assert cfg.init.seed == 7


def test_unknown_key_is_rejected_by_schema() -> None:
    with pytest.raises(ConfigCompositionException, match="model.n_heads"):
        compose_config(["model.n_heads=4"])


def test_validate_reports_every_problem_at_once() -> None:
    cfg = compose_config(["vocab.size=100", "model.d_model=130", "train.budget=steps",
                          "train.max_steps=0"])
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    msg = str(e.value)
    assert "vocab.size=100 is too small for vocab=bpe" in msg
    assert "not divisible by model.n_head" in msg
    assert "train.budget=steps needs train.max_steps > 0 (got 0)" in msg


def test_the_budget_key_names_the_budget() -> None:
    # train.budget decides which max_* ends training (it used to be "exactly one of
    # max_steps/max_bytes non-null", which made `train.max_steps=N` fail on its own).
    validate(compose_config(["train.budget=steps", "train.max_steps=10"]))
    validate(compose_config(["train.budget=bytes", "train.max_bytes=1000"]))
    with pytest.raises(ConfigError, match="train.budget=flops needs train.max_flops > 0"):
        validate(compose_config(["train.budget=flops"]))
    with pytest.raises(ConfigError, match="train.budget='tokens' is unknown"):
        validate(compose_config(["train.budget=tokens"]))


def test_every_shipped_profile_validates_and_names_its_budget() -> None:
    for profile, budget in (("cpu", "epochs"), ("gpu", "bytes"), ("smoke", "steps")):
        cfg = compose_config([f"train={profile}"])
        validate(cfg)
        assert cfg.train.budget == budget


def test_exact_word_arm_refuses_lowercase() -> None:
    with pytest.raises(ConfigError, match="vocab.lowercase=true would lose case"):
        validate(compose_config(["vocab=word", "vocab.lowercase=true"]))
    validate(compose_config(["vocab=word", "vocab.oov=unk", "vocab.lowercase=true"]))
