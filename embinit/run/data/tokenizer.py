"""Tokenizer stage: fit a byte-level BPE or a word-level vocabulary on the train split only.

Every kind shares one special-token layout, id 0 = end of document and id 1 = unknown, so
every arm's embedding matrix has the same two special rows.

- ``bpe``: byte-level BPE (GPT-2 style). Every string is representable, so it never emits
  `<unk>`.
- ``word`` with ``oov=bytes`` (the exact word-level arm): ids 0/1 are the specials (`<unk>` is
  kept but never produced), ids 2..257 the 256 byte symbols of the HF ByteLevel alphabet
  (sorted), then the most frequent train words (count >= ``min_count``, ties broken by the
  string) up to ``size`` entries in all. A word is a pre-token of HF's
  ``ByteLevel(add_prefix_space=False)`` (the GPT-2 regex: the leading space belongs to the
  word, "Ġthe"; runs of whitespace are words too). The model is a BPE without merges
  (``ignore_merges=True``): a word in the vocabulary is one token, any other word falls back
  to its byte tokens, so every text round-trips exactly and bpb needs no external charge.
- ``word`` with ``oov=unk`` (the closed vocabulary of the seed question): the ``size`` most
  frequent train words seen at least ``min_count`` times; everything else becomes `<unk>`.
  Words come from the Hugging Face `Whitespace` pre-tokenizer (regex ``\\w+|[^\\w\\s]+``)
  by default: it runs in Rust, reports the character offsets that byte accounting needs, and
  serialises into ``tokenizer.json`` with the vocabulary. Its bpb needs the spelling and
  layout charges (`embinit.metrics`).
- ``vocab.pretokenizer=treebank`` (either word kind): words are NLTK Treebank words instead
  (``do n't``, ``U.S.A. 's``), as GloVe's vocabulary has them; the byte-fallback arm keeps a
  single leading space on a word as the GPT-2 regex does. See `embinit.run.data.pretokenize`
  for how a tokenizer.json stores a Python pre-tokenizer.

The trained tokenizer is cached under ``<cache>/tokenizers/<key>/tokenizer.json``, keyed by
the corpus fingerprint, the split settings and the vocabulary settings; ``meta.json``, written
after it, holds its sha256: a tokenizer.json without a matching one is retrained, never used.
A run directory's copy is `run_tokenizer_json`: the same file without the specials listed as
added tokens, so that plain ``tokenizers`` and ``AutoTokenizer`` keep a literal
`<|endoftext|>` as text too.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from embinit.config import OOV_MODES, VOCAB_NAMES, DataConfig, VocabConfig
from embinit.errors import ConfigError
from embinit.run.data import pretokenize
from embinit.run.data.corpus import Corpus
from embinit.run.data.locking import entry_lock
from embinit.run.data.split import iter_split
from embinit.storage import (
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    read_json,
    stable_hash,
)

log = logging.getLogger(__name__)

# Bump when training or the saved format changes, so cached tokenizers are rebuilt.
# 2: vocab=word gained oov=bytes (the byte-fallback word vocabulary), now its default.
# 3: vocab.pretokenizer (whitespace | treebank); its name and nltk's version are in the key.
TOKENIZER_FORMAT = 3
EOD_ID, UNK_ID = 0, 1
N_SPECIALS = 2
N_BYTES = 256
FIRST_WORD_ID = N_SPECIALS + N_BYTES  # word(oov=bytes): the first word after the byte rows

# Shared stateless HF components (Rust objects; safe to reuse).
_BYTE_LEVEL = pre_tokenizers.ByteLevel(add_prefix_space=False)
_BYTE_DECODER = decoders.ByteLevel()


def byte_alphabet() -> list[str]:
    """The 256 ByteLevel byte symbols, sorted: ids 2..257 of a word(oov=bytes) vocabulary."""
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def is_closed_vocab(cfg: VocabConfig) -> bool:
    """True for the closed word vocabulary (word, oov=unk): the one that emits <unk>, drops the
    whitespace between words, and so needs the external spelling and layout charges."""
    return cfg.name == "word" and cfg.oov == "unk"


def is_byte_word_vocab(cfg: VocabConfig) -> bool:
    """True for the exact word vocabulary (word, oov=bytes): words plus a byte fallback."""
    return cfg.name == "word" and cfg.oov == "bytes"


def _configure(tok: Tokenizer) -> Tokenizer:
    # A literal "<|endoftext|>" inside a document is text, not a document boundary. The flag
    # is not saved in tokenizer.json (huggingface/tokenizers#1839), so it is set again on
    # every load; files other loaders read are written by `portable_json` instead.
    tok.encode_special_tokens = True
    return tok


def pretokenizer_name(cfg: VocabConfig) -> str:
    """vocab.pretokenizer, "whitespace" for BPE (byte-level BPE splits with its own regex)."""
    return getattr(cfg, "pretokenizer", "whitespace") if cfg.name == "word" else "whitespace"


def byte_level_word_counts(texts: Iterable[str],
                           pretokenizer: str = "whitespace") -> Counter[str]:
    """Counts of the ByteLevel pre-tokens (leading space kept) of ``texts``: the GPT-2 regex's
    (whitespace) or Treebank's words.

    Streams one text at a time through the pre-tokenizer; never holds the corpus.
    """
    pre = (_BYTE_LEVEL if pretokenizer == "whitespace"
           else pretokenize.runtime(pretokenizer, byte_level=True))
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(map(itemgetter(0), pre.pre_tokenize_str(text)))
    return counts


def ranked_words(counts: Counter[str], min_count: int) -> list[str]:
    """Words seen at least ``min_count`` times, by count, ties broken by the string."""
    words = [w for w, c in counts.items() if c >= min_count]
    # heapq.nsmallest would do for huge counters, but sorting a few million keys is seconds.
    words.sort(key=lambda w: (-counts[w], w))
    return words


def ranked_byte_level_words(texts: Iterable[str], min_count: int) -> list[str]:
    """`ranked_words` of `byte_level_word_counts` (GPT-2 regex words), counted in Rust.

    HF's WordLevelTrainer with the ByteLevel pre-tokenizer counts the same pre-tokens in
    parallel and orders them the same way (count descending, then the string), several
    times faster than a Python tuple per word (equality is tested).
    """
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = _BYTE_LEVEL
    trainer = trainers.WordLevelTrainer(vocab_size=1 << 31, min_frequency=min_count,
                                        special_tokens=[], show_progress=False)
    tok.train_from_iterator(iter(texts), trainer=trainer)
    vocab = tok.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def byte_word_vocab(counts: Counter[str], cfg: VocabConfig) -> dict[str, int]:
    """The word(oov=bytes) vocabulary from train word counts (token string -> id)."""
    return byte_word_vocab_from_ranked(ranked_words(counts, cfg.min_count), cfg)


def byte_word_vocab_from_ranked(ranked: list[str], cfg: VocabConfig) -> dict[str, int]:
    """The word(oov=bytes) vocabulary from train words in rank order (`ranked_words`).

    Specials, then the sorted byte alphabet, then words by count (ties broken by the
    string) while count >= cfg.min_count and the vocabulary has fewer than cfg.size entries.
    Single-symbol words are byte tokens already and take no extra slot.
    """
    vocab = {cfg.eod_token: EOD_ID, cfg.unk_token: UNK_ID}
    for sym in byte_alphabet():
        vocab[sym] = len(vocab)
    if len(vocab) != FIRST_WORD_ID:
        raise ValueError("the special tokens collide with the byte alphabet")
    room = cfg.size - FIRST_WORD_ID
    if room < 0:
        raise ConfigError(f"vocab.size={cfg.size} is too small for vocab=word vocab.oov=bytes: "
                          f"it needs at least {FIRST_WORD_ID} (2 specials + 256 bytes)")
    words = [w for w in ranked if len(w) > 1]
    for w in words[:room]:
        vocab.setdefault(w, len(vocab))
    return vocab


def _byte_word_tokenizer(vocab: dict[str, int], cfg: VocabConfig) -> Tokenizer:
    # A BPE model without merges: ignore_merges makes a whole pre-token found in the vocabulary
    # one token; any other pre-token is split into its characters, i.e. its byte symbols,
    # which are all in the vocabulary (so no unk token is ever needed).
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], ignore_merges=True))
    pretokenize.attach(tok, pretokenizer_name(cfg), byte_level=True)
    tok.decoder = decoders.ByteLevel()
    # Registered as special, as BpeTrainer does, so decode() skips them; with
    # encode_special_tokens they are never matched inside text.
    tok.add_special_tokens([cfg.eod_token, cfg.unk_token])
    return tok


PROGRESS_SECONDS = 30.0


def logged_progress(texts: Iterable[str], every: float = PROGRESS_SECONDS) -> Iterator[str]:
    """Pass ``texts`` through, logging the documents and MB read every ``every`` seconds and
    at the end: tokenizer training's progress line, whatever the output is (no tqdm bar)."""
    t0 = last = time.perf_counter()
    n_docs = n_bytes = 0
    for text in texts:
        n_docs += 1
        n_bytes += len(text)  # characters: a cheap stand-in for bytes in a progress line
        yield text
        now = time.perf_counter()
        if now - last >= every:
            last = now
            log.info("tokenizer training: read %d documents (%.1f M characters) in %.0f s",
                     n_docs, n_bytes / 1e6, now - t0)
    log.info("tokenizer training: read all %d train documents (%.1f M characters) in %.1f s",
             n_docs, n_bytes / 1e6, time.perf_counter() - t0)


def train_tokenizer(train_texts: Iterable[str], cfg: VocabConfig) -> Tokenizer:
    """Fit the tokenizer ``cfg`` describes on ``train_texts`` (streamed, never materialised)."""
    specials = [cfg.eod_token, cfg.unk_token]  # ids 0 and 1, in this order, for every kind
    train_texts = logged_progress(train_texts)
    trainer: Any
    if is_byte_word_vocab(cfg):
        if cfg.lowercase:
            raise ConfigError("vocab.lowercase=true would lose case that vocab.oov=bytes must "
                              "reproduce; use vocab.oov=unk with vocab.lowercase=true")
        name = pretokenizer_name(cfg)
        ranked = (ranked_byte_level_words(train_texts, cfg.min_count) if name == "whitespace"
                  else ranked_words(byte_level_word_counts(train_texts, name), cfg.min_count))
        tok = _configure(_byte_word_tokenizer(byte_word_vocab_from_ranked(ranked, cfg), cfg))
        _check_layout(tok, cfg)
        return tok
    if cfg.name == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=cfg.size, min_frequency=cfg.min_count, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif cfg.name == "word":
        if cfg.oov != "unk":
            raise ConfigError(f"vocab.oov={cfg.oov!r} is unknown; choose one of {OOV_MODES}")
        tok = Tokenizer(models.WordLevel(unk_token=cfg.unk_token))
        if cfg.lowercase:
            tok.normalizer = normalizers.Lowercase()
        pretokenize.attach(tok, pretokenizer_name(cfg), byte_level=False)
        trainer = trainers.WordLevelTrainer(
            vocab_size=cfg.size, min_frequency=cfg.min_count, special_tokens=specials,
            show_progress=False)
    else:
        raise ConfigError(f"vocab={cfg.name!r} is unknown; choose one of {VOCAB_NAMES}")
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
    if is_byte_word_vocab(cfg):
        got = [tok.id_to_token(i) for i in range(N_SPECIALS, FIRST_WORD_ID)]
        if got != byte_alphabet():
            raise ValueError(f"ids {N_SPECIALS}..{FIRST_WORD_ID - 1} are not the sorted byte "
                             "alphabet")


def vector_lookup_keys(tokenizer: Tokenizer, vocab_cfg: VocabConfig,
                       external: bool) -> list[str | None]:
    """The key under which each row looks up a static vector; None = the row takes none.

    - The EOD row never takes a vector: Word2Vec never sees EOD (documents are its
      sentences) and no external table has it.
    - `<unk>` takes one only in the closed vocabulary (word, oov=unk), where it is a real
      token; elsewhere it is never produced.
    - word(oov=bytes): the 256 byte rows take none: they are the seed's "OOV words
      initialised randomly".
    - Any other row: Word2Vec trained here (``external=False``) sees the arm's own token
      strings, so the key is the token string ("Ġthe"). External vectors (GloVe, a word2vec
      file) are keyed by text, so a byte-level token (bpe, word(oov=bytes)) is ByteLevel-
      decoded and stripped of whitespace ("Ġthe" -> "the"); a token that decodes to nothing
      but whitespace, or to a partial UTF-8 character (U+FFFD), takes none. Closed-vocabulary
      tokens are text already and are their own keys.
    """
    closed = is_closed_vocab(vocab_cfg)
    no_vector = {EOD_ID} if closed else {EOD_ID, UNK_ID}
    if is_byte_word_vocab(vocab_cfg):
        no_vector.update(range(N_SPECIALS, FIRST_WORD_ID))
    keys: list[str | None] = []
    for i in range(tokenizer.get_vocab_size()):
        token = tokenizer.id_to_token(i)
        if token is None or i in no_vector:
            keys.append(None)
        elif not external or closed:  # bpe and word(oov=bytes) tokens are ByteLevel strings
            keys.append(token)
        else:
            text = _BYTE_DECODER.decode([token]).strip()
            keys.append(text if text and "\ufffd" not in text else None)
    return keys


def split_fields(data_cfg: DataConfig) -> dict[str, Any]:
    # Exactly the data settings that decide which documents are train documents.
    return {k: getattr(data_cfg, k) for k in (
        "val_fraction", "test_fraction", "split_seed", "min_doc_chars", "max_docs", "non_utf8")}


def _vocab_fields(vocab_cfg: VocabConfig) -> dict[str, Any]:
    fields = {k: getattr(vocab_cfg, k) for k in (
        "name", "size", "min_count", "lowercase", "unk_token", "eod_token")}
    # oov selects the word tokenizer; BPE is byte-level whatever it says, so its key ignores it.
    fields["oov"] = vocab_cfg.oov if vocab_cfg.name == "word" else None
    # Absent from the key when whitespace, so today's cached tokenizers keep their keys' shape;
    # Treebank's rules live in nltk, so its version keys the result too.
    name = pretokenizer_name(vocab_cfg)
    if name != "whitespace":
        fields["pretokenizer"] = name
        fields["nltk"] = pretokenize.nltk_version()
    return fields


def tokenizer_key(corpus_fingerprint: str, data_cfg: DataConfig, vocab_cfg: VocabConfig) -> str:
    """Content key of a trained tokenizer: same corpus, split and vocab settings => same key."""
    return stable_hash({
        "format": TOKENIZER_FORMAT,
        "tokenizers": tokenizers.__version__,  # training output may change between releases
        "corpus": corpus_fingerprint,
        "data": split_fields(data_cfg),
        "vocab": _vocab_fields(vocab_cfg),
    })


def tokenizer_json(tok: Tokenizer, vocab_cfg: VocabConfig | None = None) -> str:
    """The tokenizer.json text of a trained or loaded tokenizer (a Treebank one stores its
    stand-in; its own ``to_str()`` does the same)."""
    if vocab_cfg is None:
        return tok.to_str()
    return pretokenize.to_json(tok, pretokenizer_name(vocab_cfg),
                               byte_level=vocab_cfg.name == "word" and vocab_cfg.oov == "bytes")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a saved tokenizer.json with the same runtime settings as a freshly trained one,
    Treebank pre-tokenizer included (`embinit.run.data.pretokenize`), and the specials of a
    portable copy (`portable_json`) registered again."""
    text = Path(path).read_text(encoding="utf-8")
    tok = Tokenizer.from_str(text)
    name, byte_level = pretokenize.saved_pretokenizer(text)
    if name != "whitespace":
        pretokenize.attach(tok, name, byte_level)
    if not tok.get_added_tokens_decoder():  # a portable copy (`portable_json`)
        tok.add_special_tokens([t for i in (EOD_ID, UNK_ID)
                                if (t := tok.id_to_token(i)) is not None])
    return _configure(tok)


def portable_json(tokenizer_json: str) -> str:
    """``tokenizer_json`` with the special tokens kept in the vocabulary but no longer listed
    as added tokens: the file a run directory and the HF export carry, which round-trips text
    in any loader (``decode(encode(text)) == text``, `<|endoftext|>` and `<unk>` included).

    `tokenizers` matches an added token's string anywhere in the input unless the tokenizer
    has ``encode_special_tokens`` set, and tokenizer.json cannot store that flag
    (huggingface/tokenizers#1839): a plain ``Tokenizer.from_file`` or ``AutoTokenizer`` would
    read a literal "<|endoftext|>" in a document as the EOD id, and ``decode`` would drop it.
    Unlisted, a special is a vocabulary entry that text never produces: every pre-tokenizer
    here cuts "<|endoftext|>" into "<|", "endoftext", "|>" before the model sees it. So a
    plain loader gives embinit's ids (a Treebank arm's: its whitespace stand-in's), id 0
    decodes to its own string instead of being skipped, and nothing else in the file changes.
    The token cache's copy keeps its added tokens (its sha256 keys the token arrays);
    `load_tokenizer` registers ids 0 and 1 as specials again on a portable copy.
    """
    data = json.loads(tokenizer_json)
    vocab = (data.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):  # BPE, WordLevel, WordPiece: token -> id
        data["added_tokens"] = [t for t in data.get("added_tokens") or []
                                if vocab.get(t["content"]) != t["id"]]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def run_tokenizer_json(tok: Tokenizer) -> str:
    """The tokenizer.json a run directory carries: `portable_json` of ``tok``'s own text (a
    Treebank tokenizer writes its stand-in, `embinit.run.data.pretokenize`)."""
    return portable_json(tok.to_str())


def build_or_load_tokenizer(
    corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig, cache_root: Path
) -> tuple[Tokenizer, Path, bool]:
    """(tokenizer, path of its tokenizer.json, reused) — trained on the train split if not cached."""
    key = tokenizer_key(corpus.fingerprint(), data_cfg, vocab_cfg)
    path = Path(cache_root) / "tokenizers" / key / "tokenizer.json"
    with entry_lock(path.parent, "tokenizer"):  # concurrent runs: one trains, the rest reuse
        return _build_or_load_tokenizer(corpus, data_cfg, vocab_cfg, path)


def _cached_problem(path: Path, meta_path: Path) -> str | None:
    """Why the cached tokenizer.json cannot be trusted, or None: its meta.json (written after
    it) must exist and hold its sha256, so an edited but still valid file is never used."""
    if not meta_path.exists():
        return ("has no meta.json (an interrupted write, or a cache from before tokenizers "
                "carried a checksum)")
    try:
        meta = read_json(meta_path)
        if meta.get("format") != TOKENIZER_FORMAT or meta.get("key") != path.parent.name:
            return "has a meta.json of another format or key"
        if meta.get("sha256") != file_sha256(path):
            return "fails its sha256 check (edited or damaged since it was written)"
    except (OSError, ValueError, AttributeError) as e:
        return f"has an unreadable meta.json ({e})"
    return None


def _build_or_load_tokenizer(corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig,
                             path: Path) -> tuple[Tokenizer, Path, bool]:
    meta_path = path.parent / "meta.json"
    if path.exists():
        problem = _cached_problem(path, meta_path)
        if problem is None:
            try:
                tok = load_tokenizer(path)
                _check_layout(tok, vocab_cfg)
            except Exception as e:  # a torn or foreign file raises anything from JSON to Rust
                problem = f"is unusable ({e})"
            else:
                log.info("reusing cached tokenizer %s", path)
                return tok, path, True
        log.warning("cached tokenizer %s %s; retraining", path, problem)
        meta_path.unlink(missing_ok=True)  # no stale marker while tokenizer.json is rewritten
    kind = (vocab_cfg.name if vocab_cfg.name != "word" else
            f"word (oov={vocab_cfg.oov}, pretokenizer={pretokenizer_name(vocab_cfg)})")
    log.info("training tokenizer %s (vocab.size=%d, vocab.min_count=%d) on the train split of %s",
             kind, vocab_cfg.size, vocab_cfg.min_count, corpus.description)
    tok = train_tokenizer((d.text for d in iter_split(corpus, "train", data_cfg)), vocab_cfg)
    atomic_write_text(path, tokenizer_json(tok, vocab_cfg))
    # Last: its presence, with tokenizer.json's sha256, marks the entry complete and unedited.
    atomic_write_json(meta_path, {"format": TOKENIZER_FORMAT, "key": path.parent.name,
                                  "sha256": file_sha256(path),
                                  "vocab_size": tok.get_vocab_size()})
    log.info("saved tokenizer %s (%d tokens)", path, tok.get_vocab_size())
    return tok, path, False
