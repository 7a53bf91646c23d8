"""embinit.load_run on a hand-built self-contained run directory (tiny GPT, tiny tokenizer)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import embinit
from embinit.config import ModelConfig
from embinit.errors import DataError
from embinit.record import (
    CONFIG_FILE,
    FINAL_WEIGHTS_FILE,
    INIT_EMBEDDING_FILE,
    SUMMARY_FILE,
    TOKENIZER_FILE,
)
from embinit.run.model import GPT

TEXT = ("The city of the king is by the river. The war and the music of the first house. "
        "Science and water, one good January in the British city. ") * 20
TINY_MODEL = ModelConfig(name="tiny", n_layer=1, n_head=2, d_model=16, block_size=16)


def make_run_dir(path: Path, block_tokens: int | None = 8, with_init: bool = True,
                 model_cfg: ModelConfig = TINY_MODEL, tokenizer: Any = None) -> Path:
    """What a finished run leaves: config.json, summary.json, tokenizer.json, model.pt, init.

    ``tokenizer``: an embinit-trained one, saved as a run saves it (`run_tokenizer_json`);
    by default a hand-built BPE with the end-of-document token only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from embinit.run.data.tokenizer import run_tokenizer_json

    path.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([TEXT], trainer)
        tok.save(str(path / TOKENIZER_FILE))
    else:
        tok = tokenizer
        (path / TOKENIZER_FILE).write_text(run_tokenizer_json(tok), encoding="utf-8")
    vocab = tok.get_vocab_size()
    model = GPT(model_cfg, vocab, seed=3)
    init = np.random.default_rng(0).normal(0, 0.02, (vocab, model_cfg.d_model)).astype(np.float32)
    model.set_token_embedding(init)
    with torch.no_grad():  # "training" moved the embedding away from its init
        model.wte.weight.add_(0.01)
    torch.save(model.state_dict(), path / FINAL_WEIGHTS_FILE)
    if with_init:
        np.save(path / INIT_EMBEDDING_FILE, init)
    config = {"seed": 3, "model": dataclasses.asdict(model_cfg), "vocab": {"name": "bpe"},
              "init": {"name": "scratch"}}
    (path / CONFIG_FILE).write_text(json.dumps(config))
    summary = {"status": "completed",
               "context": {"block_tokens": block_tokens} if block_tokens else None}
    (path / SUMMARY_FILE).write_text(json.dumps(summary))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run")


def test_load_run_returns_the_saved_model_in_eval_mode(run_dir: Path) -> None:
    loaded = embinit.load_run(run_dir)
    saved = torch.load(run_dir / FINAL_WEIGHTS_FILE, weights_only=True)
    assert not loaded.model.training
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, saved[name])
    assert loaded.tokenizer.get_vocab_size() == loaded.model.vocab_size
    assert loaded.config["seed"] == 3 and loaded.summary["status"] == "completed"
    assert loaded.block_tokens == 8  # the trained context, not the position table (16)
    np.testing.assert_array_equal(loaded.init_embedding(), np.load(run_dir / INIT_EMBEDDING_FILE))


def test_block_tokens_falls_back_to_the_position_table(tmp_path: Path) -> None:
    loaded = embinit.load_run(make_run_dir(tmp_path / "r", block_tokens=None))
    assert loaded.block_tokens == TINY_MODEL.block_size


def test_compiled_model_keys_load(run_dir: Path) -> None:
    state = torch.load(run_dir / FINAL_WEIGHTS_FILE, weights_only=True)
    torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, run_dir / FINAL_WEIGHTS_FILE)
    assert embinit.load_run(run_dir).model.vocab_size == state["wte.weight"].shape[0]


def test_run_without_model_says_to_rerun(run_dir: Path) -> None:
    (run_dir / FINAL_WEIGHTS_FILE).unlink()
    with pytest.raises(DataError, match="has not finished or predates self-contained run "
                                        "directories; re-run it"):
        embinit.load_run(run_dir)


def test_missing_directory_and_corrupt_weights_are_data_errors(run_dir: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        embinit.load_run(run_dir / "nope")
    (run_dir / FINAL_WEIGHTS_FILE).write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="cannot read"):
        embinit.load_run(run_dir)


def test_import_embinit_does_not_import_torch() -> None:
    code = "import sys, embinit; embinit.__version__; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
