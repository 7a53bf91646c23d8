"""Helpers for tests that drive `python run.py` as a subprocess, the way a user does."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "run.py"

# A model and trainer small enough that a run takes about a second on one CPU thread.
TINY = [
    "train=smoke", "train.num_threads=1", "vocab.size=300", "model.n_layer=1",
    "model.d_model=32", "model.n_head=2", "model.block_size=32",
]


def write_corpus(directory: Path, n_docs: int = 40, sentences: int = 40, seed: int = 0) -> Path:
    """A directory of word-like .txt documents (Zipf-ish vocabulary), ~4 KB per 40 sentences."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(400)]
    directory.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        lines = []
        for _ in range(sentences):
            n = rng.randint(5, 15)
            picked = [words[min(int(rng.paretovariate(1.2)) - 1, len(words) - 1)] for _ in range(n)]
            lines.append(" ".join(picked).capitalize() + ".")
        paragraphs = [" ".join(lines[i:i + 8]) for i in range(0, len(lines), 8)]
        (directory / f"doc{d:03d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return directory


def run_cli(*overrides: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python run.py <overrides>`; Hydra's short error messages, not full tracebacks."""
    return subprocess.run([sys.executable, str(RUN_PY), *overrides], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("EMBINIT_ROOT", None)
    env["TQDM_DISABLE"] = "1"
    return env


def summaries(root: Path) -> dict[Path, dict]:
    """Every summary.json under root, by its run directory."""
    return {p.parent: json.loads(p.read_text()) for p in root.rglob("summary.json")}
