"""study.report: the CLI, in process, on fabricated run records, and what it writes."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from embinit.study.load import load_study
from embinit.study.report import build as B
from embinit.study.report.doc import markdown_images
from tests.unit.study.fabricate import write_run, write_study

FIGURES = (
    "headline.png",
    "val_bpb_lossless_vs_bytes.png",
    "val_bpb_vs_bytes.png",
    "val_bpb_vs_steps.png",
    "train_loss_vs_steps.png",
    "final_bpb.png",
    "params.png",
    "oov.png",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One fabricated study and its report, shared by the tests that only read them."""
    tmp_path = tmp_path_factory.mktemp("built")
    study = write_study(tmp_path / "experiments")
    out = tmp_path / "results" / "arms"
    assert B.main([str(study), "--out", str(out)]) == 0
    return study, out


def test_cli_writes_every_file(built: tuple[Path, Path]) -> None:
    _, out = built
    for name in ("report.md", "report.html", "summary.csv", "runs.csv", "heldout.csv"):
        assert (out / name).is_file(), name
    for fig in FIGURES:
        assert (out / "figures" / fig).read_bytes().startswith(PNG_MAGIC), fig
    assert not list(out.rglob("*.tmp"))


def test_every_image_in_report_md_exists(built: tuple[Path, Path]) -> None:
    _, out = built
    md = (out / "report.md").read_text()
    images = markdown_images(md)
    assert sorted(Path(p).name for p in images) == sorted(FIGURES)
    for rel in images:
        assert not rel.startswith(("/", "http")), rel  # relative links render on GitHub
        assert (out / rel).is_file(), rel


def test_report_md_order_and_content(built: tuple[Path, Path]) -> None:
    _, out = built
    md = (out / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == [
        "Claims scorecard",  # the report opens with the scorecard (claims 1 and 2 tested)
        "Design",
        "Headline: held-out bits per byte",
        "Per split: validation and test",
        "Per-metric verdicts (seeds only)",
        "Raw bits per byte (seed means)",
        "OOV-adjusted and lossless bits per byte",
        "Figures",
        "Parameters",
        "Out-of-vocabulary",
        "Throughput",
        "Incomplete and diverged runs",
        "Configuration",
        "Software versions",
    ]
    assert md.startswith("# embinit report: arms\n")
    # The headline: lossless held-out bpb (val and test pooled), seed t for these old-style
    # records, said in one sentence; no lowest arm and no raw bpb verdict across tokenizers.
    assert "These records carry no per-document losses" in md
    assert "- word+word2vec vs bpe+scratch: +0.300 lossless bpb [95% CI +0.275, +0.325]" in md
    assert "Holm-adjusted p=" in md and "Lowest" not in md
    assert "word+word2vec vs bpe+scratch: +0.100 bpb" not in md
    assert "Same initial body across arms at each seed: not recorded" in md
    assert "NOT comparable across tokenizers" in md
    assert "bpb_adj = (Σ_t nats_t + Σ_{t : target_t = <unk>} cost(w_t)) / (ln 2 · bytes)" in md
    assert "| word+scratch | 2 | diverged | 120 | word+scratch/seed2 |" in md
    assert "| word+word2vec | 3 | missing | — | word+word2vec/seed3 |" in md
    assert "| bpe+scratch | 3 | 1.210 [1.185, 1.235] |" in md
    assert "124,242,432" in md  # gpt2_small with a tied 50,000-word vocabulary
    assert "\nseed:" not in md and "Varies with the seed: `init.seed`, `seed`." in md
    assert "| torch | 2.13.0 |" in md
    # `<unk>` outside code spans is escaped so GitHub does not swallow it as a tag.
    assert "val `<unk>` token rate" in md and "<unk> by" not in md.replace("`<unk>`", "")


def test_report_html_is_self_contained(built: tuple[Path, Path]) -> None:
    _, out = built
    page = (out / "report.html").read_text()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(srcs) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"'](?!data:)", page)
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page
    assert "<code>&lt;unk&gt;</code>" in page
    assert "<table>" in page and "word+word2vec vs bpe+scratch: +0.300 lossless bpb" in page


def test_csvs(built: tuple[Path, Path]) -> None:
    _, out = built
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["arm"]) == ["bpe+scratch", "word+scratch", "word+word2vec"]
    assert summary["val_bpb_mean"].tolist() == pytest.approx([1.21, 1.16, 1.31], abs=1e-12)
    for col in (
        "val_bpb_lo",
        "val_bpb_hi",
        "test_bpb_oov_adjusted_mean",
        "val_bpb_diff",
        "val_bpb_p",
    ):
        assert col in summary.columns
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 10
    assert set(runs["status"]) == {"completed", "diverged", "missing"}


def test_second_build_is_byte_identical(built: tuple[Path, Path], tmp_path: Path) -> None:
    study, out = built
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert B.main([str(study), "--out", str(out)]) == 0
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    for name in ("summary.csv", "runs.csv", "report.md", "report.html"):
        assert first[Path(name)] == second[Path(name)], name


def test_default_out_dir_is_results_study_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = write_study(tmp_path / "experiments", name="mystudy")
    monkeypatch.chdir(tmp_path)
    assert B.main([str(study)]) == 0
    assert (tmp_path / "results" / "mystudy" / "report.md").is_file()


def test_empty_study_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "experiments" / "empty"
    study.mkdir(parents=True)
    out = tmp_path / "results" / "empty"
    assert B.main([str(study), "--out", str(out)]) == 2
    assert "no completed runs" in capsys.readouterr().err
    assert not out.exists()


def test_study_without_completed_runs_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "s"
    write_run(study, "bpe+scratch", 0, "diverged")
    write_run(study, "bpe+scratch", 1, None)
    out = tmp_path / "out"
    assert B.main([str(study), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 run directories (1 diverged, 1 missing)" in err
    assert not out.exists()


def test_missing_study_dir_and_unknown_reference_exit_2(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    study, _ = built
    assert B.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o1")]) == 2
    assert B.main([str(study), "--reference", "nope", "--out", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_reference_override(built: tuple[Path, Path], tmp_path: Path) -> None:
    study, _ = built
    rep = B.build_report(load_study(study), "word+word2vec")
    assert rep.reference_arm == "word+word2vec"
    assert list(rep.summary["arm"])[0] == "word+word2vec"
    md = rep.files["report.md"].decode()
    assert "- bpe+scratch vs word+word2vec: -0.300 lossless bpb [95% CI -0.325, -0.275]" in md


def test_oov_spelled_columns_are_blank_in_old_records(built: tuple[Path, Path]) -> None:
    md = (built[1] / "report.md").read_text()
    oov = md[md.index("## Out-of-vocabulary\n") : md.index("## Throughput\n")]
    assert "| val spelled words | val spelled bytes | test spelled words | test spelled bytes |" \
        in oov
    # records written before the spelled shares: shown as not recorded, not as 0
    assert "| word+word2vec | word | 16,384 | 2.00% | 40.00% | 5.00% | 2.10% | 5.10% | — | — | " \
        "— | — | 90.0% | 98.0% |" in oov
    assert "—: not in these records." in oov
