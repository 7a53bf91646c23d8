"""Bad input through the CLI: one clear message, a non-zero exit, and never a completed run.

Each case builds what it needs under the test's tmp_path, runs `python run.py` with a
tiny model, and checks that stderr names the problem (no traceback) and that no
summary.json under tmp_path claims completion.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest

from tests.cli import TINY, run_cli, summaries, write_corpus


class Inputs:
    """What the cases share, made once per module: a good corpus and an unfinished run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.corpus = write_corpus(root / "corpus", n_docs=20, sentences=16)

    @cached_property
    def unfinished_run(self) -> Path:
        """A TINY run (d_model 32) killed after its last checkpoint: no summary.json yet."""
        run_dir = self.root / "unfinished"
        res = run_cli(*TINY, *_text_files(self.corpus), f"paths.root={self.root}",
                      f"hydra.run.dir={run_dir}", "train.max_steps=2", cwd=self.root)
        assert res.returncode == 0, res.stderr
        (run_dir / "summary.json").unlink()
        return run_dir


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("inputs"))


def _text_files(path: Path) -> list[str]:
    return ["data=text_files", f"data.path={path}"]


def _vectors_file(tmp: Path, name: str, content: bytes) -> list[str]:
    path = tmp / name
    path.write_bytes(content)
    return ["init=word2vec", f"init.vectors_path={path}"]


def _text_vectors(words: list[str], dim: int) -> bytes:
    rows = [f"{w} " + " ".join(f"{0.1 * (i + j + 1):.3f}" for j in range(dim))
            for i, w in enumerate(words)]
    return (f"{len(words)} {dim}\n" + "\n".join(rows) + "\n").encode()


# Each case: (tmp_path, inputs) -> overrides. The run directory is tmp_path/run unless the
# case sets hydra.run.dir itself.
def data_path_missing(tmp: Path, inputs: Inputs) -> list[str]:
    return _text_files(tmp / "no-such-dir")


def data_path_empty_dir(tmp: Path, inputs: Inputs) -> list[str]:
    (tmp / "empty").mkdir()
    return _text_files(tmp / "empty")


def no_usable_text(tmp: Path, inputs: Inputs) -> list[str]:
    d = tmp / "blank"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.txt").write_text(" \n\n\t\n")
    return _text_files(d)


def smaller_than_one_block(tmp: Path, inputs: Inputs) -> list[str]:
    d = tmp / "tiny"
    d.mkdir()
    for i in range(40):
        (d / f"{i}.txt").write_text(f"Short note number {i}.\n")
    # vocab.size=270: BPE reaches only 274 tokens on these notes (300 would be refused first).
    return [*_text_files(d), "model.block_size=512", "vocab.size=270"]


def non_utf8_bytes(tmp: Path, inputs: Inputs) -> list[str]:
    d = tmp / "latin1"
    shutil.copytree(inputs.corpus, d)
    (d / "doc005.txt").write_bytes("Caf\u00e9 au lait, na\u00efve.\n".encode("latin-1"))
    return [*_text_files(d), "data.non_utf8=error"]


def unknown_option(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "model.n_heads=4"]


def unknown_group_value(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "vocab=sentencepiece"]


def vocab_size_zero(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "vocab.size=0"]


def vocab_size_below_bytes(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "vocab.size=200"]


def d_model_not_divisible(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "model.d_model=30", "model.n_head=4"]


def vectors_missing(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "init=word2vec", f"init.vectors_path={tmp / 'nope.txt'}"]


def vectors_truncated_text(tmp: Path, inputs: Inputs) -> list[str]:
    full = _text_vectors(["the", "and", "of"], 32)
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "cut.txt", full[: len(full) // 2])]


def vectors_truncated_binary(tmp: Path, inputs: Inputs) -> list[str]:
    row = b"the " + struct.pack("<32f", *([0.1] * 32))
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "cut.bin", b"3 32\n" + row + row[:20])]


def vectors_not_word2vec(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "vectors.txt", b'{"the": [0.1, 0.2]}\n')]


def vectors_pickle_without_opt_in(tmp: Path, inputs: Inputs) -> list[str]:
    # Never unpickled: the suffix alone is refused without init.allow_pickle=true.
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "w2v.model", b"\x80\x04not really")]


def vectors_no_overlap(tmp: Path, inputs: Inputs) -> list[str]:
    content = _text_vectors(["xyzzy1", "plugh2", "frobozz3"], 32)
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "other.txt", content)]


def vectors_dim_without_projection(tmp: Path, inputs: Inputs) -> list[str]:
    content = _text_vectors(["a", "e", "t"], 8)
    return [*_text_files(inputs.corpus), *_vectors_file(tmp, "small.txt", content),
            "init.projection=none"]


def zero_steps(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "train.max_steps=0"]


def zero_bytes(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "train.budget=bytes", "train.max_bytes=0"]


def batch_larger_than_train_split(tmp: Path, inputs: Inputs) -> list[str]:
    return [*_text_files(inputs.corpus), "train.batch_size=4096"]


def output_dir_not_writable(tmp: Path, inputs: Inputs) -> list[str]:
    # chmod does not stop root; a path below a regular file cannot be created by anyone.
    (tmp / "a-file").write_text("")
    return [*_text_files(inputs.corpus), f"hydra.run.dir={tmp / 'a-file' / 'run'}"]


def resume_with_another_model_shape(tmp: Path, inputs: Inputs) -> list[str]:
    # The saved config.json differs: the identity check refuses before any checkpoint loads.
    shutil.copytree(inputs.unfinished_run, tmp / "run")
    return [*_text_files(inputs.corpus), "model.d_model=64"]


def checkpoint_from_another_model_shape(tmp: Path, inputs: Inputs) -> list[str]:
    # A checkpoint without its config.json (copied in): the checkpoint's own signature check.
    (tmp / "run").mkdir()
    shutil.copy(inputs.unfinished_run / "checkpoint.pt", tmp / "run" / "checkpoint.pt")
    return [*_text_files(inputs.corpus), "model.d_model=64"]


CASES: list[tuple[Callable[[Path, Inputs], list[str]], str]] = [
    (data_path_missing, "does not exist; point data.path at"),  # 1
    (data_path_empty_dir, "contains no .txt files"),  # 1
    (no_usable_text, "has no usable text"),  # 2
    (smaller_than_one_block, "fewer than one block of 512"),  # 2
    (non_utf8_bytes, "doc005.txt: invalid UTF-8 at byte offset 3"),  # 3
    (unknown_option, "Could not override 'model.n_heads'"),  # 4
    (unknown_group_value, "Could not find 'vocab/sentencepiece'"),  # 4
    (vocab_size_zero, "vocab.size=0 is too small for vocab=bpe with every byte as a token"),  # 5
    (vocab_size_below_bytes, "vocab.size=200 is too small for vocab=bpe"),  # 5
    (d_model_not_divisible, "model.d_model=30 is not divisible by model.n_head=4"),  # 6
    (vectors_missing, "nope.txt does not exist"),  # 7
    (vectors_truncated_text, "cut.txt is not a readable word2vec text file"),  # 7
    (vectors_truncated_binary, "cut.bin is not a readable word2vec binary file"),  # 7
    (vectors_not_word2vec, "vectors.txt is neither word2vec/fastText text"),  # 7: names the formats
    (vectors_pickle_without_opt_in, "init.allow_pickle=true"),  # 7, security
    (vectors_no_overlap, "only 0 of 160 vocabulary types"),  # 8: rows that can take a vector
    (vectors_dim_without_projection, "the vectors have dimension 8 but model.d_model is 32"),  # 9
    (zero_steps, "train.budget=steps needs train.max_steps > 0 (got 0)"),  # 10
    (zero_bytes, "train.budget=bytes needs train.max_bytes > 0 (got 0)"),  # 10
    (batch_larger_than_train_split, "tokens of the training split"),  # 10
    (output_dir_not_writable, "is not writable"),  # 11
    (resume_with_another_model_shape, "model.d_model: 32 -> 64"),  # 12
    (checkpoint_from_another_model_shape, "written by an incompatible model shape"),  # 12
]


@pytest.mark.parametrize(("make", "phrase"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input_fails_clearly(tmp_path: Path, inputs: Inputs,
                                 make: Callable[[Path, Inputs], list[str]], phrase: str) -> None:
    overrides = [*TINY, f"paths.root={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}",
                 *make(tmp_path, inputs)]
    res = run_cli(*overrides, cwd=tmp_path, timeout=60)
    assert res.returncode != 0, res.stdout[-2000:]
    assert phrase in res.stderr, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    completed = [d for d, s in summaries(tmp_path).items() if s.get("status") == "completed"]
    assert not completed


def test_non_utf8_bytes_are_replaced_and_counted_by_default(tmp_path: Path,
                                                            inputs: Inputs) -> None:
    d = tmp_path / "latin1"
    shutil.copytree(inputs.corpus, d)
    (d / "doc005.txt").write_bytes("Caf\u00e9 au lait, na\u00efve.\n".encode("latin-1"))
    res = run_cli(*TINY, *_text_files(d), f"paths.root={tmp_path}",
                  f"hydra.run.dir={tmp_path / 'run'}", "train.max_steps=2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 undecodable byte sequences replaced by U+FFFD" in res.stdout + res.stderr
    summary = summaries(tmp_path)[tmp_path / "run"]
    assert summary["status"] == "completed"
    assert summary["data"]["replaced_chars"] == 2
