"""The run record: the one contract between the side that trains and the side that analyses.

This module alone knows the directory layout and the file names, and it types what a run
leaves behind. The producer (`embinit.run`, torch) writes records through `RunRecord`; the
consumer (`embinit.study`, pandas) reads them through `find_runs`, `read_summary`,
`read_metrics`, `read_config` and `read_study_settings`. Neither side imports the other, and
this module imports neither torch nor Hydra.

    <experiments>/<study>/study.json               report settings of the study (StudySettings)
    <experiments>/<study>/<arm>/seed<k>/config.json     resolved config (identity; checked on resume)
    <experiments>/<study>/<arm>/seed<k>/metrics.jsonl   one row per log/eval step
    <experiments>/<study>/<arm>/seed<k>/checkpoint.pt   latest complete checkpoint (atomic)
    <experiments>/<study>/<arm>/seed<k>/summary.json    written once, last: status completed|diverged
    <experiments>/<study>/<arm>/seed<k>/tokenizer.json, init_embedding.npy, model.pt
                                                   the run on its own: tokenizer, initial matrix,
                                                   trained weights (embinit.load_run)

A summary is the last file written, so a directory without one is unfinished and never
mistaken for a result. Summary keys only ever get added: records written by older versions
load, with the newer fields absent (None).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from embinit.errors import ConfigError
from embinit.storage import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
STUDY_FILE = "study.json"
# What makes a run directory self-contained (usable after `make clean` deletes cache/):
TOKENIZER_FILE = "tokenizer.json"  # the arm's HF tokenizer, copied from the cache
INIT_EMBEDDING_FILE = "init_embedding.npy"  # (V x d_model) float32: the matrix the arm starts from
FINAL_WEIGHTS_FILE = "model.pt"  # the trained model's state_dict (load with weights_only=True)
HYDRA_CONFIG = Path(".hydra") / "config.yaml"  # Hydra's own copy; read only by old records

COMPLETED = "completed"
DIVERGED = "diverged"
MISSING = "missing"  # a run directory without summary.json: unfinished or killed
UNREADABLE = "unreadable"  # a summary.json that is not valid JSON

_SEED_DIR = re.compile(r"seed(\d+)")

# Keys that may change between invocations of the same run without changing its result.
# `study` holds report settings (name, reference arm, description, primary comparisons):
# editing them must not block resuming a run.
VOLATILE_KEYS = ("paths", "logger", "study")
VOLATILE_TRAIN_KEYS = ("num_threads", "log_interval", "ckpt_interval")


# ------------------------------------------------------------------------------ layout


def arm_label(vocab: str, init: str, oov: str | None = None) -> str:
    """The arm's name in directories and reports: `<vocab>+<init>`.

    The closed-vocabulary word arm (`vocab.oov=unk`) is `word_unk+<init>`, so it never shares
    a directory with the exact word arm (`vocab.oov=bytes`, plain `word`).
    """
    if vocab == "word" and oov == "unk":
        vocab = "word_unk"
    return f"{vocab}+{init}"


# Defaults a label leaves out, so the arms of the seed's study keep their short names.
DEFAULT_VOCAB_SIZE = {"bpe": 8192, "word": 16384}


def _size_tag(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def arm_label_of(config: dict[str, Any]) -> str:
    """The arm's label from its resolved config: distinct configs never share a directory.

    `<vocab>+<init>` (see `arm_label`) for the seed's arms, with a suffix for each setting
    that departs from the default: a vocabulary size (`bpe50k`), the Treebank pre-tokenizer
    (`word-treebank`), the source of a control (`shuffled-glove`), the vector dimension
    (`word2vec-d50`), a projection, case or fallback-row setting (`glove-pad`, `glove-cased`,
    `word2vec-fb0.05`), a scale policy or OOV-row rule (`glove-raw`, `word2vec-oovmean`), a
    frozen embedding (`word2vec-frozen`, `word2vec-freeze100`), and, as extra `+` parts,
    an untied output layer (`+untied`) and a fraction of the train split (`+data0.3`).
    """
    vocab, init = config.get("vocab", {}), config.get("init", {})
    model, data = config.get("model", {}), config.get("data", {})
    vname = str(vocab.get("name", ""))
    v = vname
    size = vocab.get("size")
    if size is not None and size != DEFAULT_VOCAB_SIZE.get(vname, size):
        v += _size_tag(int(size))
    if vname == "word" and vocab.get("pretokenizer", "whitespace") not in (None, "whitespace"):
        v += f"-{vocab['pretokenizer']}"
    iname = str(init.get("name", ""))
    i = iname
    if iname in ("shuffled", "matched_random"):
        i += f"-{init.get('source') or 'word2vec'}"
    if iname == "word2vec" and init.get("dim") and not init.get("vectors_path"):
        d_model = model.get("d_model")
        if init["dim"] != d_model:
            i += f"-d{int(init['dim'])}"
    if iname != "scratch":
        # Vector settings that change the matrix: projection, case fallback, fallback rows.
        if init.get("projection") not in (None, "orthogonal"):
            i += f"-{init['projection']}"
        if init.get("lowercase_fallback") is False:
            i += "-cased"
        if init.get("fallback_std") is not None:
            i += f"-fb{float(init['fallback_std']):g}"
        scale = init.get("scale")
        if scale not in (None, "std"):
            i += f"-{str(scale).replace('_', '')}"
        oov_rows = init.get("oov_rows")
        if oov_rows not in (None, "random"):
            i += f"-oov{str(oov_rows).replace('_', '')}"
    if init.get("freeze"):
        i += "-frozen"
    elif init.get("freeze_steps"):
        i += f"-freeze{int(init['freeze_steps'])}"
    label = arm_label(v if vname != "word" or vocab.get("oov") != "unk" else vname, i,
                      vocab.get("oov"))
    if vname == "word" and vocab.get("oov") == "unk" and v != vname:
        label = label.replace("word_unk", "word_unk" + v[len(vname):], 1)
    if model.get("tie_embeddings") is False:
        label += "+untied"
    frac = data.get("train_fraction")
    if frac is not None and float(frac) < 1.0:
        label += f"+data{float(frac):g}"
    return label


def run_dir(experiments: str | os.PathLike[str], study: str, arm: str, seed: int) -> Path:
    """Where the run of (study, arm, seed) lives."""
    return Path(experiments) / study / arm / f"seed{int(seed)}"


@dataclass(frozen=True)
class RunRef:
    """A run directory found in a study: the arm and seed its path names."""

    arm: str
    seed: int
    dir: Path


def find_runs(study_dir: str | os.PathLike[str]) -> list[RunRef]:
    """Every `<study>/<arm>/seed<k>` directory, sorted by arm name then seed."""
    study = Path(study_dir)
    found: list[RunRef] = []
    for arm_dir in study.iterdir():
        if not arm_dir.is_dir() or arm_dir.name.startswith("."):
            continue
        for d in arm_dir.iterdir():
            m = _SEED_DIR.fullmatch(d.name)
            if m and d.is_dir():
                found.append(RunRef(arm_dir.name, int(m.group(1)), d))
    return sorted(found, key=lambda r: (r.arm, r.seed, str(r.dir)))


# ------------------------------------------------------------------------------ typed summary


def _from_dict(cls: type, data: dict[str, Any] | None) -> Any:
    """A dataclass from a dict, tolerant of keys from other versions (missing -> default)."""
    if data is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass
class SplitResult:
    """The final evaluation of one split (val or test), summed over every target once."""

    loss: float  # nats per token
    bpb: float  # model nats / (ln 2 * bytes): for exact tokenizers, the headline
    bpb_oov_adjusted: float  # + each <unk>'s spelling under the unigram speller
    bpb_lossless: float  # + <unk> spellings + dropped whitespace (closed-vocabulary word arms)
    tokens: int
    bytes: int
    nats: float
    unk_spelling_nats: float = 0.0
    layout_nats: float = 0.0
    # <unk> spellings priced by every speller: {"unigram": nats, "ngram": nats}
    spelling_nats: dict[str, float] | None = None
    bpb_lossless_by_speller: dict[str, float] | None = None
    # Sliding-window evaluation (every target scored with at least block - stride of context),
    # charges included: comparable with bpb_lossless (equal to bpb for exact arms).
    bpb_sliding: float | None = None
    sliding_stride: int | None = None
    # Per document, in split order: model nats (plus lossless charges), and UTF-8 bytes.
    doc_ids: list[str] | None = None
    doc_nats: list[float] | None = None
    doc_charge_nats: list[float] | None = None
    doc_bytes: list[int] | None = None
    # Targets split by the class of the predicted token's row: "vector_rows" (rows that can
    # take a vector: the vocabulary's words or BPE tokens, covered or not), "fallback_rows"
    # (the byte rows that spell a word outside the vocabulary) and "special_rows" (end of
    # document), each {"tokens", "bytes", "nats", "charge_nats"}. The classes depend only on
    # the tokenizer, so arms sharing one are paired. Newer records split "vector_rows" into
    # "covered_rows" (the row received a vector; scratch records the rows Word2Vec trained
    # here would cover at its init settings, its word2vec partner's) and "uncovered_rows".
    by_row_class: dict[str, dict[str, float]] | None = None
    # by_row_class per document, in split order (aligned with doc_nats): per class but
    # "vector_rows", {"tokens", "bytes", "nats", "charge_nats"} as lists.
    doc_by_row_class: dict[str, dict[str, list[float]]] | None = None
    # Set only when train.final_eval_tokens left documents out (train=smoke): {"docs": scored,
    # "of": documents in the split, "max_tokens": the cap}. The totals and per-document lists
    # above then cover the leading `docs` documents only: not a full evaluation.
    partial: dict[str, int] | None = None


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    tokens_seen: int
    bytes_seen: int
    wall_s: float | None = None
    train_wall_s: float | None = None
    tokens_per_s: float | None = None
    device: str | None = None
    world_size: int | None = None
    epochs: float | None = None  # training bytes seen / train split bytes
    flops: float | None = None  # training FLOPs (6N + attention, per token x tokens seen)
    budget: str | None = None  # bytes | steps | flops | epochs


@dataclass
class InitCompute:
    """What the initialization itself consumed: zero for scratch."""

    train_tokens: int = 0  # tokens the vector model read (its epochs x its corpus)
    epochs: float = 0.0
    wall_s: float = 0.0
    flops: float = 0.0  # estimate; see the producer's init module for the formula
    source: str = "none"  # "none" (scratch), "word2vec on the train split", "external: ..."


@dataclass
class RunSummary:
    """summary.json. Sections stay dicts where their keys are open-ended (params, oov, data)."""

    arm: str
    vocab: str
    init: str
    seed: int
    study: str
    model: str
    status: str
    model_config: dict[str, Any] = field(default_factory=dict)
    vocab_size: int = 0
    vocab_oov: str | None = None  # word arms: bytes (exact) | unk (closed, charged)
    exact: bool | None = None  # the model predicts every byte: bpb needs no external charge
    params: dict[str, Any] = field(default_factory=dict)
    oov: dict[str, Any] = field(default_factory=dict)
    word_oov_curve: list[dict[str, float]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    diverged_at_step: int | None = None
    val: SplitResult | None = None
    test: SplitResult | None = None
    train: TrainResult | None = None
    init_compute: InitCompute | None = None
    context: dict[str, Any] | None = None  # block in tokens and the bytes it spans
    # How the arm's embedding was made and treated beyond vocab x init: {"source" (vectors a
    # control was built from), "scale", "oov_rows", "freeze", "freeze_steps", "tied",
    # "train_fraction"}.
    arm_spec: dict[str, Any] | None = None
    # Golden check at step 0, before any update: {"loss" (val loss), "ln_vocab", "excess"
    # (loss - ln V), "tolerance", "flagged" (excess > tolerance)}.
    step0: dict[str, Any] | None = None
    # Embedding diagnostics at init and at the end: wordsim353_init/_final, simlex999_init/
    # _final (Spearman rho), analogy_init/_final (accuracy on covered questions), their
    # coverage counts (*_n), drift_covered / drift_fallback (mean cosine of each row at init
    # and at the end), and neighbours {"init"|"final": {probe: [words]}}.
    diagnostics: dict[str, Any] | None = None
    # Where the run sits (`embinit.regime.regime_coordinates`): tokens per parameter and per
    # non-embedding parameter, epochs, the embedding share, training occurrences per row
    # (median, 10th percentile, mean; share of rows never seen) and the held-out OOV rate.
    regime: dict[str, Any] | None = None
    # Count-based baselines on this arm's own tokens (`embinit.run.ngram`): {"ngram": {"source",
    # "orders": {"<n>": {"val"|"test": {"doc_nats": [...], "nats", "discounts"}}}}}, per
    # held-out document in the split's doc order, so the report scores them like the arms.
    baselines: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        # Typed fields a run did not measure stay out rather than appear as null; the open
        # sections (params, oov, data) keep their nulls, as records always had them.
        d = asdict(self)
        for key in ("val", "test", "train", "init_compute"):
            if isinstance(d[key], dict):
                d[key] = _drop_none(d[key])
        return {k: v for k, v in d.items() if v is not None or k == "diverged_at_step"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        for key, sub in (("val", SplitResult), ("test", SplitResult), ("train", TrainResult),
                         ("init_compute", InitCompute)):
            kw[key] = _from_dict(sub, data.get(key))
        kw.setdefault("status", MISSING)
        for key in ("arm", "vocab", "init", "study", "model"):
            kw.setdefault(key, "")
        kw.setdefault("seed", -1)
        return cls(**kw)


# ------------------------------------------------------------------------------ study settings


@dataclass
class StudySettings:
    """What the report of a study needs beyond its runs; written by the sweep, read by the report."""

    name: str
    reference_arm: str = "bpe+scratch"
    description: str = ""
    # The study's declared comparisons: "<arm>" (against reference_arm) or "<arm> vs <arm>";
    # p-values are Holm-adjusted across them. Empty: every arm against the reference.
    primary: list[str] = field(default_factory=list)
    # |difference| below this (bpb) counts as practically equivalent (TOST, both one-sided tests).
    equivalence_margin: float = 0.02


def write_study_settings(study_dir: str | os.PathLike[str], settings: StudySettings) -> None:
    atomic_write_json(Path(study_dir) / STUDY_FILE, asdict(settings))


def read_study_settings(study_dir: str | os.PathLike[str]) -> StudySettings | None:
    path = Path(study_dir) / STUDY_FILE
    if not path.exists():
        return None
    try:
        return _from_dict(StudySettings, read_json(path))
    except (json.JSONDecodeError, OSError, TypeError):
        return None


# ------------------------------------------------------------------------------ reading


def read_summary(run: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """(status, raw summary dict) of a run directory; MISSING or UNREADABLE with None."""
    path = Path(run) / SUMMARY_FILE
    if not path.exists():
        return MISSING, None
    try:
        summary = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return UNREADABLE, None
    if not isinstance(summary, dict):
        return UNREADABLE, None
    return str(summary.get("status") or MISSING), summary


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """metrics.jsonl rows (a torn last line is ignored)."""
    return read_jsonl(Path(run) / METRICS_FILE)


def read_config(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's resolved config: config.json, else (records older than config.json) Hydra's copy."""
    d = Path(run)
    if (d / CONFIG_FILE).exists():
        return read_json(d / CONFIG_FILE)
    if (d / HYDRA_CONFIG).exists():
        from omegaconf import OmegaConf

        raw = OmegaConf.load(d / HYDRA_CONFIG)
        try:
            return OmegaConf.to_container(raw, resolve=True)  # type: ignore[return-value]
        except Exception:  # an interpolation that needs Hydra's runtime
            return OmegaConf.to_container(raw, resolve=False)  # type: ignore[return-value]
    return None


# ------------------------------------------------------------------------------ archiving

# What a report is built from: the small files of every run (no weights, no checkpoint).
ARCHIVED_FILES = (CONFIG_FILE, SUMMARY_FILE, METRICS_FILE)


def archive_records(study_dir: str | os.PathLike[str], dest: str | os.PathLike[str]) -> int:
    """Copy a study's records (study.json and each run's config, summary and metrics) into
    `dest`/<study name>/, laid out as a study directory, so a committed report can be rebuilt
    from exactly what it was built from (`embinit-report <dest>/<study>`). Replaces what was
    there; returns the number of runs copied."""
    src = Path(study_dir)
    out = Path(dest) / src.resolve().name
    if out.resolve() == src.resolve():
        return len(find_runs(src))
    fresh = out.with_name(out.name + ".new")
    if fresh.exists():
        shutil.rmtree(fresh)
    n = 0
    if (src / STUDY_FILE).exists():
        atomic_write_text(fresh / STUDY_FILE, (src / STUDY_FILE).read_text(encoding="utf-8"))
    for ref in find_runs(src):
        rel = ref.dir.relative_to(src)
        for name in ARCHIVED_FILES:
            if (ref.dir / name).exists():
                atomic_write_text(fresh / rel / name,
                                  (ref.dir / name).read_text(encoding="utf-8"))
        n += 1
    if out.exists():
        shutil.rmtree(out)
    fresh.rename(out)
    return n


# ------------------------------------------------------------------------------ writing


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that defines a run's result."""
    ident = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
    ident["train"] = {k: v for k, v in config["train"].items() if k not in VOLATILE_TRAIN_KEYS}
    return ident


def departure_name(saved: dict[str, Any], requested: dict[str, Any], limit: int = 3) -> str:
    """A short name for what `requested` changes against `saved`, for a study of its own:
    `train.lr: 0.003 -> 0.001` gives "lr0.001"; several keys join with "-"."""
    parts = []
    for key in _diff_keys(identity(saved), identity(requested)):
        value: Any = requested
        for k in key.split("."):
            value = value.get(k) if isinstance(value, dict) else None
        leaf = key.rsplit(".", 1)[-1]
        shown = "" if isinstance(value, (dict, list)) or value is None else str(value)
        parts.append(re.sub(r"[^A-Za-z0-9._]", "", f"{leaf}{shown}"))
    if not parts:
        return "custom"
    return "-".join(parts[:limit]) + ("-more" if len(parts) > limit else "")


def _diff_keys(saved: dict[str, Any], requested: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key), requested.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def config_diff(saved: dict[str, Any], requested: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out: list[str] = []
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key), requested.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


class RunRecord:
    """One run directory, as the producer writes it."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.config_path = self.dir / CONFIG_FILE
        self.metrics_path = self.dir / METRICS_FILE
        self.summary_path = self.dir / SUMMARY_FILE
        self.checkpoint_path = self.dir / CHECKPOINT_FILE

    def ensure_writable(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.dir, prefix=".write-test-"):
                pass
        except OSError as e:
            raise ConfigError(
                f"the output directory {self.dir} is not writable ({e.strerror}); choose "
                "another with paths.experiments=<dir>, or hydra.run.dir=<dir> "
                "(hydra.sweep.dir=<dir> for a sweep)"
            ) from e

    def summary(self) -> dict[str, Any] | None:
        status, summary = read_summary(self.dir)
        return summary if status != UNREADABLE else None

    def check_identity(self, config: dict[str, Any],
                       rerun: Callable[[str], str] | None = None) -> None:
        """Refuse to continue a run directory that holds a run with another config.

        ``rerun(name)``, if given, is the command that runs the new config beside the old one
        (in a study called ``name``, named after the changed keys); the message quotes it.
        """
        if not self.config_path.exists():
            return
        raw = read_json(self.config_path)
        saved = identity(raw)
        diff = config_diff(saved, identity(config))
        if diff:
            shown = "\n  ".join(diff[:12])
            beside = ("keep both by choosing another one (study.name=<name> or "
                      "hydra.run.dir=<dir>)")
            if rerun is not None:
                beside = ("keep both: run the new settings in a study of their own with\n"
                          f"  {rerun(departure_name(raw, config))}")
            raise ConfigError(
                f"{self.dir} holds a run with a different configuration:\n  {shown}\n"
                f"Refusing to resume into it. Start fresh by deleting that directory, or "
                f"{beside}"
            )

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def append_metrics(self, row: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, row)

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.dir)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past the resumed checkpoint, which the resumed run writes again."""
        rows = [r for r in self.metrics() if r["step"] <= after_step]
        atomic_write_text(self.metrics_path,
                          "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    def write_summary(self, summary: RunSummary) -> None:
        atomic_write_json(self.summary_path, summary.to_dict())
