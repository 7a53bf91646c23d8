"""One run, start to finish: the data flow of an arm, stage by stage.

corpus -> split -> tokenizer -> token cache -> init strategy -> model -> trainer
-> run record. Each stage lives in its own module; this file only wires them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from embinit.config import to_container, validate
from embinit.errors import ConfigError
from embinit.metrics import lossless_bpb, oov_adjusted_bpb
from embinit.params import param_breakdown
from embinit.record import RunRecord, RunSummary, config_diff
from embinit.run.data.accounting import oov_rates
from embinit.run.data.cache import TokenCache, build_or_load_token_cache
from embinit.run.data.corpus import Corpus, open_corpus
from embinit.run.data.tokenizer import build_or_load_tokenizer
from embinit.run.init.initialization import InitResult, init_matrix
from embinit.run.model import GPT
from embinit.run.tracking import make_tracker
from embinit.run.train import distributed
from embinit.run.train.checkpoint import load_checkpoint_file, save_checkpoint_file
from embinit.run.train.evaluate import EvalResult, eval_windows, evaluate
from embinit.run.train.loop import Diverged, Trainer, resolve_device

log = logging.getLogger("embinit.pipeline")


def arm_name(cfg: DictConfig) -> str:
    return f"{cfg.vocab.name}+{cfg.init.name}"


def resolve_paths(cfg: DictConfig) -> None:
    """Make every configured path absolute (relative to the launch directory)."""
    for key in ("root", "cache", "experiments", "results"):
        cfg.paths[key] = str(Path(cfg.paths[key]).expanduser().resolve())


def prepare_data(cfg: DictConfig) -> tuple[Corpus, Any, TokenCache]:
    """Corpus, split, tokenizer and token arrays: cached by content, shared by arms."""
    cache_root = Path(cfg.paths.cache)
    corpus = open_corpus(cfg.data, cache_root)
    tokenizer, tok_path, _ = build_or_load_tokenizer(corpus, cfg.data, cfg.vocab, cache_root)
    cache = build_or_load_token_cache(corpus, cfg.data, cfg.vocab, tokenizer, tok_path, cache_root)
    return corpus, tokenizer, cache


def make_init(cfg: DictConfig, tokenizer: Any, cache: TokenCache) -> InitResult:
    """The arm's initial token-embedding matrix."""
    vocab = [tokenizer.id_to_token(i) for i in range(cache.vocab_size)]
    kv = None
    if cfg.init.name != "scratch":
        from embinit.run.init.vectors import TokenSentences, build_or_load_vectors

        dim = cfg.init.dim or cfg.model.d_model
        train_ids = cache.splits["train"].ids

        def sentences() -> TokenSentences:
            return TokenSentences(train_ids, vocab, cache.eod_id)

        kv, _, _ = build_or_load_vectors(cfg.init, dim, sentences, cache.key, Path(cfg.paths.cache))
    return init_matrix(vocab, cfg.model.d_model, cfg.init, cfg.seed, kv=kv,
                       token_counts=cache.train_token_counts())


def _split_result(ev: EvalResult, stats: Any) -> dict[str, Any]:
    return {
        "loss": ev.loss,
        "bpb": ev.bpb,
        "bpb_oov_adjusted": oov_adjusted_bpb(ev.nats, stats.unk_spelling_nats, ev.bytes),
        "bpb_lossless": lossless_bpb(ev.nats, stats.unk_spelling_nats, stats.layout_nats,
                                     ev.bytes),
        "tokens": ev.targets,
        "bytes": ev.bytes,
        "nats": ev.nats,
        "unk_spelling_nats": stats.unk_spelling_nats,
        "layout_nats": stats.layout_nats,
    }


def _configure_torch(cfg: DictConfig, device: torch.device) -> None:
    if cfg.train.num_threads:
        torch.set_num_threads(int(cfg.train.num_threads))
    if cfg.train.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(cfg.seed)


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
        return _run(cfg, config, record, device, dist)
    finally:
        distributed.teardown(dist)


def _run(cfg: DictConfig, config: dict[str, Any], record: RunRecord, device: torch.device,
         dist: distributed.Dist) -> dict[str, Any]:
    arm = arm_name(cfg)
    if dist.is_main:
        record.ensure_writable()
        record.check_identity(config)
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
        init = make_init(cfg, tokenizer, cache)
    dist.barrier()
    if not dist.is_main:
        init = make_init(cfg, tokenizer, cache)

    model = GPT(cfg.model, cache.vocab_size)
    model.set_token_embedding(init.matrix)
    params = param_breakdown(cfg.model, cache.vocab_size)
    train, val, test = (cache.splits[s] for s in ("train", "val", "test"))
    trainer = Trainer(cfg.train, model, train.ids, train.nbytes, val.ids, val.nbytes,
                      seed=cfg.seed, dist=dist, device=device, val_extra=val.extra)
    log.info("arm %s seed %d: vocab %d, %s params (%s embedding), %d steps of %d tokens on %s",
             arm, cfg.seed, cache.vocab_size, f"{params['total']:,}", f"{params['embedding']:,}",
             trainer.total_steps, trainer.tokens_per_step, device)

    # What a checkpoint must match to be resumed: the shapes, and the batch geometry that
    # fixes the schedule and the data order (it changes with the number of ranks).
    signature = {"vocab_size": cache.vocab_size, "model": config["model"],
                 "world_size": dist.world_size, "tokens_per_step": trainer.tokens_per_step}
    if record.checkpoint_path.exists():
        ckpt = load_checkpoint_file(record.checkpoint_path)
        saved = ckpt.get("signature")
        if saved != signature:
            diff = config_diff(saved, signature) if isinstance(saved, dict) else [repr(saved)]
            raise ConfigError(
                f"checkpoint {record.checkpoint_path} was written by an incompatible model "
                f"shape ({'; '.join(diff)}); restore the original model and vocab settings to "
                f"resume it, or delete {record.dir} to start fresh"
            )
        trainer.load_state_dict(ckpt)
        log.info("resuming from step %d (%s)", trainer.state.step, record.checkpoint_path)
        if dist.is_main:
            record.truncate_metrics(trainer.state.step)
    elif dist.is_main:
        record.metrics_path.unlink(missing_ok=True)  # a run without checkpoint starts over
    if dist.is_main:
        record.write_config(config)

    tracker = make_tracker(cfg.logger, record.dir, f"{arm}/seed{cfg.seed}", cfg.study.name,
                           config, dist.is_main)

    def on_metrics(row: dict[str, Any]) -> None:
        record.append_metrics(row)
        tracker.log_metrics(row)

    def checkpoint(payload: dict[str, Any]) -> None:
        save_checkpoint_file(record.checkpoint_path, payload, {"signature": signature})

    base = _summary_base(cfg, arm, corpus, cache, params, init)
    try:
        state = trainer.fit(on_metrics, checkpoint)
    except Diverged as e:
        log.error("%s seed %d diverged: %s", arm, cfg.seed, e)
        # train.steps counts the steps completed before the one whose loss was not finite.
        summary = {**base, "status": "diverged", "diverged_at_step": e.step,
                   "train": {"steps": trainer.state.step, "total_steps": trainer.total_steps,
                             "tokens_seen": trainer.state.tokens_seen,
                             "bytes_seen": trainer.state.bytes_seen}}
        if dist.is_main:
            record.write_summary(RunSummary.from_dict(summary))
        tracker.finish()
        return summary

    results = {}
    for name, split in (("val", val), ("test", test)):
        ev = evaluate(trainer.raw_model, split.ids, split.nbytes,
                      eval_windows(len(split.ids), trainer.block), device, cfg.train.batch_size,
                      trainer.autocast, dist, split.extra)
        results[name] = _split_result(ev, split.stats)
    summary = {
        **base,
        "status": "completed",
        "diverged_at_step": None,
        **results,
        "train": {
            "steps": state.step,
            "total_steps": trainer.total_steps,
            "tokens_seen": state.tokens_seen,
            "bytes_seen": state.bytes_seen,
            "wall_s": round(state.elapsed_s, 3),
            "train_wall_s": round(state.train_wall_s, 3),
            "tokens_per_s": state.tokens_seen / max(state.train_wall_s, 1e-9),
            "device": str(device),
            "world_size": dist.world_size,
        },
    }
    if dist.is_main:
        record.write_summary(RunSummary.from_dict(summary))
        tracker.log_summary(summary)
        log.info("%s seed %d: val bpb %.4f (oov-adjusted %.4f, lossless %.4f), test bpb %.4f "
                 "-> %s", arm, cfg.seed, results["val"]["bpb"],
                 results["val"]["bpb_oov_adjusted"], results["val"]["bpb_lossless"],
                 results["test"]["bpb"], record.summary_path)
    tracker.finish()
    return summary


def _summary_base(cfg: DictConfig, arm: str, corpus: Corpus, cache: TokenCache,
                  params: dict[str, int], init: InitResult) -> dict[str, Any]:
    s = {k: cache.splits[k].stats for k in ("train", "val", "test")}
    rates = {k: oov_rates(s[k]) for k in ("val", "test")}
    return {
        "arm": arm,
        "vocab": cfg.vocab.name,
        "init": cfg.init.name,
        "seed": int(cfg.seed),
        "study": cfg.study.name,
        "model": cfg.model.name,
        "model_config": to_container(cfg.model),
        "vocab_size": cache.vocab_size,
        "params": params,
        "oov": {
            **{f"{k}_{m}": rates[k][m] for k in ("val", "test")
               for m in ("token_rate", "type_rate", "unk_byte_share")},
            "init_coverage_types": init.coverage_types,
            "init_coverage_tokens": init.coverage_tokens,
            "init_scale": init.scale,
        },
        "word_oov_curve": cache.word_oov_curve,
        "data": {
            **{f"{k}_bytes": s[k].n_bytes for k in s},
            **{f"{k}_tokens": s[k].n_tokens for k in s},
            **{f"{k}_docs": s[k].n_docs for k in s},
            "tokens_per_byte": s["train"].n_tokens / s["train"].n_bytes,
            "split_stats": {k: asdict(v) for k, v in s.items()},
            "token_cache": str(cache.dir),
            # data.non_utf8=replace: undecodable byte sequences replaced by U+FFFD.
            "replaced_chars": corpus.n_replaced_chars,
            "dropped_docs": corpus.n_dropped,
        },
        "versions": software_versions(),
    }



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
