"""Tokenizer stage: fit a byte-level BPE or a word-level vocabulary on the train split only.

Both kinds share one special-token layout, id 0 = end of document and id 1 = unknown, so
every arm's embedding matrix has the same two special rows.

- ``bpe``: byte-level BPE (GPT-2 style). Every string is representable, so it never emits
  `<unk>`.
- ``word``: word-level vocabulary of the ``size`` most frequent train words seen at least
  ``min_count`` times; everything else becomes `<unk>`. Words come from the Hugging Face
  `Whitespace` pre-tokenizer (regex ``\\w+|[^\\w\\s]+``), chosen over NLTK's Treebank rules
  because it runs in Rust, reports the character offsets that byte accounting needs, and
  serialises into ``tokenizer.json`` with the vocabulary, so loading a tokenizer restores the
  exact word splitting.

The trained tokenizer is cached under ``<cache>/tokenizers/<key>/tokenizer.json``, keyed by
the corpus fingerprint, the split settings and the vocabulary settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from embinit.config import DataConfig, VocabConfig
from embinit.errors import ConfigError
from embinit.run.data.corpus import Corpus
from embinit.run.data.split import iter_split
from embinit.storage import atomic_write_text, stable_hash

log = logging.getLogger(__name__)

# Bump when training or the saved format changes, so cached tokenizers are rebuilt.
TOKENIZER_FORMAT = 1
EOD_ID, UNK_ID = 0, 1


def _configure(tok: Tokenizer) -> Tokenizer:
    # A literal "<|endoftext|>" inside a document is text, not a document boundary. The flag
    # is not saved in tokenizer.json, so it is set again on every load.
    tok.encode_special_tokens = True
    return tok


def train_tokenizer(train_texts: Iterable[str], cfg: VocabConfig) -> Tokenizer:
    """Fit the tokenizer ``cfg`` describes on ``train_texts`` (streamed, never materialised)."""
    specials = [cfg.eod_token, cfg.unk_token]  # ids 0 and 1, in this order, for both kinds
    trainer: Any
    if cfg.name == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=cfg.size, min_frequency=cfg.min_count, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif cfg.name == "word":
        tok = Tokenizer(models.WordLevel(unk_token=cfg.unk_token))
        if cfg.lowercase:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(
            vocab_size=cfg.size, min_frequency=cfg.min_count, special_tokens=specials,
            show_progress=False)
    else:
        raise ConfigError(f"vocab={cfg.name!r} is unknown; choose bpe or word")
    _configure(tok)
    tok.train_from_iterator(iter(train_texts), trainer=trainer)
    _check_layout(tok, cfg)
    return tok


def _check_layout(tok: Tokenizer, cfg: VocabConfig) -> None:
    if tok.token_to_id(cfg.eod_token) != EOD_ID or tok.token_to_id(cfg.unk_token) != UNK_ID:
        raise ValueError(f"tokenizer special tokens are not at ids {EOD_ID} ({cfg.eod_token}) "
                         f"and {UNK_ID} ({cfg.unk_token})")
    if tok.get_vocab_size() > cfg.size:
        raise ValueError(f"tokenizer has {tok.get_vocab_size()} tokens, vocab.size={cfg.size}")


def _split_fields(data_cfg: DataConfig) -> dict[str, Any]:
    # Exactly the data settings that decide which documents are train documents.
    return {k: getattr(data_cfg, k) for k in (
        "val_fraction", "test_fraction", "split_seed", "min_doc_chars", "max_docs", "non_utf8")}


def _vocab_fields(vocab_cfg: VocabConfig) -> dict[str, Any]:
    return {k: getattr(vocab_cfg, k) for k in (
        "name", "size", "min_count", "lowercase", "unk_token", "eod_token")}


def tokenizer_key(corpus_fingerprint: str, data_cfg: DataConfig, vocab_cfg: VocabConfig) -> str:
    """Content key of a trained tokenizer: same corpus, split and vocab settings => same key."""
    return stable_hash({
        "format": TOKENIZER_FORMAT,
        "tokenizers": tokenizers.__version__,  # training output may change between releases
        "corpus": corpus_fingerprint,
        "data": _split_fields(data_cfg),
        "vocab": _vocab_fields(vocab_cfg),
    })


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a saved tokenizer.json with the same runtime settings as a freshly trained one."""
    return _configure(Tokenizer.from_file(str(path)))


def build_or_load_tokenizer(
    corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig, cache_root: Path
) -> tuple[Tokenizer, Path, bool]:
    """(tokenizer, path of its tokenizer.json, reused) — trained on the train split if not cached."""
    key = tokenizer_key(corpus.fingerprint(), data_cfg, vocab_cfg)
    path = Path(cache_root) / "tokenizers" / key / "tokenizer.json"
    if path.exists():
        try:
            tok = load_tokenizer(path)
            _check_layout(tok, vocab_cfg)
        except Exception as e:  # a torn or foreign file raises anything from JSON to Rust errors
            log.warning("cached tokenizer %s is unusable (%s); retraining", path, e)
        else:
            log.info("reusing cached tokenizer %s", path)
            return tok, path, True
    log.info("training tokenizer %s (vocab.size=%d, vocab.min_count=%d) on the train split of %s",
             vocab_cfg.name, vocab_cfg.size, vocab_cfg.min_count, corpus.description)
    tok = train_tokenizer((d.text for d in iter_split(corpus, "train", data_cfg)), vocab_cfg)
    atomic_write_text(path, tok.to_str())
    log.info("saved tokenizer %s (%d tokens)", path, tok.get_vocab_size())
    return tok, path, False






