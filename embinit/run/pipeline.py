"""One run, start to finish: the data flow of an arm, stage by stage.

corpus -> split -> tokenizer -> token cache -> init (+ its cost) -> model -> trainer
-> final evaluation (per document, non-overlapping and sliding) -> run record. Each stage
lives in its own module; this file wires them and assembles the typed summary.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from embinit.config import CONTROL_INITS, to_container, validate
from embinit.errors import ConfigError
from embinit.metrics import LN2, lossless_bpb, oov_adjusted_bpb
from embinit.params import flops_per_token, param_breakdown
from embinit.record import (
    COMPLETED,
    DEFAULT_VOCAB_SIZE,
    DIVERGED,
    FINAL_WEIGHTS_FILE,
    INIT_EMBEDDING_FILE,
    TOKENIZER_FILE,
    InitCompute,
    RunRecord,
    RunSummary,
    SplitResult,
    StudySettings,
    TrainResult,
    arm_label_of,
    run_dir,
    write_study_settings,
)
from embinit.regime import regime_coordinates
from embinit.run.data.accounting import oov_rates
from embinit.run.data.baselines import build_or_load_baselines
from embinit.run.data.cache import TokenCache, TokenSplit, build_or_load_token_cache
from embinit.run.data.corpus import Corpus, open_corpus
from embinit.run.data.fraction import with_train_fraction
from embinit.run.data.locking import run_lock
from embinit.run.data.oov import build_or_load_oov_curve
from embinit.run.data.tokenizer import (
    build_or_load_tokenizer,
    run_tokenizer_json,
    vector_lookup_keys,
)
from embinit.run.init.compute import init_compute
from embinit.run.init.initialization import InitResult, init_matrix
from embinit.run.model import GPT
from embinit.run.tracking import make_tracker
from embinit.run.train import distributed
from embinit.run.train.checkpoint import load_matching_checkpoint, save_checkpoint_file
from embinit.run.train.evaluate import (
    EvalProgress,
    EvalResult,
    default_stride,
    eval_windows,
    leading_documents,
    per_document,
    result_from_targets,
    sliding_evaluate,
    sliding_windows,
    target_nll,
)
from embinit.run.train.loop import Diverged, Trainer, resolve_device
from embinit.storage import atomic_save_npy, atomic_torch_save, atomic_write_text

log = logging.getLogger("embinit.pipeline")


def arm_name(cfg: DictConfig) -> str:
    return arm_label_of(to_container(cfg))


def is_exact(cfg: DictConfig) -> bool:
    """Whether the model itself predicts every byte (bpb needs no external charge)."""
    return cfg.vocab.name == "bpe" or cfg.vocab.oov == "bytes"


def resolve_paths(cfg: DictConfig) -> None:
    """Make every configured path absolute (relative to the launch directory)."""
    for key in ("root", "cache", "experiments", "results"):
        cfg.paths[key] = str(Path(cfg.paths[key]).expanduser().resolve())


def prepare_data(cfg: DictConfig) -> tuple[Corpus, Any, TokenCache]:
    """Corpus, split, tokenizer and token arrays: cached by content, shared by arms."""
    cache_root = Path(cfg.paths.cache)
    corpus = open_corpus(cfg.data, cache_root)
    tokenizer, tok_path, _ = build_or_load_tokenizer(corpus, cfg.data, cfg.vocab, cache_root)
    check_vocab_reached(cfg, tokenizer.get_vocab_size())
    # A corpus statistic shared by every arm: built by the first arm on a corpus (one pass).
    build_or_load_oov_curve(corpus, cfg.data, cfg.vocab, cache_root)
    cache = build_or_load_token_cache(corpus, cfg.data, cfg.vocab, tokenizer, tok_path, cache_root)
    if cfg.data.train_fraction < 1.0:
        full_docs = cache.splits["train"].stats.n_docs
        cache = with_train_fraction(cache, float(cfg.data.train_fraction),
                                    int(cfg.data.split_seed))
        log.info("data.train_fraction=%g: training on a seeded random %d of %d train documents",
                 cfg.data.train_fraction, cache.splits["train"].stats.n_docs, full_docs)
    return corpus, tokenizer, cache


def check_vocab_reached(cfg: DictConfig, reached: int) -> None:
    """Refuse a vocab.size the tokenizer cannot reach on this corpus when the arm's label names
    it (`bpe10000k` for a 34,885-token vocabulary would be a wrong label); at the default
    size, which labels leave out, warn (summary.vocab_size records the real size)."""
    wanted = int(cfg.vocab.size)
    if reached >= wanted:
        return
    what = "pairs to merge" if cfg.vocab.name == "bpe" else "words"
    why = (f"the train split runs out of {what} seen at least vocab.min_count="
           f"{cfg.vocab.min_count} times at {reached:,} tokens")
    if wanted == DEFAULT_VOCAB_SIZE.get(str(cfg.vocab.name)):
        log.warning("vocab.size=%d is not reached on this corpus: %s; the arm trains with %d "
                    "tokens (summary.vocab_size)", wanted, why, reached)
        return
    raise ConfigError(
        f"vocab.size={wanted} cannot be reached on this corpus: {why}, so the arm label "
        f"{arm_name(cfg)} would name a size it does not have. Use vocab.size={reached} (or "
        "less), a lower vocab.min_count, or a larger corpus"
    )


def source_init_config(init: DictConfig) -> DictConfig:
    """The init settings whose vectors an arm uses: its own, or for a control (init=shuffled,
    matched_random) the same settings with name=init.source, so the control reads the very
    vectors (and cache entry) of its source arm."""
    if init.name not in CONTROL_INITS:
        return init
    settings = OmegaConf.to_container(init, resolve=True)
    settings["name"] = init.source
    return OmegaConf.create(settings)


def make_init(cfg: DictConfig, tokenizer: Any, cache: TokenCache) -> tuple[InitResult, InitCompute]:
    """The arm's initial token-embedding matrix, and what making it cost.

    A control costs what its source's vectors cost (it is built from them).
    """
    vocab = [tokenizer.id_to_token(i) for i in range(cache.vocab_size)]
    src = source_init_config(cfg.init)
    dim = src.dim or cfg.model.d_model
    kv = None
    if src.name == "contextual":
        from embinit.run.init.contextual import build_or_load_contextual, contextual_compute

        # The encoder reads text: "Ġthe" -> "the", byte and special rows take no vector.
        keys = vector_lookup_keys(tokenizer, cfg.vocab, external=True)
        kv, meta = build_or_load_contextual(keys, Path(cfg.paths.cache))
        compute = contextual_compute(meta)
    else:
        vec_path, trained_here = None, False
        if src.name != "scratch":
            from embinit.run.init.vectors import TokenSentences, build_or_load_vectors

            train_ids = cache.splits["train"].ids

            def sentences() -> TokenSentences:
                return TokenSentences(train_ids, vocab, cache.eod_id)

            kv, vec_path, _ = build_or_load_vectors(src, dim, sentences, cache.key,
                                                    Path(cfg.paths.cache))
            trained_here = src.name == "word2vec" and not src.vectors_path
        # External vectors are keyed by words ("the"), Word2Vec trained here by token strings
        # ("Ġthe"); byte rows of the exact word arm never take a vector (the seed's OOV
        # rows). Scratch gets the keys of Word2Vec trained here, to report `eligible` rows.
        keys = vector_lookup_keys(tokenizer, cfg.vocab,
                                  external=src.name == "glove" or bool(src.vectors_path))
        train_stats = cache.splits["train"].stats
        compute = init_compute(src, dim, train_stats.n_text_tokens, vec_path, trained_here)
    if cfg.init.name in CONTROL_INITS:
        compute = replace(compute, source=f"{cfg.init.name} control of {compute.source}")
    init = init_matrix(vocab, cfg.model.d_model, cfg.init, cfg.seed, kv=kv,
                       token_counts=cache.train_token_counts(), vector_keys=keys)
    return init, compute


def context_tokens(cfg: DictConfig, train_tokens_per_byte: float) -> int:
    """The training and evaluation window in tokens for this arm.

    train.context=tokens: model.block_size for every arm. train.context=bytes: the window
    spans train.context_bytes of text on average, so arms with different tokenizers see the
    same amount of text per prediction; model.block_size stays the size of every arm's
    position table, so the body (positions included) is identical across arms. The tokens
    per byte are the training stream's (after data.train_fraction), so the window spans
    context_bytes of the text the arm trains on; subsets of one split differ by a token or two.
    """
    if cfg.train.context == "tokens":
        return int(cfg.model.block_size)
    block = max(2, round(cfg.train.context_bytes * train_tokens_per_byte))
    if block > cfg.model.block_size:
        raise ConfigError(
            f"train.context_bytes={cfg.train.context_bytes} is {block} tokens for this "
            f"tokenizer ({train_tokens_per_byte:.3f} tokens per byte), more than "
            f"model.block_size={cfg.model.block_size} positions; raise model.block_size or "
            "lower train.context_bytes"
        )
    return block


def freeze_steps(cfg: DictConfig) -> int:
    """Optimizer steps in which the token embedding takes no update (init.freeze: all)."""
    return 1 << 62 if cfg.init.freeze else int(cfg.init.freeze_steps)


def arm_spec(cfg: DictConfig) -> dict[str, Any]:
    """How the embedding was made and treated, beyond vocab x init (summary.arm_spec)."""
    init = cfg.init
    return {
        "source": init.get("source") if init.name in ("shuffled", "matched_random") else None,
        "scale": init.get("scale"),
        "oov_rows": init.get("oov_rows"),
        "freeze": bool(init.freeze),
        "freeze_steps": int(init.freeze_steps),
        "tied": bool(cfg.model.tie_embeddings),
        "train_fraction": float(cfg.data.train_fraction),
        "pretokenizer": cfg.vocab.get("pretokenizer"),
    }


# Step 0 of a well-initialized LM predicts near-uniformly: loss ~ ln V (GPT-2's init puts
# the logits' spread near 0.2, a few hundredths of a nat). A start more than this far
# above ln V means the arm's rows make confident wrong predictions before any training.
STEP0_TOLERANCE_NATS = 0.25


def step0_check(step0_loss: float | None, vocab_size: int,
                tolerance: float = STEP0_TOLERANCE_NATS) -> dict[str, Any] | None:
    """summary.step0: the val loss before training against ln V."""
    if step0_loss is None:
        return None
    ln_v = float(np.log(vocab_size))
    excess = float(step0_loss) - ln_v
    return {"loss": float(step0_loss), "ln_vocab": ln_v, "excess": excess,
            "tolerance": tolerance, "flagged": excess > tolerance}


# A row's class in `row_partition`: it received a vector, it could take one and did not (an
# in-vocabulary word or BPE token left random), or it takes none (byte and special rows).
ROW_COVERED, ROW_UNCOVERED, ROW_NO_KEY = 0, 1, 2


def word2vec_covered(vocab: list[str], keys: list[str | None], token_counts: np.ndarray,
                     min_count: int, lowercase_fallback: bool, eod_id: int) -> np.ndarray:
    """(V,) bool: the rows that Word2Vec trained here would cover at these init settings,
    without training it. Its vocabulary is every token string of the train sentences (the
    train stream without EOD, `vectors.TokenSentences`) seen at least ``min_count`` times,
    less strings with whitespace (`vectors.train_word2vec` drops them); a row with lookup key
    ``keys[i]`` is covered when the key, or with ``lowercase_fallback`` its lowercase form,
    is in it (`initialization.vector_init`). Neither depends on the seed."""
    counts = np.asarray(token_counts)
    index = {t: i for i, t in enumerate(vocab)}

    def known(token: str) -> bool:
        i = index.get(token)
        return (i is not None and i != eod_id and counts[i] >= min_count
                and not any(c.isspace() for c in token))

    out = np.zeros(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        if key is not None:
            out[i] = known(key) or (lowercase_fallback and key.lower() != key
                                    and known(key.lower()))
    return out


def row_partition(cfg: DictConfig, tokenizer: Any, init: InitResult,
                  token_counts: np.ndarray, eod_id: int) -> np.ndarray:
    """(V,) int8: each row's class for `by_row_class` (ROW_COVERED, ROW_UNCOVERED, ROW_NO_KEY).

    Covered rows are the rows that received a vector (``init.from_vectors``; a control's are
    its source's). Scratch receives none, yet its gain per class must be taken over the same
    targets as its word2vec partner's: it records the rows Word2Vec trained here would cover
    at its own init settings (``word2vec_covered``: init.min_count and lowercase_fallback,
    the same defaults as the word2vec arm), so the partition is its partner's whenever their
    init settings agree; the consumer checks that the classes hold the same targets.
    Eligible rows (a lookup key) are the same for every arm of a tokenizer.
    """
    keys = vector_lookup_keys(tokenizer, cfg.vocab, external=False)
    if cfg.init.name == "scratch":
        vocab = [tokenizer.id_to_token(i) for i in range(len(keys))]
        covered = word2vec_covered(vocab, keys, token_counts, int(cfg.init.min_count),
                                   bool(cfg.init.lowercase_fallback), eod_id)
    else:
        covered = np.asarray(init.from_vectors, dtype=bool)
    rows = np.full(len(keys), ROW_NO_KEY, dtype=np.int8)
    rows[np.array([k is not None for k in keys], dtype=bool)] = ROW_UNCOVERED
    rows[covered] = ROW_COVERED
    return rows


def _target_classes(ids: np.ndarray, rows: np.ndarray,
                    specials: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per class, the mask of targets (ids[1:]) whose row is in it."""
    targets = np.asarray(ids[1:], dtype=np.int64)
    cls = np.asarray(rows)[targets]
    keyed = cls != ROW_NO_KEY
    special = np.isin(targets, np.asarray(specials, dtype=np.int64)) & ~keyed
    return {"covered_rows": cls == ROW_COVERED, "uncovered_rows": cls == ROW_UNCOVERED,
            "vector_rows": keyed, "fallback_rows": ~keyed & ~special, "special_rows": special}


def row_classes(per_target: np.ndarray, ids: np.ndarray, nbytes: np.ndarray,
                charges: np.ndarray | None, rows: np.ndarray,
                specials: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Targets split by their row's class (``rows``: `row_partition`): `covered_rows` (the
    row received a vector; for scratch, the rows its word2vec partner's would),
    `uncovered_rows` (a word or BPE token that could take a vector and did not: random rows
    for known words), `vector_rows` (the two together, every row that can take a vector: the
    one vector class of older records), `fallback_rows` (the byte rows that spell a word
    outside the vocabulary) and `special_rows` (end of document, an unused <unk>: no bytes,
    nothing to do with OOV).

    Target t is ids[t + 1]; `nats` is the model's, `charge_nats` the lossless charges.
    """
    b = np.asarray(nbytes[1:], dtype=np.int64)
    c = (np.asarray(charges[1:], dtype=np.float64) if charges is not None
         else np.zeros(len(b)))
    nats = np.asarray(per_target, dtype=np.float64)
    return {name: {"tokens": int(mask.sum()), "bytes": int(b[mask].sum()),
                   "nats": float(nats[mask].sum()), "charge_nats": float(c[mask].sum())}
            for name, mask in _target_classes(ids, rows, specials).items()}


def doc_row_classes(per_target: np.ndarray, ids: np.ndarray, nbytes: np.ndarray,
                    charges: np.ndarray | None, rows: np.ndarray, specials: tuple[int, ...],
                    eod_id: int) -> dict[str, dict[str, list[float]]]:
    """``row_classes`` per held-out document, in split order (aligned with `doc_nats`):
    per class but `vector_rows` (covered + uncovered), lists of tokens, bytes, nats and
    charge_nats, one entry per document."""
    b = np.asarray(nbytes[1:], dtype=np.int64)
    c = (np.asarray(charges[1:], dtype=np.float64) if charges is not None
         else np.zeros(len(b)))
    nats = np.asarray(per_target, dtype=np.float64)
    out: dict[str, dict[str, list[float]]] = {}
    for name, mask in _target_classes(ids, rows, specials).items():
        if name == "vector_rows":
            continue
        out[name] = {
            "tokens": [int(x) for x in per_document(mask.astype(np.int64), ids, eod_id)],
            "bytes": [int(x) for x in per_document(np.where(mask, b, 0), ids, eod_id)],
            "nats": [float(x) for x in per_document(np.where(mask, nats, 0.0), ids, eod_id)],
            "charge_nats": [float(x) for x in per_document(np.where(mask, c, 0.0), ids,
                                                           eod_id)]}
    return out


def _bpb(nats: float, n_bytes: int) -> float:
    return nats / (LN2 * n_bytes)


def _split_result(cfg: DictConfig, split: TokenSplit, ev: EvalResult, per_target: np.ndarray,
                  sliding: EvalResult | None, stride: int, eod_id: int,
                  doc_ids: list[str] | None, rows: np.ndarray,
                  specials: tuple[int, ...]) -> SplitResult:
    stats = split.stats
    spellers = {"unigram": stats.unk_spelling_nats, "ngram": stats.unk_spelling_nats_ngram}
    doc_nats = per_document(per_target, split.ids, eod_id)
    charges = (per_document(np.asarray(split.charges[1:], dtype=np.float64), split.ids, eod_id)
               if split.charges is not None else np.zeros_like(doc_nats))
    doc_bytes = per_document(np.asarray(split.nbytes[1:], dtype=np.int64), split.ids, eod_id)
    closed = not is_exact(cfg)
    return SplitResult(
        loss=ev.loss,
        bpb=ev.bpb,
        bpb_oov_adjusted=oov_adjusted_bpb(ev.nats, stats.unk_spelling_nats, ev.bytes),
        bpb_lossless=lossless_bpb(ev.nats, stats.unk_spelling_nats, stats.layout_nats, ev.bytes),
        tokens=ev.targets,
        bytes=ev.bytes,
        nats=ev.nats,
        unk_spelling_nats=stats.unk_spelling_nats,
        layout_nats=stats.layout_nats,
        spelling_nats=spellers if closed else None,
        bpb_lossless_by_speller={
            k: lossless_bpb(ev.nats, v, stats.layout_nats, ev.bytes)
            for k, v in spellers.items()} if closed else None,
        bpb_sliding=sliding.bpb_lossless if sliding is not None else None,
        sliding_stride=stride if sliding is not None else None,
        doc_ids=list(doc_ids) if doc_ids else None,
        doc_nats=[float(x) for x in doc_nats],
        doc_charge_nats=[float(x) for x in charges],
        doc_bytes=[int(x) for x in doc_bytes],
        by_row_class=row_classes(per_target, split.ids, split.nbytes, split.charges, rows,
                                 specials),
        doc_by_row_class=doc_row_classes(per_target, split.ids, split.nbytes, split.charges,
                                         rows, specials, eod_id),
    )


def _configure_torch(cfg: DictConfig, device: torch.device) -> None:
    if cfg.train.num_threads:
        torch.set_num_threads(int(cfg.train.num_threads))
    if cfg.train.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(cfg.seed)


def _write_study_settings(cfg: DictConfig, record: RunRecord, arm: str) -> None:
    """study.json beside the arms, when this run sits in its study's standard place."""
    standard = run_dir(cfg.paths.experiments, cfg.study.name, arm, cfg.seed)
    if record.dir.resolve() != standard.resolve():
        return
    s = cfg.study
    write_study_settings(standard.parent.parent, StudySettings(
        name=s.name, reference_arm=s.reference_arm, description=s.description,
        primary=list(s.primary), equivalence_margin=float(s.equivalence_margin)))


def run(cfg: DictConfig, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Run one arm in `run_dir`, resuming from its checkpoint; returns the summary."""
    validate(cfg)
    resolve_paths(cfg)
    config = to_container(cfg)
    record = RunRecord(run_dir)
    device = resolve_device(cfg.train)
    dist = distributed.setup(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    try:
        if not dist.is_main:
            dist.barrier()  # rank 0 holds the run's lock first
            return _run(cfg, config, record, device, dist)
        record.ensure_writable()
        with run_lock(record.dir):  # one process per run directory; a second waits, then skips
            dist.barrier()
            return _run(cfg, config, record, device, dist)
    finally:
        distributed.teardown(dist)


def rerun_command(study: str, name: str, argv: list[str] | None = None) -> str:
    """The command line that runs this invocation's settings in a study of their own (named
    after the keys that changed), beside the run that holds the old ones."""
    argv = list(sys.argv if argv is None else argv)
    prog = (["python", "run.py"] if Path(argv[0]).name == "run.py"
            else [Path(argv[0]).name or "embinit-train"])
    args = [a for a in argv[1:] if not a.lstrip("+").startswith("study.name=")]
    new_study = name if study == "default" else f"{study}-{name}"
    given_dir = [a for a in args if a.startswith("hydra.run.dir=")]
    if given_dir:  # an explicit run directory wins over study.name: name another one
        args = [a if a not in given_dir else f"{a}-{name}" for a in args]
    else:
        args.append(f"study.name={new_study}")
    return shlex.join([*prog, *args])


def _run(cfg: DictConfig, config: dict[str, Any], record: RunRecord, device: torch.device,
         dist: distributed.Dist) -> dict[str, Any]:
    arm = arm_name(cfg)
    if dist.is_main:
        record.ensure_writable()
        record.check_identity(config, lambda name: rerun_command(str(cfg.study.name), name))
        _write_study_settings(cfg, record, arm)
    done = record.summary()
    if done and done.get("status") in ("completed", "diverged"):
        log.info("%s seed %s already %s in %s; nothing to do", arm, cfg.seed, done["status"], record.dir)
        return done

    # Rank 0 builds the shared caches first; the other ranks then find them ready.
    if dist.is_main:
        corpus, tokenizer, cache = prepare_data(cfg)
    dist.barrier()
    if not dist.is_main:
        corpus, tokenizer, cache = prepare_data(cfg)
    _configure_torch(cfg, device)
    if dist.is_main:
        init, init_cost = make_init(cfg, tokenizer, cache)
    dist.barrier()
    if not dist.is_main:
        init, init_cost = make_init(cfg, tokenizer, cache)

    train, val, test = (cache.splits[s] for s in ("train", "val", "test"))
    block = context_tokens(cfg, train.stats.n_tokens / train.stats.n_bytes)
    model = GPT(cfg.model, cache.vocab_size, seed=cfg.seed)
    body_sha = model.body_sha256()  # before the arm's rows go in: the same for every arm
    model.set_token_embedding(init.matrix)
    params: dict[str, Any] = {**param_breakdown(cfg.model, cache.vocab_size),
                              "body_init_sha256": body_sha}
    fpt = flops_per_token(cfg.model, cache.vocab_size, seq_len=block)
    trainer = Trainer(cfg.train, model, train.ids, train.nbytes, val.ids, val.nbytes,
                      seed=cfg.seed, dist=dist, device=device, val_charges=val.charges,
                      block=block, flops_per_token=fpt,
                      freeze_embedding_steps=freeze_steps(cfg))
    log.info("arm %s seed %d: vocab %d, %s params (%s embedding), context %d tokens, "
             "%d steps of %d tokens on %s", arm, cfg.seed, cache.vocab_size,
             f"{params['total']:,}", f"{params['embedding']:,}", block, trainer.total_steps,
             trainer.tokens_per_step, device)

    # What a checkpoint must match to be resumed: the shapes, and the batch geometry and
    # sampling that fix the schedule and the data order (they change with the number of ranks).
    signature = {"vocab_size": cache.vocab_size, "model": config["model"],
                 "world_size": dist.world_size, "tokens_per_step": trainer.tokens_per_step,
                 "block": block, "total_steps": trainer.total_steps,
                 "sampling": cfg.train.sampling,
                 "chunk_bytes": getattr(trainer.sampler, "chunk_bytes", None)}
    ckpt = load_matching_checkpoint(record.checkpoint_path, signature)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
        log.info("resuming from step %d (%s)", trainer.state.step, record.checkpoint_path)
        if dist.is_main:
            record.truncate_metrics(trainer.state.step)
    elif dist.is_main:
        record.metrics_path.unlink(missing_ok=True)  # a run without checkpoint starts over
    if dist.is_main:
        record.write_config(config)

    tracker = make_tracker(cfg.logger, record.dir, f"{arm}/seed{cfg.seed}", cfg.study.name,
                           config, dist.is_main, job_type=arm,
                           tags=[cfg.vocab.name, cfg.init.name, cfg.model.name])

    def on_metrics(row: dict[str, Any]) -> None:
        record.append_metrics(row)
        tracker.log_metrics(row)

    def checkpoint(payload: dict[str, Any]) -> None:
        save_checkpoint_file(record.checkpoint_path, payload, signature)

    summary = _summary_base(cfg, arm, corpus, cache, params, init, init_cost, block)
    summary.arm_spec = arm_spec(cfg)
    # Counting's score on this arm's own tokens: shared by every arm on the stream, cached.
    if dist.is_main:
        summary.baselines = {"ngram": build_or_load_baselines(cache, Path(cfg.paths.cache))}
    # Each row's class for by_row_class: covered by a vector (for scratch, as its word2vec
    # partner's would be), uncovered, or no key (byte and special rows); see row_partition.
    rows = row_partition(cfg, tokenizer, init, cache.train_token_counts(), cache.eod_id)
    if dist.is_main:
        # The run directory is self-contained: what it needs to be loaded, sampled, exported.
        atomic_write_text(record.dir / TOKENIZER_FILE, run_tokenizer_json(tokenizer))
        atomic_save_npy(record.dir / INIT_EMBEDDING_FILE, np.asarray(init.matrix, np.float32))
    try:
        state = trainer.fit(on_metrics, checkpoint)
    except Diverged as e:
        log.error("%s seed %d diverged: %s", arm, cfg.seed, e)
        # train.steps counts the steps completed before the one whose loss was not finite.
        summary.status, summary.diverged_at_step = DIVERGED, e.step
        summary.step0 = step0_check(_step0_loss(record), cache.vocab_size)
        summary.train = TrainResult(steps=trainer.state.step, total_steps=trainer.total_steps,
                                    tokens_seen=trainer.state.tokens_seen,
                                    bytes_seen=trainer.state.bytes_seen, budget=cfg.train.budget)
        if dist.is_main:
            record.write_summary(summary)
            tracker.log_summary(summary.to_dict())  # W&B shows the run as diverged too
        tracker.finish()
        return summary.to_dict()

    # The sliding stride can exceed a short byte-sized block: cap it there (non-overlapping).
    stride = min(int(cfg.train.eval_stride or default_stride(block)), block)
    if cfg.train.eval_stride and cfg.train.eval_stride > block:
        log.warning("train.eval_stride=%d exceeds this arm's %d-token context: the sliding "
                    "evaluation uses stride %d (non-overlapping)", cfg.train.eval_stride, block,
                    block)
    for name, full in (("val", val), ("test", test)):
        split, partial = final_eval_split(cfg, full, cache.eod_id)
        windows = eval_windows(len(split.ids), block)
        n_docs = partial["docs"] if partial else full.stats.n_docs
        log.info("final evaluation of %s: %s documents, %d targets in %d windows of %d tokens%s",
                 name, f"{n_docs} of {full.stats.n_docs}" if partial else f"all {n_docs}",
                 len(split.ids) - 1, len(windows), block,
                 f", then a sliding pass (stride {stride})" if cfg.train.eval_sliding else "")
        with EvalProgress(f"final {name}", -(-len(windows) // dist.world_size),
                          dist.is_main) as progress:
            per_target = target_nll(trainer.raw_model, split.ids, windows, device,
                                    cfg.train.batch_size, trainer.autocast, dist, progress)
        ev = result_from_targets(per_target, split.nbytes, split.charges)
        sliding = None
        if cfg.train.eval_sliding:
            n_sliding = len(sliding_windows(len(split.ids), block, stride))
            with EvalProgress(f"final {name} sliding", -(-n_sliding // dist.world_size),
                              dist.is_main) as progress:
                sliding = sliding_evaluate(trainer.raw_model, split.ids, split.nbytes, block,
                                           stride, device, cfg.train.batch_size,
                                           trainer.autocast, dist, split.charges, progress)
        doc_ids = cache.doc_ids.get(name)
        result = _split_result(cfg, split, ev, per_target, sliding, stride, cache.eod_id,
                               doc_ids[:n_docs] if doc_ids else doc_ids, rows,
                               (cache.eod_id, cache.unk_id))
        result.partial = partial
        setattr(summary, name, result)
        if partial and summary.baselines:
            trim_baselines(summary.baselines, name, n_docs)
    summary.status = COMPLETED
    summary.step0 = step0_check(_step0_loss(record), cache.vocab_size)
    final = trainer.raw_model.wte.weight.detach().float().cpu().numpy()
    summary.diagnostics = _diagnostics(cfg, tokenizer, init, final, cache)
    if dist.is_main:
        atomic_torch_save(record.dir / FINAL_WEIGHTS_FILE,
                          {k: v.detach().cpu() for k, v in trainer.raw_model.state_dict().items()})
    summary.train = TrainResult(
        steps=state.step,
        total_steps=trainer.total_steps,
        tokens_seen=state.tokens_seen,
        bytes_seen=state.bytes_seen,
        wall_s=round(state.elapsed_s, 3),
        train_wall_s=round(state.train_wall_s, 3),
        tokens_per_s=state.tokens_seen / max(state.train_wall_s, 1e-9),
        device=str(device),
        world_size=dist.world_size,
        epochs=state.bytes_seen / train.stats.n_bytes,
        flops=float(fpt) * state.tokens_seen,
        budget=cfg.train.budget,
    )
    summary.regime = run_regime(params, state.tokens_seen, cache, summary.oov)
    if dist.is_main:
        record.write_summary(summary)
        tracker.log_summary(summary.to_dict())
        log.info("%s seed %d: %s -> %s", arm, cfg.seed, final_line(summary),
                 record.summary_path)
    tracker.finish()
    return summary.to_dict()


def final_eval_split(cfg: DictConfig, split: TokenSplit,
                     eod_id: int) -> tuple[TokenSplit, dict[str, int] | None]:
    """The part of a held-out split the final evaluation scores, and `SplitResult.partial`:
    the whole split, or under train.final_eval_tokens its leading whole documents (exact
    vocabularies only: the closed vocabulary's <unk> and layout charges are split totals,
    so it is always evaluated whole)."""
    cap = cfg.train.get("final_eval_tokens")
    end = leading_documents(split.ids, eod_id, int(cap) if cap and is_exact(cfg) else None)
    if end == len(split.ids):
        return split, None
    head = TokenSplit(split.ids[:end], split.nbytes[:end], split.stats,
                      split.charges[:end] if split.charges is not None else None)
    n_docs = int(np.count_nonzero(np.asarray(head.ids) == eod_id)) - 1
    return head, {"docs": n_docs, "of": int(split.stats.n_docs), "max_tokens": int(cap)}


def trim_baselines(baselines: dict[str, Any], split: str, n_docs: int) -> None:
    """A capped final evaluation scores a split's leading `n_docs` documents: the baselines'
    per-document lists are cut to the same documents (and their totals summed again), so the
    report sets them against the arm on the same text."""
    for by_split in ((baselines.get("ngram") or {}).get("orders") or {}).values():
        res = by_split.get(split)
        if isinstance(res, dict) and res.get("doc_nats") is not None:
            kept = list(res["doc_nats"])[:n_docs]
            by_split[split] = {**res, "doc_nats": kept,
                               "nats": float(np.sum(kept, dtype=np.float64))}


def final_line(summary: RunSummary) -> str:
    """The run's closing figures, labelled as the final evaluation (every target of the
    documents it names), not the periodic subset the training log shows."""
    parts = []
    for name in ("val", "test"):
        r = getattr(summary, name)
        if r is None:
            continue
        n = len(r.doc_nats or [])
        docs = (f"first {r.partial['docs']} of {r.partial['of']} documents, capped by "
                "train.final_eval_tokens" if r.partial
                else f"all {n} document{'s' if n != 1 else ''}")
        extra = [] if r.bpb_lossless == r.bpb else [f"lossless {r.bpb_lossless:.4f}"]
        if r.bpb_sliding is not None:
            extra.append(f"sliding {r.bpb_sliding:.4f}")
        shown = f" ({', '.join(extra)})" if extra else ""
        parts.append(f"{name} bpb {r.bpb:.4f}{shown} [{docs}]")
    return "final evaluation: " + "; ".join(parts)


def run_regime(params: dict[str, Any], tokens_seen: int, cache: TokenCache,
               oov: dict[str, Any]) -> dict[str, Any]:
    """summary.regime: the run's coordinates (`embinit.regime`). The held-out OOV rate is the
    validation split's share of words outside the vocabulary: spelled in byte rows
    (word, oov=bytes) or `<unk>` (closed vocabulary); byte-level BPE has none."""
    rates = [oov.get("val_spelled_word_rate"), oov.get("val_token_rate")]
    finite = [float(r) for r in rates if r is not None and np.isfinite(r)]
    return regime_coordinates(params, tokens_seen, cache.train_token_counts(),
                              spelled_rate=sum(finite) if finite else None)


def _step0_loss(record: RunRecord) -> float | None:
    """The val loss logged at step 0, before any update (from metrics.jsonl, so a resumed
    run reports the value its first invocation measured)."""
    for row in record.metrics():
        if row.get("step") == 0 and row.get("val_loss") is not None:
            return float(row["val_loss"])
    return None


def _diagnostics(cfg: DictConfig, tokenizer: Any, init: InitResult, final: np.ndarray,
                 cache: TokenCache) -> dict[str, Any] | None:
    """Similarity, analogy, drift and neighbours of the input embedding at init and at the end."""
    from embinit.run.diagnostics import embedding_diagnostics

    return embedding_diagnostics(
        np.asarray(init.matrix, np.float32), final, tokenizer, cfg.vocab.name,
        cfg.vocab.oov if cfg.vocab.name == "word" else None, init.from_vectors,
        cache.train_token_counts())


def _summary_base(cfg: DictConfig, arm: str, corpus: Corpus, cache: TokenCache,
                  params: dict[str, Any], init: InitResult, init_cost: InitCompute,
                  block: int) -> RunSummary:
    s = {k: cache.splits[k].stats for k in ("train", "val", "test")}
    rates = {k: oov_rates(s[k]) for k in ("val", "test")}
    tpb = s["train"].n_tokens / s["train"].n_bytes
    return RunSummary(
        arm=arm,
        vocab=cfg.vocab.name,
        init=cfg.init.name,
        seed=int(cfg.seed),
        study=cfg.study.name,
        model=cfg.model.name,
        status="running",
        model_config=to_container(cfg.model),
        vocab_size=cache.vocab_size,
        vocab_oov=cfg.vocab.oov if cfg.vocab.name == "word" else None,
        exact=is_exact(cfg),
        params=params,
        oov={
            **{f"{k}_{m}": v for k in ("val", "test") for m, v in rates[k].items()},
            "init_coverage_types": init.coverage_types,
            "init_coverage_tokens": init.coverage_tokens,
            "init_scale": init.scale,
        },
        word_oov_curve=cache.word_oov_curve,
        data={
            **{f"{k}_bytes": s[k].n_bytes for k in s},
            **{f"{k}_tokens": s[k].n_tokens for k in s},
            **{f"{k}_docs": s[k].n_docs for k in s},
            "tokens_per_byte": tpb,
            "split_stats": {k: asdict(v) for k, v in s.items()},
            "token_cache": str(cache.dir),
            # data.non_utf8=replace: undecodable byte sequences replaced by U+FFFD.
            "replaced_chars": corpus.n_replaced_chars,
            "dropped_docs": corpus.n_dropped,
        },
        versions=software_versions(),
        init_compute=init_cost,
        context={"mode": cfg.train.context, "block_tokens": block,
                 "bytes_per_window": block / tpb, "positions": int(cfg.model.block_size)},
    )


def software_versions() -> dict[str, str]:
    import platform

    import gensim
    import numpy
    import tokenizers

    import embinit

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "tokenizers": tokenizers.__version__,
        "gensim": gensim.__version__,
        "embinit": embinit.__version__,
        "platform": platform.platform(),
    }
