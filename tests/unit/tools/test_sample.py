"""embinit-sample on a hand-built run directory: windowing, determinism, greedy, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import embinit
from embinit.tools.sample import generate, main, sample_text
from tests.unit.tools.test_load import make_run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run", block_tokens=8)


def test_generate_appends_tokens_and_feeds_at_most_the_trained_window(run_dir: Path) -> None:
    model = embinit.load_run(run_dir).model
    seen: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    prompt = list(range(20))  # longer than the window and than the position table (16)
    out = generate(model, prompt, max_new_tokens=5, block_tokens=8, temperature=1.0, top_k=5)
    assert out[:20] == prompt and len(out) == 25
    assert seen == [8] * 5
    assert all(0 <= t < model.vocab_size for t in out)


def test_same_seed_same_text_and_greedy_is_argmax(run_dir: Path) -> None:
    a = sample_text(str(run_dir), "The city", max_new_tokens=12, seed=1)
    assert a == sample_text(str(run_dir), "The city", max_new_tokens=12, seed=1)
    assert a.startswith("The city")
    model = embinit.load_run(run_dir).model
    out = generate(model, [5, 6], max_new_tokens=1, block_tokens=8, temperature=0)
    with torch.no_grad():
        logits, _ = model(torch.tensor([[5, 6]]))
    assert out[-1] == int(logits[0, -1].argmax())


def test_top_k_one_is_greedy(run_dir: Path) -> None:
    model = embinit.load_run(run_dir).model
    greedy = generate(model, [5, 6], 6, 8, temperature=0)
    assert generate(model, [5, 6], 6, 8, temperature=1.5, top_k=1, seed=9) == greedy


def test_cli_prints_text_and_reports_errors(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(run_dir), "--prompt", "The king", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.startswith("The king")
    assert main([str(run_dir), "--prompt", ""]) == 2
    assert "encodes to no tokens" in capsys.readouterr().err
    assert main([str(run_dir.parent / "missing"), "--prompt", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
