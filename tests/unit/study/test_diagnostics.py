"""study.diagnostics: embedding diagnostics, neighbours, the step-0 check, the GloVe note."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from embinit.study.diagnostics import (
    GLOVE_NOTE,
    diagnostics_table,
    neighbours,
    step0_table,
)
from embinit.study.load import load_study
from tests.unit.study.claims_fabricate import const, write_arm

LN_V = math.log(16384)


def _diag(seed: int) -> dict[str, Any]:
    return {
        "diagnostics": {
            "wordsim353_init": 0.60 + 0.01 * seed, "wordsim353_final": 0.30,
            "simlex999_init": 0.25, "simlex999_final": 0.10 + 0.03 * seed,
            "analogy_init": 0.20, "analogy_final": 0.05,
            "wordsim353_n": 300, "simlex999_n": 900, "analogy_n": 5000,
            "drift_covered": 0.5 + 0.1 * seed, "drift_fallback": 0.2,
            "neighbours": {
                "init": {"king": ["queen", "prince"], "paris": ["london"], "three": ["four"],
                         "water": ["ice"]},
                "final": {"king": ["lord"], "paris": ["france"], "three": ["two"],
                          "water": ["sea"]},
            },
        },
        "step0": {"loss": LN_V + (1.5 if seed == 2 else 0.01), "ln_vocab": LN_V,
                  "excess": 1.5 if seed == 2 else 0.01, "tolerance": 0.5,
                  "flagged": seed == 2},
    }


def _study(tmp_path: Path, corpus: str = "wiki_sample") -> Path:
    s = tmp_path / "g"
    write_arm(s, "bpe+scratch", const(0.0), corpus=corpus)
    write_arm(s, "word+scratch", const(0.0), corpus=corpus)
    write_arm(s, "word+glove", const(-0.03), extra=_diag, corpus=corpus)
    return s


def test_diagnostics_table_means_over_seeds(tmp_path: Path) -> None:
    st = load_study(_study(tmp_path))
    d = diagnostics_table(st.runs, ["bpe+scratch", "word+scratch", "word+glove"])
    assert list(d["arm"]) == ["word+glove"]  # arms without diagnostics are left out
    r = d.iloc[0]
    assert r["wordsim353_init"] == pytest.approx(0.61)
    assert r["simlex999_final"] == pytest.approx(0.13)
    assert r["drift_covered"] == pytest.approx(0.6)
    assert r["analogy_n"] == 5000


def test_step0_table_flags_any_seed(tmp_path: Path) -> None:
    st = load_study(_study(tmp_path))
    t = step0_table(st.runs, ["word+glove", "word+scratch"])
    assert list(t["arm"]) == ["word+glove"]
    r = t.iloc[0]
    assert r["loss"] == pytest.approx(LN_V + (0.01 + 0.01 + 1.5) / 3)
    assert bool(r["flagged"]) and r["n_flagged"] == 1


def test_neighbours_of_the_lowest_seed_first_three_probes(tmp_path: Path) -> None:
    st = load_study(_study(tmp_path))
    nb = neighbours(st.runs, st.summaries, ["word+scratch", "word+glove"])
    assert nb == [{"arm": "word+glove", "seed": 0, "probes": [
        ("king", ["queen", "prince"], ["lord"]), ("paris", ["london"], ["france"]),
        ("three", ["four"], ["two"])]}]


def test_report_diagnostics_section_and_glove_note(tmp_path: Path) -> None:
    from embinit.study.report.build import build_report

    md = build_report(load_study(_study(tmp_path))).files["report.md"].decode()
    sec = md[md.index("## Embedding diagnostics"):]
    assert ("| word+glove ‡ | 3 | 0.610 → 0.300 | 300 | 0.250 → 0.130 | 900 | 20.0% → 5.0% "
            "| 5,000 | 0.600 | 0.200 |") in sec
    assert "| king | queen, prince | lord |" in sec
    assert "Flagged: word+glove: these arms start far above ln V" in sec
    assert "| word+glove ‡ | 3 | 10.211 | 9.704 | +0.507 | 0.500 | yes (1 of 3) |" in sec
    # Next to every GloVe number on the embedded Wikipedia: the headline table too.
    head = md[md.index("## Headline"):md.index("## Per split")]
    assert "| word+glove ‡ |" in head and f"‡ {GLOVE_NOTE}" in head


def test_no_glove_note_on_an_unseen_corpus(tmp_path: Path) -> None:
    from embinit.study.report.build import build_report

    md = build_report(load_study(_study(tmp_path, corpus="text_files"))).files[
        "report.md"].decode()
    assert "‡" not in md and "| word+glove |" in md


def test_mark_glove_never_marks_inside_a_longer_label() -> None:
    from embinit.study.report.claims_sections import mark_glove
    from embinit.study.report.doc import Bullets, Para, Table

    blocks = mark_glove([Table(["arm"], [["word+glove-raw"], ["word+glove"], ["bpe+scratch"]]),
                         Bullets(["bpe+scratch vs word+glove: -0.1"]), Para("word+glove")],
                        ["word+glove", "word+glove-raw", "bpe+scratch"])
    assert blocks[0].rows == [["word+glove-raw ‡"], ["word+glove ‡"], ["bpe+scratch"]]
    assert blocks[1] == Para(f"‡ {GLOVE_NOTE}")
    assert blocks[2].items == ["bpe+scratch vs word+glove ‡: -0.1"]
    assert blocks[4] == Para("word+glove")  # prose without numbers is left alone
