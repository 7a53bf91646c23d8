"""The init's cost in the run record: exact FLOP formulas and what each init reports."""

from __future__ import annotations

from pathlib import Path

from embinit.config import InitConfig
from embinit.run.init.compute import GLOVE_6B_TOKENS, init_compute, word2vec_flops
from embinit.storage import atomic_write_json


def test_word2vec_flops_formulas() -> None:
    # skip-gram: 1000 tokens x 2 epochs x (5 + 1) contexts x (1 + 5) outputs x 6 x 16
    assert word2vec_flops(1000, 2, 16, window=5, negative=5, skip_gram=True) == 1000 * 2 * 6 * 6 * 6 * 16
    # CBOW: per center (1 + 5) x 6 x 16 + 2 x 6 x 16 = 576 + 192
    assert word2vec_flops(1000, 2, 16, window=5, negative=5, skip_gram=False) == 1000 * 2 * 768


def test_scratch_costs_nothing() -> None:
    c = init_compute(InitConfig(name="scratch"), 128, 10_000, None, trained_here=False)
    assert (c.train_tokens, c.epochs, c.wall_s, c.flops, c.source) == (0, 0.0, 0.0, 0.0, "none")


def test_trained_word2vec_reports_its_tokens_epochs_time_and_flops(tmp_path: Path) -> None:
    vec = tmp_path / "entry" / "vectors.bin"
    vec.parent.mkdir()
    vec.write_bytes(b"")
    atomic_write_json(vec.parent / "meta.json", {"train_seconds": 12.5})
    cfg = InitConfig(name="word2vec", epochs=5, window=5, negative=5, sg=True)
    c = init_compute(cfg, 128, 10_000, vec, trained_here=True)
    assert c.train_tokens == 50_000 and c.epochs == 5.0 and c.wall_s == 12.5
    assert c.flops == word2vec_flops(10_000, 5, 128, 5, 5, True)


def test_glove_is_external_with_its_known_corpus() -> None:
    c = init_compute(InitConfig(name="glove"), 128, 10_000, None, trained_here=False)
    assert c.train_tokens == GLOVE_6B_TOKENS and c.flops == 0.0 and c.source.startswith("external")
