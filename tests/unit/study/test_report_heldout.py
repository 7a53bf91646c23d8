"""The report of new-style records: design, held-out headline, splits, sliding, spellers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from embinit.study.load import load_study
from embinit.study.report import build as B
from embinit.study.stats import BOOTSTRAP_B
from tests.unit.study.fabricate import NEW_ARMS, write_new_study


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("heldout")
    study = write_new_study(tmp / "experiments")
    out = tmp / "results" / "design"
    assert B.main([str(study), "--out", str(out)]) == 0
    return study, out


def _section(md: str, heading: str) -> str:
    start = md.index(f"## {heading}\n")
    nxt = md.find("\n## ", start + 1)
    return md[start : nxt if nxt >= 0 else len(md)]


def test_section_order(built: tuple[Path, Path]) -> None:
    md = (built[1] / "report.md").read_text()
    assert re.findall(r"^## (.+)$", md, flags=re.M) == [
        "Claims scorecard",  # the report opens with the scorecard (claims 1 and 2 tested)
        "Design",
        "Headline: held-out bits per byte",
        "Per split: validation and test",
        "Sliding-window evaluation",
        "Closed-vocabulary arms under each speller",
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
    assert re.findall(r"^### (.+)$", _section(md, "Per split: validation and test"),
                      flags=re.M) == ["Validation", "Test"]
    assert md.startswith("# embinit report: design\n\nfabricated new-style study\n")


def test_design_section(built: tuple[Path, Path]) -> None:
    design = _section((built[1] / "report.md").read_text(), "Design")
    assert (
        "| word+word2vec | word/bytes 16,384 | bytes | 0.500 | bytes | 100 | 512.0 | 1.50e+12 | "
        "500,000 | 5.0 | 3.0 | 2.00e+10 | 1.52e+12 |" in design
    )
    assert "| bpe+scratch | bpe 8,192 | bytes | 0.500 | bytes | 128 | 512.0 | 1.00e+12 | 0 |" in design
    assert "Same initial body across arms at each seed: yes" in design
    assert "Not in these records" not in design


def test_headline_section(built: tuple[Path, Path]) -> None:
    head = _section((built[1] / "report.md").read_text(), "Headline: held-out bits per byte")
    assert "no model selection uses the validation split" in head
    assert (
        "Intervals (95%) and p-values add two variance components. Δ is the difference of the "
        "two arms' bpb over every (seed, document) cell both completed" in head
    )
    assert (
        f"over {BOOTSTRAP_B:,} bootstrap resamples of the D documents alone (every seed kept, "
        "the same documents drawn for both arms, fixed RNG seed)" in head
    )
    assert "v_seed = s²/S" in head and "Δ ± t_{0.975, df} · SE" in head
    assert "df = (v_doc + v_seed)² / (v_seed²/(S − 1) + v_doc²/(D_eff − 1))" in head
    assert "D_eff = (Σ b_d)² / Σ b_d²" in head
    assert "resamples the documents and the seeds" not in head
    assert "no per-document losses" not in head and "Warning" not in head
    assert re.search(r"Only 9 held-out documents \([\d.]+ effective, by bytes\): the document "
                     r"component is estimated from so few", head)
    assert "Holm-adjusted across the 3 primary comparisons" in head
    assert (
        "- word+word2vec vs bpe+scratch: -0.050 bpb [95% CI -0.050, -0.050], p<0.001, "
        "Holm-adjusted p<0.001 (9 documents × 3 seeds, t with " in head
    )
    assert "word+word2vec is lower (better) by 0.050 to 0.050 bpb (95% CI, unadjusted)." in head
    assert "depends on the speller" not in head  # word_unk+scratch is not significant
    # The 9 documents are of unequal size, 8.57 effective ones (stats.effective_docs): the
    # document term's df is n_eff - 1, so the t quantile has 7.6 df rather than D - 1 = 8.
    assert ("- word_unk+scratch vs bpe+scratch: +0.006 lossless bpb [95% CI -0.018, +0.029], "
            "p=0.599, Holm-adjusted p=1.000 (9 documents × 3 seeds, t with 7.6 df): not "
            "significant (CI [-0.018, +0.029])") in head
    assert "equivalent within ±0.02 bpb (90% CI" in head
    assert "| figure [95% CI] | figure df | Δ vs bpe+scratch [95% CI] | Δ df | p |" in head
    assert ("| word_unk+scratch | word/unk 16,384 | lossless bpb | 9 × 3 | 1.716 [1.608, 1.823] "
            "| 7.8 | +0.006 [-0.018, +0.029] | 7.6 | 0.599 | 1.000 |") in head
    bullets = [line for line in head.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3
    assert not any("tied" in b or "Lowest" in b or "word_unk+scratch is lower" in b
                   for b in bullets)


def test_split_sliding_and_speller_sections(built: tuple[Path, Path]) -> None:
    md = (built[1] / "report.md").read_text()
    split = _section(md, "Per split: validation and test")
    assert split.count("| word+word2vec | word/bytes 16,384 | bpb | ") == 2
    assert "| word+word2vec | word/bytes 16,384 | bpb | 4 × 3 |" in split
    assert "| word+word2vec | word/bytes 16,384 | bpb | 5 × 3 |" in split
    # each split has few documents: the caution is repeated for it
    assert re.search(r"Only 4 validation documents \([\d.]+ effective, by bytes\): the "
                     r"document component is estimated", split)
    assert re.search(r"Only 5 test documents \([\d.]+ effective, by bytes\): the document "
                     r"component is estimated", split)
    sliding = _section(md, "Sliding-window evaluation")
    assert "| bpe+scratch | val | bpb | 1.659 | 1.639 | -0.020 | 64 |" in sliding
    # charged arm: its sliding figure is lossless, beside the lossless non-overlapping one
    assert "| word_unk+scratch | val | lossless bpb | 1.657 | 1.637 | -0.020 | 64 |" in sliding
    speller = _section(md, "Closed-vocabulary arms under each speller")
    assert "| word_unk+scratch | n-gram | 1.627 | 1.738 | 1.686 | -0.024 [-0.048, -0.001] |" in speller
    per_metric = _section(md, "Per-metric verdicts (seeds only)")
    assert "word_unk+scratch vs bpe+scratch: the lossless figure of a closed-vocabulary arm " \
        "depends on the speller" in per_metric
    assert "Lowest" not in per_metric


def test_heldout_csv(built: tuple[Path, Path]) -> None:
    df = pd.read_csv(built[1] / "heldout.csv")
    assert list(df["scope"].unique()) == ["held-out", "val", "test"]
    assert len(df) == 3 * len(NEW_ARMS)
    w = df[(df["scope"] == "held-out") & (df["arm"] == "word+word2vec")].iloc[0]
    assert w["diff"] == pytest.approx(-0.05, abs=1e-12) and w["outcome"] == "lower"
    assert w["p_holm"] == pytest.approx(3 * w["p"]) and w["method"] == "variance components"
    assert w["df"] > 2 and w["arm_df"] > 2


def test_rebuild_is_byte_identical(built: tuple[Path, Path], tmp_path: Path) -> None:
    study, out = built
    again = tmp_path / "again"
    assert B.main([str(study), "--out", str(again)]) == 0
    for name in ("report.md", "heldout.csv", "summary.csv", "runs.csv"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_study_json_primary_and_margin(tmp_path: Path) -> None:
    from embinit.record import StudySettings, write_study_settings

    study = write_new_study(tmp_path, primary=("word+word2vec", "no+such"))
    rep = B.build_report(load_study(study))
    md = rep.files["report.md"].decode()
    assert "Holm-adjusted across the 1 primary comparison (" in md
    assert "Declared primary in study.json but not an arm compared with the reference here: " \
        "no+such." in md
    assert "bpe+word2vec vs bpe+scratch: +0.000 bpb [95% CI -0.003, +0.003], p=0.881; " \
        "secondary, outside the Holm family (9 documents × 3 seeds, t with 7.6 df): not " \
        "significant (CI [-0.003, +0.003])" in md
    write_study_settings(study, StudySettings(name="design", equivalence_margin=0.002))
    md = B.build_report(load_study(study)).files["report.md"].decode()
    assert "not shown equivalent within ±0.002 bpb" in md


def test_declared_pairs_in_headline_splits_and_csv(tmp_path: Path) -> None:
    pair, charged = "word+word2vec vs bpe+word2vec", "word_unk+scratch vs word+word2vec"
    study = write_new_study(tmp_path, primary=("word+word2vec", pair, "no+such vs word+word2vec",
                                                 charged))
    rep = B.build_report(load_study(study))
    md = rep.files["report.md"].decode()
    assert "Declared primary in study.json but not a pair of two different arms of this " \
        "study: no+such vs word+word2vec." in md
    assert "not an arm compared with the reference" not in md
    head = _section(md, "Headline: held-out bits per byte")
    assert "Holm-adjusted across the 3 primary comparisons" in head
    bullets = [line for line in head.splitlines() if line.startswith("- ")]
    # primary arms, then the declared pairs, then the secondary arms
    assert [b.split(":")[0] for b in bullets] == [
        "- word+word2vec vs bpe+scratch", f"- {pair}", f"- {charged}",
        "- bpe+word2vec vs bpe+scratch", "- word_unk+scratch vs bpe+scratch",
    ]
    assert bullets[0].startswith("- word+word2vec vs bpe+scratch: -0.050 bpb [95% CI -0.050, "
                                 "-0.050], p<0.001, Holm-adjusted p<0.001")
    assert bullets[1].startswith(f"- {pair}: -0.050 bpb [95% CI ")
    assert "Holm-adjusted p<0.001 (9 documents × 3 seeds, t with 7.6 df): word+word2vec is " \
        "lower (better)" in bullets[1]
    assert bullets[2].startswith(f"- {charged}: +0.056 lossless bpb [95% CI ")
    assert "under every speller (unigram: +0.056" in bullets[2]
    assert "word_unk+scratch lowercases its text" in bullets[2]
    assert "### Declared pairwise comparisons" in head
    assert f"| {pair} | bpb | 9 × 3 | -0.050 [-0.053, -0.047] | 7.6 | <0.001 | <0.001 |" in head
    assert f"| {charged} | lossless bpb | 9 × 3 | +0.056 [" in head
    assert head.count("| word+word2vec | word/bytes 16,384 | bpb | 9 × 3 |") == 1  # arm row kept
    split = _section(md, "Per split: validation and test")
    assert split.count("Declared pairwise comparisons (a minus b):") == 2
    assert f"| {pair} | bpb | 4 × 3 | -0.049 [" in split
    assert f"| {pair} | bpb | 5 × 3 | -0.051 [" in split
    assert re.findall(r"^### (.+)$", split, flags=re.M) == ["Validation", "Test"]
    # the speller table still has one row per (charged arm, speller)
    speller = _section(md, "Closed-vocabulary arms under each speller")
    assert speller.count("| word_unk+scratch |") == 2
    df = rep.heldout
    assert df is not None and list(df.columns[:3]) == ["arm", "scope", "versus"]
    pairs = df[df["pair"]]
    assert len(df) == 3 * (len(NEW_ARMS) + 2) and len(pairs) == 3 * 2
    assert set(pairs["versus"]) == {"bpe+word2vec", "word+word2vec"} and pairs["primary"].all()
    held = pairs[(pairs["scope"] == "held-out") & (pairs["arm"] == "word+word2vec")].iloc[0]
    assert held["p_holm"] < 1e-3 and held["outcome"] == "lower"


def test_oov_section_shows_words_spelled_in_byte_tokens(built: tuple[Path, Path]) -> None:
    oov = _section((built[1] / "report.md").read_text(), "Out-of-vocabulary")
    assert "A word outside the vocabulary is spelled in byte tokens: these rows are the " \
        "seed's OOV words, initialized randomly" in oov
    assert "| val spelled words | val spelled bytes | test spelled words | test spelled bytes |" \
        in oov
    assert "| word+word2vec | word | 16,384 | 2.00% | 40.00% | 5.00% | 2.10% | 5.10% | 3.00% | " \
        "5.00% | 3.10% | 5.20% |" in oov
    assert "| bpe+scratch | bpe | 8,192 | 0.00% | 0.00% | 0.00% | 0.00% | 0.00% | 0.00% | 0.00% | " \
        "0.00% | 0.00% | — | — |" in oov
    assert "| word_unk+scratch | word | 16,384 | 2.00% | 40.00% | 5.00% | 2.10% | 5.10% | 0.00% | " \
        "0.00% | 0.00% | 0.00% |" in oov


def _edit_records(study: Path, arm: str, edit) -> None:  # type: ignore[no-untyped-def]
    import json

    for path in sorted((study / arm).glob("seed*/summary.json")):
        rec = json.loads(path.read_text())
        edit(rec)
        path.write_text(json.dumps(rec))


def test_records_that_do_not_pair_say_why_in_the_report(tmp_path: Path) -> None:
    study = write_new_study(tmp_path)

    def rename(rec: dict) -> None:  # bpe+word2vec was scored on another test document
        rec["test"]["doc_ids"][-1] = "test-doc9"

    def no_charges(rec: dict) -> None:  # a charged arm whose records lack per-document charges
        for split in ("val", "test"):
            del rec[split]["doc_charge_nats"]

    def no_ids(rec: dict) -> None:
        for split in ("val", "test"):
            del rec[split]["doc_ids"]

    _edit_records(study, "bpe+word2vec", rename)
    _edit_records(study, "word_unk+scratch", no_charges)
    _edit_records(study, "word+word2vec", no_ids)
    md = B.build_report(load_study(study)).files["report.md"].decode()
    head = _section(md, "Headline: held-out bits per byte")
    assert (
        "Warning: inconsistent records. bpe+word2vec vs bpe+scratch: bpe+word2vec and "
        "bpe+scratch were scored on different test documents (1 ids only in bpe+word2vec, 1 "
        "only in bpe+scratch): the records do not describe the same held-out text. Comparisons "
        "between arms scored on different held-out documents are not made" in head
    )
    assert "- bpe+word2vec vs bpe+scratch: no comparison (bpe+word2vec and bpe+scratch were " \
        "scored on different test documents" in head
    assert (
        "Without usable per-document losses (word_unk+scratch: per-document losses without "
        "their lossless charges (`doc_charge_nats`) in a record that is not exact, so its "
        "per-document figure is unknown), the intervals and p-values of word_unk+scratch vs "
        "bpe+scratch are Student t over seeds alone" in head
    )
    assert "These records carry no per-document losses" not in head
    assert (
        "word+word2vec vs bpe+scratch paired by position (word+word2vec records no document "
        "ids; every document's bytes agree)." in head
    )
    assert "- word_unk+scratch vs bpe+scratch: " in head and "(t over 3 seeds, 2 df)" in head
    split = _section(md, "Per split: validation and test")
    test = split[split.index("### Test"):]
    assert "Warning: inconsistent records. bpe+word2vec vs bpe+scratch" in test
    assert "Warning" not in split[: split.index("### Test")]  # the val documents agree


def test_an_unreadable_study_json_is_a_warning_in_the_report(tmp_path: Path) -> None:
    study = write_new_study(tmp_path, primary=("word+word2vec",))
    (study / "study.json").write_text('{"name": "design", "primary": [')  # torn
    s = load_study(study)
    assert s.settings is None and s.warnings == ["study.json is unreadable: defaults used"]
    md = B.build_report(s).files["report.md"].decode()
    assert ("Warning: study.json is unreadable: defaults used (reference arm bpe+scratch, every "
            "arm a primary comparison, equivalence margin ±0.02 bpb).") in md
    assert md.index("Warning: study.json") < md.index("## Design")
    (study / "study.json").write_text("[1, 2]")  # valid JSON, not settings
    assert load_study(study).warnings == ["study.json is unreadable: defaults used"]
    (study / "study.json").unlink()
    assert load_study(study).warnings == []
