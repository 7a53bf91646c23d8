"""Fabricated run records with known numbers, shared by the consumer-wing tests.

3 arms x 3 seeds: every final number below is chosen, so means, intervals and paired
differences can be checked against hand-derived values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

T975_DF2 = 4.302652729749464  # t_{0.975, 2} = sqrt(2 * 0.95^2 / (1 - 0.95^2)), exact
T975_DF1 = 12.706204736174696  # t_{0.975, 1} = tan(0.475 pi)

# Known final numbers, per arm and seed. word+scratch seed 2 diverges at step 120.
VAL_BPB = {
    "bpe+scratch": [1.20, 1.21, 1.22],
    "word+word2vec": [1.30, 1.32, 1.31],
    "word+scratch": [1.15, 1.17, None],
}
VAL_ADJ = {
    "bpe+scratch": [1.20, 1.21, 1.22],
    "word+word2vec": [1.40, 1.42, 1.41],
    "word+scratch": [1.26, 1.30, None],
}
VOCAB_SIZE = {"bpe": 8192, "word": 16384}
TOKENS_PER_BYTE = {"bpe": 0.25, "word": 0.2}
TINY = {
    "n_layer": 4,
    "n_head": 4,
    "d_model": 128,
    "block_size": 128,
    "bias": True,
    "tie_embeddings": True,
    "dropout": 0.0,
    "name": "tiny",
}
WORD_OOV_CURVE = [
    {"vocab_size": 1000, "token_rate": 0.20, "type_rate": 0.90},
    {"vocab_size": 4000, "token_rate": 0.08, "type_rate": 0.70},
    {"vocab_size": 16384, "token_rate": 0.02, "type_rate": 0.40},
]
STEPS = (0, 10, 20, 30, 40, 50)


def tiny_params(vocab_size: int) -> dict[str, int]:
    d, L, T = 128, 4, 128
    body = L * (12 * d * d + 13 * d) + 2 * d
    emb, pos = vocab_size * d, T * d
    return {
        "total": emb + pos + body,
        "embedding": emb,
        "output_head": 0,
        "position": pos,
        "non_embedding": pos + body,
        "body": body,
    }


def val_curve(arm: str, seed: int, step: int) -> float:
    """val bpb at a step: arm offset, decay, and a seed-dependent wiggle."""
    offset = {"bpe+scratch": 0.0, "word+word2vec": 0.1, "word+scratch": 0.05}[arm]
    return 3.0 + offset - 0.03 * step + 0.01 * seed


def summary_record(
    arm: str, seed: int, status: str = "completed", study: str = "arms"
) -> dict[str, Any]:
    vocab, init = arm.split("+")
    V = VOCAB_SIZE[vocab]
    i = seed
    bpb = VAL_BPB[arm][i] if status == "completed" else None
    adj = VAL_ADJ[arm][i] if status == "completed" else None
    n_bytes = 100_000
    n_tokens = int(n_bytes * TOKENS_PER_BYTE[vocab])

    def split(bpb: float | None, adj: float | None, shift: float) -> dict[str, Any] | None:
        if bpb is None:
            return None
        loss = (bpb + shift) * math.log(2) / TOKENS_PER_BYTE[vocab]
        return {
            "loss": loss,
            "bpb": bpb + shift,
            "bpb_oov_adjusted": adj + shift,
            # word-level arms also pay for the whitespace their tokens drop
            "bpb_lossless": adj + shift + (0.1 if vocab == "word" else 0.0),
            "tokens": n_tokens,
            "bytes": n_bytes,
            "unk_spelling_nats": (adj - bpb) * math.log(2) * n_bytes,
        }

    is_word = vocab == "word"
    rec: dict[str, Any] = {
        "arm": arm,
        "vocab": vocab,
        "init": init,
        "seed": seed,
        "study": study,
        "model": "tiny",
        "status": status,
        "diverged_at_step": 120 if status == "diverged" else None,
        "vocab_size": V,
        "params": tiny_params(V),
        "model_config": dict(TINY),
        "oov": {
            "val_token_rate": 0.02 if is_word else 0.0,
            "val_type_rate": 0.4 if is_word else 0.0,
            "val_unk_byte_share": 0.05 if is_word else 0.0,
            "test_token_rate": 0.021 if is_word else 0.0,
            "test_type_rate": 0.41 if is_word else 0.0,
            "test_unk_byte_share": 0.051 if is_word else 0.0,
            "init_coverage_types": 0.9 if init == "word2vec" else None,
            "init_coverage_tokens": 0.98 if init == "word2vec" else None,
        },
        "word_oov_curve": WORD_OOV_CURVE,
        "data": {
            "train_bytes": 800_000,
            "train_tokens": int(800_000 * TOKENS_PER_BYTE[vocab]),
            "val_bytes": n_bytes,
            "val_tokens": n_tokens,
            "test_bytes": n_bytes,
            "test_tokens": n_tokens,
            "tokens_per_byte": TOKENS_PER_BYTE[vocab],
        },
        "train": {
            "steps": 50,
            "tokens_seen": 50 * 2048,
            "bytes_seen": 50 * 8192,
            "wall_s": 10.0 + seed,
            "train_wall_s": 8.0,
            "tokens_per_s": 50 * 2048 / 8.0,
        },
        "versions": {"python": "3.11.0", "torch": "2.13.0", "embinit": "0.1.0"},
    }
    if status == "completed":
        rec["val"] = split(bpb, adj, 0.0)
        rec["test"] = split(bpb, adj, 0.05)
    else:
        rec["train"] = {"steps": 120, "tokens_seen": 0, "bytes_seen": 0}
    return rec


def metrics_rows(arm: str, seed: int, steps: tuple[int, ...] = STEPS) -> list[dict[str, Any]]:
    rows = []
    bytes_per_step = 8000 + 10 * seed
    for s in steps:
        ev = s % 20 == 0 or s == steps[-1]
        rows.append(
            {
                "step": s,
                "tokens_seen": s * 2048,
                "bytes_seen": s * bytes_per_step,
                "train_loss": None if s == 0 else 5.0 - 0.02 * s + 0.1 * seed,
                "val_loss": val_curve(arm, seed, s) * 2 if ev else None,
                "val_bpb": val_curve(arm, seed, s) if ev else None,
                "val_bpb_lossless": val_curve(arm, seed, s) + 0.5 if ev else None,
                "lr": 1e-3,
                "elapsed_s": 0.1 * s,
            }
        )
    return rows


HYDRA_CONFIG = """\
seed: {seed}
paths:
  root: /tmp/x
data:
  name: wiki_sample
  split_seed: 0
vocab:
  name: {vocab}
  size: {size}
init:
  name: {init}
  seed: {seed}
model:
  name: tiny
  n_layer: 4
  d_model: 128
train:
  max_bytes: 2000000
study:
  name: arms
  reference_arm: bpe+scratch
  description: fabricated study for tests
"""


def write_run(study_dir: Path, arm: str, seed: int, status: str | None = "completed") -> Path:
    """One run directory; status None leaves it without summary.json (an unfinished run)."""
    run = study_dir / arm / f"seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    vocab, init = arm.split("+")
    (run / ".hydra" / "config.yaml").write_text(
        HYDRA_CONFIG.format(seed=seed, vocab=vocab, init=init, size=VOCAB_SIZE[vocab])
    )
    rows = metrics_rows(arm, seed, STEPS if status == "completed" else STEPS[:3])
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if status is not None:
        (run / "summary.json").write_text(json.dumps(summary_record(arm, seed, status), indent=1))
    return run


def write_study(root: Path, name: str = "arms") -> Path:
    """3 arms x 3 seeds with known numbers; word+scratch seed 2 diverged; word+word2vec seed 3
    has no summary.json."""
    study = root / name
    for arm in VAL_BPB:
        for seed in range(3):
            write_run(
                study, arm, seed, "diverged" if (arm, seed) == ("word+scratch", 2) else "completed"
            )
    write_run(study, "word+word2vec", 3, None)
    return study



def ci(values: list[float], t: float) -> tuple[float, float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    half = t * sd / math.sqrt(len(values))
    return m, m - half, m + half


# ------------------------------------------------------------------------------ new-style records
#
# Records as the trainer writes them now: per-document held-out losses, exactness, the
# design fields (budget, context, compute, body hash) and study.json. Every document's
# bpb is chosen, so each comparison has a known answer:
#   bpe+word2vec      = reference ± 0.004 per document (alternating): not significant, and
#                       equivalent within the 0.02 margin
#   word+word2vec     = reference - 0.05 on every document (exact, byte fallback): lower,
#                       the interval collapses to -0.05
#   word_unk+scratch  raw bpb 0.9 below the reference (it skips <unk> spellings and
#                       whitespace), lossless = reference + 0.004 ± 0.03 under the unigram
#                       speller, 0.026 below the reference under the n-gram speller:
#                       the verdict depends on the speller; its config lowercases.

NEW_ARMS = ("bpe+scratch", "bpe+word2vec", "word+word2vec", "word_unk+scratch")
DOC_BYTES = {"val": [1000, 1500, 800, 1200], "test": [900, 1100, 1300, 700, 1000]}
NGRAM_SHIFT = -0.03  # n-gram speller's lossless bpb minus the unigram's, word_unk arm
SLIDING_GAIN = 0.02  # bpb_sliding = bpb_lossless - this
SPELLED = {"val_spelled_word_rate": 0.03, "val_spelled_byte_share": 0.05,
           "test_spelled_word_rate": 0.031, "test_spelled_byte_share": 0.052}


def ref_doc_bpb(split: str, j: int, seed: int) -> float:
    return 1.5 + 0.1 * j + (0.05 if split == "test" else 0.0) + 0.01 * seed


def doc_bpb(arm: str, split: str, j: int, seed: int) -> tuple[float, float]:
    """(model bpb, charged bpb) of document j: the raw figure and the lossless charges."""
    base = ref_doc_bpb(split, j, seed)
    alt = 1 if j % 2 == 0 else -1
    if arm == "bpe+word2vec":
        return base + 0.004 * alt, 0.0
    if arm == "word+word2vec":
        return base - 0.05, 0.0
    if arm == "word_unk+scratch":
        return base - 0.9, 0.9 + 0.004 + 0.03 * alt
    return base, 0.0


def new_summary(arm: str, seed: int, study: str = "design") -> dict[str, Any]:
    vocab, init = arm.split("+")
    unk = vocab == "word_unk"
    vocab = "word" if unk else vocab
    V = VOCAB_SIZE[vocab]
    ln2 = math.log(2)
    rec = summary_record("word+scratch" if vocab == "word" else "bpe+scratch", 0, study=study)
    rec.update(arm=arm, vocab=vocab, init=init, seed=seed, vocab_size=V, exact=not unk)
    if vocab == "word":
        rec["vocab_oov"] = "unk" if unk else "bytes"
    for split, sizes in DOC_BYTES.items():
        bpbs = [doc_bpb(arm, split, j, seed) for j in range(len(sizes))]
        nats = [m * ln2 * b for (m, _), b in zip(bpbs, sizes, strict=True)]
        charge = [c * ln2 * b for (_, c), b in zip(bpbs, sizes, strict=True)]
        n_bytes, total, charged = sum(sizes), sum(nats), sum(charge)
        bpb, lossless = total / (ln2 * n_bytes), (total + charged) / (ln2 * n_bytes)
        res: dict[str, Any] = {
            "loss": bpb * ln2 / TOKENS_PER_BYTE[vocab],
            "bpb": bpb,
            "bpb_oov_adjusted": (total + 0.7 * charged) / (ln2 * n_bytes),
            "bpb_lossless": lossless,
            "tokens": int(n_bytes * TOKENS_PER_BYTE[vocab]),
            "bytes": n_bytes,
            "nats": total,
            "unk_spelling_nats": 0.7 * charged,
            "layout_nats": 0.3 * charged,
            "doc_ids": [f"{split}-doc{j}" for j in range(len(sizes))],
            "doc_nats": nats,
            "doc_charge_nats": charge,
            "doc_bytes": list(sizes),
            "bpb_sliding": lossless - SLIDING_GAIN,  # like bpb_lossless, charges included
            "sliding_stride": 64,
        }
        if unk:
            ngram = 0.7 * charged + NGRAM_SHIFT * ln2 * n_bytes
            res["spelling_nats"] = {"unigram": 0.7 * charged, "ngram": ngram}
            res["bpb_lossless_by_speller"] = {"unigram": lossless, "ngram": lossless + NGRAM_SHIFT}
        rec[split] = res
    trained = init == "word2vec"
    rec["train"].update(budget="bytes", epochs=0.5, flops=1.0e12 * (1.5 if vocab == "word" else 1))
    rec["init_compute"] = {
        "train_tokens": 500_000 if trained else 0,
        "epochs": 5.0 if trained else 0.0,
        "wall_s": 3.0 if trained else 0.0,
        "flops": 2.0e10 if trained else 0.0,
        "source": "trained" if trained else "none",
    }
    rec["context"] = {"mode": "bytes", "block_tokens": 128 if vocab == "bpe" else 100,
                      "bytes_per_window": 512.0, "positions": 128}
    rec["params"]["body_init_sha256"] = f"body-of-seed-{seed}"
    # words spelled out in byte tokens: word level with byte fallback only, 0.0 elsewhere
    spelled = SPELLED if vocab == "word" and not unk else dict.fromkeys(SPELLED, 0.0)
    rec["oov"].update(spelled)
    return rec


def new_config(arm: str, seed: int) -> dict[str, Any]:
    vocab, init = arm.split("+")
    unk = vocab == "word_unk"
    vocab = "word" if unk else vocab
    v: dict[str, Any] = {"name": vocab, "size": VOCAB_SIZE[vocab]}
    if vocab == "word":
        v.update(oov="unk" if unk else "bytes", lowercase=unk)
    return {"seed": seed, "data": {"name": "wiki_sample", "split_seed": 0}, "vocab": v,
            "init": {"name": init, "seed": seed}, "model": {"name": "tiny"},
            "train": {"budget": "bytes", "max_bytes": 2_000_000, "context": "bytes"}}


def write_new_study(
    root: Path, name: str = "design", seeds: tuple[int, ...] = (0, 1, 2),
    primary: tuple[str, ...] = (), settings: bool = True,
) -> Path:
    """NEW_ARMS x seeds of new-style records, with study.json (unless ``settings`` is False)."""
    from embinit.record import StudySettings, write_study_settings

    study = root / name
    for arm in NEW_ARMS:
        for seed in seeds:
            run = study / arm / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "config.json").write_text(json.dumps(new_config(arm, seed), indent=1))
            rows = metrics_rows("bpe+scratch", seed)
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (run / "summary.json").write_text(json.dumps(new_summary(arm, seed, name), indent=1))
    if settings:
        write_study_settings(study, StudySettings(
            name=name, reference_arm="bpe+scratch", description="fabricated new-style study",
            primary=list(primary), equivalence_margin=0.02))
    return study
