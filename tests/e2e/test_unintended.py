"""What was not meant, or was damaged, never ends as a quiet result (issue 22).

Each case runs the CLI on a tiny corpus and checks the clear message, the non-zero exit (or
the documented safe behaviour) and that nothing wrong is recorded as `completed`: an unknown
arm, a `+` key, a vocabulary size the corpus cannot reach, a damaged checkpoint, an edited
cached tokenizer, an edited summary, two processes on one run directory, a smoke sweep over
a study with committed results, and a write that fails for lack of space.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
from functools import cached_property
from pathlib import Path

import pytest

from tests.cli import RUN_PY, TINY, cli_env, run_cli, summaries, write_corpus


class Shared:
    """A corpus, one completed run and one unfinished run, made once for the module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.corpus = write_corpus(root / "corpus", n_docs=20, sentences=16)
        self.args = [*TINY, "data=text_files", f"data.path={self.corpus}", f"paths.root={root}"]

    @cached_property
    def completed(self) -> Path:
        run_dir = self.root / "completed"
        res = run_cli(*self.args, f"hydra.run.dir={run_dir}", cwd=self.root)
        assert res.returncode == 0, res.stderr
        return run_dir

    @cached_property
    def unfinished(self) -> Path:
        """A run killed after its last checkpoint: checkpoint.pt, no summary.json."""
        run_dir = self.root / "unfinished"
        res = run_cli(*self.args, f"hydra.run.dir={run_dir}", cwd=self.root)
        assert res.returncode == 0, res.stderr
        (run_dir / "summary.json").unlink()
        return run_dir


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    return Shared(tmp_path_factory.mktemp("unintended"))


def _no_completed(root: Path) -> None:
    assert not [d for d, s in summaries(root).items() if s.get("status") == "completed"]


@pytest.mark.parametrize(("override", "phrase"), [
    ("arm=wordd_glove", "arm=wordd_glove is not an arm (there is no conf/arm/wordd_glove.yaml); "
                        "did you mean arm=word_glove"),
    ("+train.lrr=0.1", "train.lrr is not a setting (a '+' adds keys nothing reads); did you "
                       "mean train.lr?"),
    ("vocab.oov=unk", "vocab.size=300 cannot be reached on this corpus"),
], ids=["unknown-arm", "plus-key", "vocab-size-out-of-reach"])
def test_what_was_not_meant_is_refused(shared: Shared, tmp_path: Path, override: str,
                                       phrase: str) -> None:
    extra = ["vocab=word"] if override == "vocab.oov=unk" else []
    res = run_cli(*shared.args, *extra, override, f"paths.root={tmp_path}",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert res.returncode == 2, res.stdout[-2000:]
    assert phrase in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("error:") == 1 and "error" not in res.stdout.lower()  # said once
    _no_completed(tmp_path)


def _flip_tensor_bytes(checkpoint: Path, n: int = 8) -> None:
    """Flip n bytes inside the largest tensor of a torch zip file (torch still loads it)."""
    with zipfile.ZipFile(checkpoint) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    with open(checkpoint, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
        at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        fh.seek(at)
        data = fh.read(n)
        fh.seek(at)
        fh.write(bytes(b ^ 0xFF for b in data))


def test_a_damaged_checkpoint_refuses_the_resume(shared: Shared, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(shared.unfinished, run_dir)
    _flip_tensor_bytes(run_dir / "checkpoint.pt")
    res = run_cli(*shared.args, f"hydra.run.dir={run_dir}", cwd=shared.root)
    assert res.returncode == 2, res.stdout[-2000:]
    assert f"checkpoint {run_dir / 'checkpoint.pt'} fails its checksum" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("error:") == 1
    assert not (run_dir / "summary.json").exists()


def test_an_edited_cached_tokenizer_is_rebuilt_not_used(shared: Shared, tmp_path: Path) -> None:
    before = json.loads((shared.completed / "summary.json").read_text())
    [tok_path] = (shared.root / "cache" / "tokenizers").glob("*/tokenizer.json")
    tok = json.loads(tok_path.read_text())
    vocab = tok["model"]["vocab"]
    victim = next(t for t, i in vocab.items() if i == max(vocab.values()))
    vocab["Ġzzzz"] = vocab.pop(victim)  # one token string changed: still valid JSON
    tok_path.write_text(json.dumps(tok))
    run_dir = tmp_path / "again"
    res = run_cli(*shared.args, f"hydra.run.dir={run_dir}", cwd=shared.root)
    assert res.returncode == 0, res.stderr
    log = res.stdout + res.stderr
    assert "fails its sha256 check (edited or damaged since it was written); retraining" in log
    assert "reusing cached token arrays" in log  # the retrained tokenizer is the original
    assert "Ġzzzz" not in tok_path.read_text()
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["data"]["train_tokens"] == before["data"]["train_tokens"]
    assert after["val"]["nats"] == before["val"]["nats"]  # the same run, bit for bit


def test_the_report_flags_an_edited_summary(shared: Shared, tmp_path: Path) -> None:
    import shutil

    from embinit.study.load import load_study

    run_dir = tmp_path / "study" / "bpe300+scratch" / "seed0"
    shutil.copytree(shared.completed, run_dir)
    assert load_study(tmp_path / "study").warnings == []
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["val"]["bpb"] = 1.179  # edited, still valid JSON
    summary["test"]["nats"] *= 0.9
    (run_dir / "summary.json").write_text(json.dumps(summary))
    warnings = load_study(tmp_path / "study").warnings
    assert len(warnings) == 2, warnings
    assert "val: its bpb is not nats / (ln 2 x bytes)" in warnings[0]
    assert "test: its per-document nats do not sum to its nats" in warnings[1]
    assert all("edited or damaged" in w for w in warnings)


def test_two_processes_on_one_run_directory_never_train_side_by_side(shared: Shared,
                                                                     tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Long enough (~2 s of training) that the second process arrives while the first trains.
    args = [sys.executable, str(RUN_PY), *shared.args, f"paths.root={tmp_path}",
            f"hydra.run.dir={run_dir}", "train.max_steps=300", "train.log_interval=50",
            "train.eval_interval=100", "train.ckpt_interval=100"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trained = [o for o in outs if "6 steps of" in o or "300 steps of" in o]
    assert len(trained) == 1, outs  # one process trained; the other waited, then skipped
    other = outs[1 - outs.index(trained[0])]
    assert "nothing to do" in other, other
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == sorted(set(steps)) and steps[-1] == 300  # no interleaved rows
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


SWEEP = "import sys; from embinit.cli import sweep; sys.exit(sweep())"


def test_a_smoke_sweep_never_writes_into_a_studys_committed_results(shared: Shared,
                                                                    tmp_path: Path) -> None:
    committed = tmp_path / "results" / "arms" / "report.md"
    committed.parent.mkdir(parents=True)
    committed.write_text("the published 3-seed report\n")
    # The arms study (3 arms x 3 seeds) cut to one tiny run; train.context=tokens so the
    # study's byte-sized window fits the tiny model's 32 positions.
    args = [*[a for a in shared.args if not a.startswith(("vocab.size", "paths.root"))],
            f"paths.root={tmp_path}", "arm=bpe_scratch", "seed=0", "train.context=tokens"]
    refused = subprocess.run([sys.executable, "-c", SWEEP, "arms", *args, "study.name=arms"],
                             cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "would mix other runs into experiments/arms" in (
        refused.stderr), refused.stderr
    res = subprocess.run([sys.executable, "-c", SWEEP, "arms", *args], cwd=tmp_path,
                         env=cli_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "go to arms-smoke/ under experiments/ and results/, not arms/" in res.stderr
    assert committed.read_text() == "the published 3-seed report\n"
    assert sorted(p.name for p in committed.parent.iterdir()) == ["report.md"]
    assert (tmp_path / "results" / "arms-smoke" / "report.md").exists()
    assert not (tmp_path / "experiments" / "arms").exists()
    [(run, summary)] = summaries(tmp_path / "experiments" / "arms-smoke").items()
    assert summary["status"] == "completed" and summary["study"] == "arms-smoke"


def _file_size_limit(limit: int):  # noqa: ANN202
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_fails_in_one_line_and_the_same_command_resumes(shared: Shared,
                                                                    tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [sys.executable, str(RUN_PY), *shared.args, f"paths.root={tmp_path}",
            f"hydra.run.dir={run_dir}"]
    # 150 kB: the corpus, token arrays and logs fit; the first checkpoint (~290 kB) does not.
    res = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                         timeout=120, preexec_fn=_file_size_limit(150_000))
    assert res.returncode == 2, res.stdout[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"error: could not write {run_dir / 'checkpoint.pt'}: File too "
                               "large; the file is larger than the file-size limit"), lines[0]
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "summary.json").exists()
    assert not list(run_dir.glob(".*.tmp"))  # the partial write is gone
    # A temp file left by a kill mid-write is removed by the next run, which completes.
    stray = run_dir / ".checkpoint.pt.abcd1234.tmp"
    stray.write_bytes(b"partial")
    again = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not stray.exists() and f"removed {stray}" in again.stdout
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert os.path.getsize(run_dir / "checkpoint.pt") > 150_000


def test_a_capped_final_evaluation_shows_progress_and_is_recorded_as_partial(
        shared: Shared, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    res = run_cli(*shared.args, f"paths.root={tmp_path}", f"hydra.run.dir={run_dir}",
                  "train.final_eval_tokens=100", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    log = res.stdout
    assert "final evaluation of val: 1 of 2 documents" in log and "final val: " in log
    assert "periodic val subset (2 windows)" in log and "sliding" not in log  # smoke: none
    assert "final evaluation: val bpb " in log and "[first 1 of 2 documents" in log
    s = json.loads((run_dir / "summary.json").read_text())
    val = s["val"]
    assert val["partial"] == {"docs": 1, "of": 2, "max_tokens": 100}
    assert len(val["doc_nats"]) == len(val["doc_ids"]) == 1
    assert sum(val["doc_bytes"]) == val["bytes"] < s["data"]["val_bytes"]
    assert all(len(o["val"]["doc_nats"]) == 1 for o in s["baselines"]["ngram"]["orders"].values())


HELP = """import sys, contextlib, io
from embinit.cli import {cmd}
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    {cmd}(["--help"])
heavy = sorted(m for m in ("pandas", "torch", "matplotlib", "scipy") if m in sys.modules)
print(out.getvalue() + "HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize(("cmd", "name"), [("report", "embinit-report"),
                                          ("sample", "embinit-sample")])
def test_help_is_fast_names_the_command_and_shows_defaults(cmd: str, name: str) -> None:
    res = subprocess.run([sys.executable, "-c", HELP.format(cmd=cmd)], env=cli_env(),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {name} ") and "(default: " in res.stdout
    assert res.stdout.rstrip().endswith("HEAVY="), res.stdout  # lazy: nothing heavy imported
