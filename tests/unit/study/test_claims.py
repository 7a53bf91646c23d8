"""study.claims: each verdict branch of the scorecard on records with chosen numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from embinit.study import claims as K
from embinit.study.claims import ClaimTest, scorecard
from embinit.study.load import load_study
from tests.unit.study.claims_fabricate import alternating, const, settings, write_arm


def _rows(study: Path) -> dict[int, K.ClaimRow]:
    return {r.number: r for r in scorecard(load_study(study))}


def test_claim1_contradicted_by_a_gain_beyond_the_margin(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", const(-0.05))
    rows = _rows(s)
    t = rows[1].tests[0]
    assert t.label == "word+word2vec − word+scratch"
    # The same offset on every document and seed: the interval collapses to -0.05.
    assert t.estimate == pytest.approx(-0.05, abs=1e-9)
    assert t.hi == pytest.approx(-0.05, abs=1e-9) and t.p_holm < 1e-100
    assert rows[1].verdict == K.CONTRADICTED
    assert "controls word+shuffled-word2vec, word+matched_random-word2vec were not run" in (
        rows[1].notes[0])


def test_claim1_supported_when_equivalent(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", alternating(0.0, 0.004))
    t = _rows(s)[1].tests[0]
    assert abs(t.estimate) < 0.004
    assert -0.02 < t.tost_lo < t.tost_hi < 0.02
    assert _rows(s)[1].verdict == K.SUPPORTED


def test_claim1_not_decided_when_the_interval_is_wide(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", alternating(-0.02, 0.3))
    t = _rows(s)[1].tests[0]
    assert t.lo < -0.02 < t.hi and t.tost_lo < -0.02
    assert _rows(s)[1].verdict == K.UNDECIDED


def test_claim1_combines_tokenizers_and_attributes_meaning_only_below_both_controls(
    tmp_path: Path,
) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", const(-0.05))
    write_arm(s, "word+shuffled-word2vec", const(0.0))
    write_arm(s, "word+matched_random-word2vec", const(-0.01))
    write_arm(s, "bpe+scratch", const(0.0))
    write_arm(s, "bpe+word2vec", alternating(0.0, 0.004))
    row = _rows(s)[1]
    fam = [t for t in row.tests if t.in_family]
    assert [t.verdict for t in fam] == [K.CONTRADICTED, K.SUPPORTED]
    assert row.verdict == K.CONTRADICTED  # any tokenizer's contradiction decides
    controls = [t for t in row.tests if not t.in_family and t.label.startswith("word+")]
    assert [round(t.estimate, 6) for t in controls] == [-0.05, -0.04]
    assert row.notes[0] == ("word+word2vec: below both controls, so its gain is attributed "
                            "to meaning.")
    # Holm over both shifted one-sided nulls of the two verdict-bearing differences (4 p's):
    # word rejects "Δ ≥ −m", bpe rejects "Δ ≤ −m"; adjusted p's are never below the raw ones.
    assert fam[0].p_side_holm["contradicts"] < 1e-6
    assert fam[1].p_side_holm["supports"] < 0.05
    for t in fam:
        assert set(t.p_side_holm) == {"contradicts", "supports"}
        assert all(t.p_side_holm[k] >= t.p_side[k] for k in t.p_side)
    raw = sorted(p for t in fam for p in t.p_side.values())
    assert min(t.p_holm for t in fam) == pytest.approx(min(1.0, 4 * raw[0]))


def test_a_gain_matched_by_a_control_is_not_meaning(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", const(-0.05))
    write_arm(s, "word+shuffled-word2vec", const(-0.05))
    write_arm(s, "word+matched_random-word2vec", const(0.0))
    assert "not below both controls" in _rows(s)[1].notes[0]


def test_claim2_parameter_ratio_at_gpt2_small_is_exact() -> None:
    r = K.param_ratio()
    # Tied: only the embedding differs, (100,000 - 50,257) x 768 = 38,202,624 more.
    assert r[True]["bpe"] == 124_439_808
    assert r[True]["word"] == 124_439_808 + 38_202_624
    assert r[True]["ratio"] == pytest.approx(162_642_432 / 124_439_808)
    assert r[False]["word"] - r[False]["bpe"] == 2 * 38_202_624
    assert r[True]["ratio"] >= K.SIZE_RATIO


def test_missing_arms_name_what_would_test_them(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "bpe+scratch", const(0.0))
    rows = scorecard(load_study(s))
    assert [r.verdict for r in rows] == [K.NOT_RUN, K.SUPPORTED, K.NOT_RUN, K.NOT_RUN,
                                         K.NOT_RUN, K.NOT_RUN]
    assert rows[3].notes == ["Not tested in this study: needs the arms "
                             "word+word2vec-frozen+untied, word+word2vec+untied."]
    assert not K.has_claim_arms(rows, load_study(s).runs)


def _by_class(vec_bpb: float, fb_bpb: float) -> dict:
    def cls(bpb: float, nbytes: int) -> dict:
        return {"tokens": nbytes // 4, "bytes": nbytes, "nats": bpb * math.log(2) * nbytes}
    return {s: {"vector_rows": cls(vec_bpb, 800), "fallback_rows": cls(fb_bpb, 200)}
            for s in ("val", "test")}


def _class_arm(s: Path, arm: str, vec: list[float], fb: list[float]) -> None:
    """An arm whose per-seed row-class bpb is vec[seed] / fb[seed] on both splits."""
    write_arm(s, arm, const(0.0))
    import json
    for seed in range(3):
        p = s / arm / f"seed{seed}" / "summary.json"
        rec = json.loads(p.read_text())
        for split, v in _by_class(vec[seed], fb[seed]).items():
            rec[split]["by_row_class"] = v
        p.write_text(json.dumps(rec))


def test_claim3_gain_on_vector_rows_vs_fallback_rows(tmp_path: Path) -> None:
    s = tmp_path / "c"
    _class_arm(s, "word+scratch", [2.0, 2.1, 2.2], [4.0, 4.0, 4.0])
    _class_arm(s, "word+word2vec", [1.9, 1.98, 2.1], [3.99, 4.0, 3.98])
    row = _rows(s)[3]
    vec, fb, d = row.tests
    assert [vec.estimate, fb.estimate] == pytest.approx([-0.1066667, -0.01], abs=1e-6)
    assert d.estimate == pytest.approx(-0.0966667, abs=1e-6)
    # D per seed: -0.09, -0.12, -0.08: mean -0.09667, s = 0.020817, t_{.975,2} = 4.3027
    half = 4.302652729749464 * 0.02081665999 / math.sqrt(3)
    assert (d.lo, d.hi) == pytest.approx((-0.0966667 - half, -0.0966667 + half), abs=1e-6)
    assert row.verdict == K.SUPPORTED  # D's CI is below 0 and the arm spells 3% of words
    assert "spells 3.0% of the validation words" in row.notes[0]


def test_claim3_verdict_branches() -> None:
    assert K.dilution_verdict(ClaimTest("D", -0.1, -0.2, -0.05, -0.18, -0.07), 0.02, 0.03) \
        == K.SUPPORTED
    assert K.dilution_verdict(ClaimTest("D", -0.1, -0.2, -0.05, -0.18, -0.07), 0.02, 0.0) \
        == K.UNDECIDED  # no word is spelled in bytes: nothing to dilute
    assert K.dilution_verdict(ClaimTest("D", 0.1, 0.05, 0.2, 0.07, 0.18), 0.02, 0.03) \
        == K.CONTRADICTED
    assert K.dilution_verdict(ClaimTest("D", 0.0, -0.03, 0.03, -0.01, 0.01), 0.02, 0.03) \
        == K.CONTRADICTED  # equivalent: no dilution
    assert K.dilution_verdict(ClaimTest("D", 0.0, -0.1, 0.1, -0.08, 0.08), 0.02, 0.03) \
        == K.UNDECIDED


def test_claim4_frozen_vs_trained(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+word2vec", const(0.0),
              extra=lambda seed: {"diagnostics": {"drift_covered": 0.4, "drift_fallback": 0.2,
                                                  "wordsim353_init": 0.6,
                                                  "wordsim353_final": 0.3}})
    write_arm(s, "word+scratch", const(0.05),
              extra=lambda seed: {"diagnostics": {"drift_fallback": 0.25}})
    write_arm(s, "word+word2vec+untied", const(0.0))
    write_arm(s, "word+word2vec-frozen+untied", const(0.1))
    row = _rows(s)[4]
    assert row.tests[0].label == "word+word2vec-frozen+untied − word+word2vec+untied"
    assert row.tests[0].estimate == pytest.approx(0.1, abs=1e-9)
    assert row.verdict == K.SUPPORTED
    assert row.notes == [
        "word+word2vec: mean cosine between each row at init and at the end: covered rows "
        "0.40, fallback rows 0.20 (1 = unchanged; word+scratch's rows: 0.25).",
        "word+word2vec, init → end: WordSim353 ρ 0.60 → 0.30.",
    ]
    s2 = tmp_path / "d"
    write_arm(s2, "word+word2vec+untied", const(0.0))
    write_arm(s2, "word+word2vec-frozen+untied", alternating(0.0, 0.004))
    assert _rows(s2)[4].verdict == K.CONTRADICTED


def test_claim4_falls_back_to_the_tied_pair_and_says_it_is_confounded(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+word2vec", const(0.0))
    write_arm(s, "word+word2vec-frozen", const(0.1))
    row = _rows(s)[4]
    assert row.tests[0].label == "word+word2vec-frozen − word+word2vec"
    assert row.notes[0].startswith("Tied embeddings: freezing the input rows froze the output")


def test_claim5_contextual_unsuitable(tmp_path: Path) -> None:
    s = tmp_path / "c"
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+contextual", const(0.03))  # worse than scratch
    write_arm(s, "word+shuffled-contextual", const(0.0))
    write_arm(s, "word+matched_random-contextual", const(0.05))
    row = _rows(s)[5]
    assert row.tests[0].label == "word+contextual − word+scratch"
    assert row.tests[0].estimate == pytest.approx(0.03, abs=1e-9)
    assert [round(t.estimate, 6) for t in row.tests[1:]] == [0.03, -0.02]  # vs the controls
    assert row.verdict == K.SUPPORTED
    assert row.notes == ["word+contextual: no significant gain over scratch, so nothing to "
                         "attribute to meaning."]


def test_claim6_trend_and_extrapolation(tmp_path: Path) -> None:
    s = tmp_path / "c"
    # gain(f) = 0.03 ln f: -0.069 at 10%, -0.036 at 30%, 0 at full data, so the slope is
    # +0.03 bpb per e-fold of training bytes; ±0.004 per document keeps the se positive.
    for f in (0.1, 0.3, 1.0):
        tag = "" if f == 1.0 else f"+data{f:g}"
        write_arm(s, f"word+scratch{tag}", const(0.0), train_bytes=1e6 * f)
        write_arm(s, f"word+word2vec{tag}", alternating(0.03 * math.log(f), 0.004),
                  train_bytes=1e6 * f)
    row = _rows(s)[6]
    gains = [t for t in row.tests if t.label.startswith("gain at")]
    assert [round(t.estimate, 2) for t in gains] == [-0.07, -0.04, 0.0]
    slope = next(t for t in row.tests if t.label.startswith("slope"))
    assert slope.estimate == pytest.approx(0.03, abs=0.003)
    assert any(t.label.startswith("extrapolation: gain at 10×") for t in row.tests)
    assert "Extrapolation, not measurement" in row.notes[0]
    # A small model on megabytes cannot decide a claim about ~100M parameters.
    assert row.verdict == K.UNDECIDED


def test_claim6_not_decided_while_a_gain_remains(tmp_path: Path) -> None:
    s = tmp_path / "c"
    for f in (0.1, 1.0):
        tag = "" if f == 1.0 else f"+data{f:g}"
        write_arm(s, f"word+scratch{tag}", const(0.0), train_bytes=1e6 * f)
        write_arm(s, f"word+word2vec{tag}", alternating(-0.05, 0.004), train_bytes=1e6 * f)
    assert _rows(s)[6].verdict == K.UNDECIDED


def test_report_opens_with_the_scorecard_and_states_the_rules(tmp_path: Path) -> None:
    from embinit.study.report.build import build_report
    from embinit.study.report.doc import Heading

    s = tmp_path / "c"
    write_arm(s, "bpe+scratch", const(0.0))
    write_arm(s, "word+scratch", const(0.0))
    write_arm(s, "word+word2vec", const(-0.05))
    write_arm(s, "bpe+word2vec", const(0.0))
    settings(s)
    rep = build_report(load_study(s))
    first = next(b for b in rep.blocks if isinstance(b, Heading) and b.level == 2)
    assert first.text == "Claims scorecard"
    md = rep.files["report.md"].decode()
    assert "| 1 | Initializing token embeddings from Word2Vec gives no substantial gain." in md
    assert md.count("| contradicted |") == 1
    assert "- (1) " + K.RULES[1].replace("<tok", "&lt;tok") in md
    assert md.index("## Claims scorecard") < md.index("## Per-metric verdicts")
    # The 2x2 is complete: word2vec helps only on words, so the interaction is -0.05.
    assert "| tokenizer (word − BPE) | -0.025 [-0.025, -0.025] |" in md
    assert "| interaction (init effect on word − on BPE) | -0.050 [-0.050, -0.050] |" in md
    csv = rep.files["claims.csv"].decode()
    assert csv.splitlines()[0] == ",".join(K.SCORECARD_COLUMNS)
    assert csv.splitlines()[1].startswith("1,Initializing token embeddings from Word2Vec gives "
                                          "no substantial gain.,contradicted,word+word2vec")


def test_report_without_claim_arms_opens_with_three_lines(tmp_path: Path) -> None:
    from embinit.study.report.build import build_report

    s = tmp_path / "c"
    write_arm(s, "bpe+scratch", const(0.0))
    write_arm(s, "bpe+glove", const(-0.05))
    rep = build_report(load_study(s))
    md = rep.files["report.md"].decode()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[0] == "## Summary"
    summary = md[md.index("## Summary"):md.index("## Design")]
    assert summary.count("\n- ") == 3
    assert "Shown: bpe+glove ‡ lower (better)" in summary  # next to every GloVe number
    assert "claims.csv" not in rep.files
    # Records without diagnostics, step-0 or the 2x2: those sections are left out.
    assert "## Embedding diagnostics" not in md and "## Factorial" not in md
    assert "## Data size" not in md


def test_a_study_run_on_part_of_the_split_is_read_at_its_own_regime(tmp_path: Path) -> None:
    # study claims: every arm at data.train_fraction=0.5 (labels +data0.5), plus a low-data
    # point; the claims read the 0.5 arms as the study's arms, the data-size claim both.
    s = tmp_path / "c"
    write_arm(s, "word+scratch+data0.5", const(0.0), train_bytes=2e6)
    write_arm(s, "word+word2vec+data0.5", const(-0.05), train_bytes=2e6)
    write_arm(s, "word+scratch+data0.15", const(0.0), train_bytes=6e5)
    write_arm(s, "word+word2vec+data0.15", const(-0.08), train_bytes=6e5)
    rows = _rows(s)
    t = rows[1].tests[0]
    assert t.label == "word+word2vec − word+scratch"
    assert t.estimate == pytest.approx(-0.05, abs=1e-9)
    assert any("50% of the train split" in n for n in rows[1].notes)
    six = rows[6]
    assert [round(x.estimate, 6) for x in six.tests[:2]] == [-0.08, -0.05]
