"""Fabricated claim-study records: every document's bpb of every arm is chosen.

``write_arm(study, arm, offset)`` writes seeds 0-2 of one arm whose document j of a split
has bpb ``ref_doc_bpb(split, j, seed) + offset(split, j, seed)`` (exact, byte-fallback
records with ids, so arms pair by document), plus any extra summary sections.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embinit.record import StudySettings, write_study_settings
from tests.unit.study.fabricate import DOC_BYTES, new_summary, ref_doc_bpb

Offset = Callable[[str, int, int], float]
LN2 = math.log(2)


def const(x: float) -> Offset:
    return lambda split, j, seed: x


def alternating(x: float, amp: float) -> Offset:
    """x + amp on even documents, x - amp on odd ones."""
    return lambda split, j, seed: x + (amp if j % 2 == 0 else -amp)


def write_arm(
    study: Path, arm: str, offset: Offset, seeds: tuple[int, ...] = (0, 1, 2),
    extra: Callable[[int], dict[str, Any]] | None = None, corpus: str = "wiki_sample",
    train_bytes: float = 1.0e6,
) -> None:
    vocab, init = arm.split("+")[0], arm.split("+")[1]
    for seed in seeds:
        rec = new_summary(f"{vocab}+scratch", seed, study.name)
        rec.update(arm=arm, init=init)
        for split, sizes in DOC_BYTES.items():
            bpbs = [ref_doc_bpb(split, j, seed) + offset(split, j, seed) for j in range(len(sizes))]
            nats = [b * LN2 * n for b, n in zip(bpbs, sizes, strict=True)]
            total = sum(nats) / (LN2 * sum(sizes))
            rec[split].update(doc_nats=nats, doc_charge_nats=[0.0] * len(nats), nats=sum(nats),
                              bpb=total, bpb_lossless=total, bpb_oov_adjusted=total,
                              bpb_sliding=total)
        rec["train"]["bytes_seen"] = train_bytes
        rec.setdefault("data", {})["train_bytes"] = train_bytes  # one epoch: data size = seen
        if extra is not None:
            rec.update(extra(seed))
        run = study / arm / f"seed{seed}"
        run.mkdir(parents=True)
        cfg = {"seed": seed, "data": {"name": corpus}, "vocab": {"name": vocab},
               "init": {"name": init}, "model": {"name": "tiny"}, "train": {}}
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "summary.json").write_text(json.dumps(rec))


def settings(study: Path, margin: float = 0.02) -> None:
    write_study_settings(study, StudySettings(name=study.name, reference_arm="bpe+scratch",
                                              equivalence_margin=margin))


# Row classes of the predicted token's row, as the producer records them per split and per
# held-out document (`by_row_class`, `doc_by_row_class`).
ROW_CLASSES = ("covered_rows", "uncovered_rows", "fallback_rows", "special_rows")
ClassBpb = Callable[[str, str, int, int], float]  # (class, split, document, seed) -> bpb
ClassBytes = Callable[[str, str, int], int]  # (class, split, document) -> bytes


def write_rowclass_arm(
    study: Path, arm: str, bpb: ClassBpb, nbytes: ClassBytes, seeds: tuple[int, ...] = (0, 1, 2),
    per_document: bool = True, tokens_shift: int = 0, coverage: float | None = 1.0,
) -> None:
    """``write_arm`` (no offset) plus row classes: document j of a split holds
    ``nbytes(cls, split, j)`` bytes of targets of each class, predicted at ``bpb(cls, split,
    j, seed)``; tokens = bytes // 4 (+ ``tokens_shift`` on covered rows: another partition).
    The split totals (`by_row_class`, with `vector_rows` = covered + uncovered) are the sums
    of the documents; ``per_document`` False leaves `doc_by_row_class` out."""
    write_arm(study, arm, const(0.0), seeds=seeds)
    for seed in seeds:
        path = study / arm / f"seed{seed}" / "summary.json"
        rec = json.loads(path.read_text())
        for split, sizes in DOC_BYTES.items():
            docs: dict[str, dict[str, list[float]]] = {}
            for cls in ROW_CLASSES:
                b = [nbytes(cls, split, j) for j in range(len(sizes))]
                tok = [x // 4 + (tokens_shift if cls == "covered_rows" else 0) for x in b]
                nats = [bpb(cls, split, j, seed) * LN2 * x for j, x in enumerate(b)]
                docs[cls] = {"tokens": tok, "bytes": b, "nats": nats,
                             "charge_nats": [0.0] * len(b)}
            totals = {cls: {k: sum(v) for k, v in d.items()} for cls, d in docs.items()}
            totals["vector_rows"] = {k: totals["covered_rows"][k] + totals["uncovered_rows"][k]
                                     for k in totals["covered_rows"]}
            rec[split]["by_row_class"] = totals
            if per_document:
                rec[split]["doc_by_row_class"] = docs
        rec["oov"]["init_coverage_types"] = coverage
        path.write_text(json.dumps(rec))
