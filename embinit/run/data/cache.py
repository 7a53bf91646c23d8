"""Token cache: each split as flat token ids plus the UTF-8 bytes each token accounts for.

Per split, the stream is ``[EOD] doc1 [EOD] doc2 [EOD] ...``: it starts with EOD so that every
real token and every document end is a prediction target. Two raw arrays are written side
by side, read back with `np.memmap` (as in nanoGPT's ``train.bin``):

- ``{split}.ids.bin``: token ids (uint16 when the vocabulary fits, else uint32);
- ``{split}.nbytes.bin``: uint32 UTF-8 bytes attributed to each token (0 for EOD), summing
  exactly to the split's text bytes, so bits per byte is comparable across tokenizers;
- ``{split}.extra.bin`` (closed word vocabulary, ``vocab=word vocab.oov=unk``, val/test
  only): float32 nats each target is charged on top of the model's loss for lossless bpb:
  the gap (whitespace) before it under the LayoutModel, plus the spelling of its word
  under the unigram SpellingModel if it is ``<unk>``; the EOD after a document carries the
  document's trailing gap. Sums to ``layout_nats + unk_spelling_nats``. BPE and
  ``vocab=word vocab.oov=bytes`` keep every byte in their tokens: no extra.bin, bpb is exact.

An entry lives in ``<cache>/tokens/<key>/``; ``meta.json`` is written last and records each
file's dtype, length and sha256 plus per-split statistics. An entry is complete iff its
meta.json exists and every check passes; anything else is rebuilt, never used. One run
builds an entry while concurrent runs wait on its lock (`embinit.run.data.locking`).

Speed (the goal: the bare encoder's rate, measured by `embinit.tools.stream_check`):
byte-level vocabularies (bpe, word(oov=bytes)) never touch offsets or token surfaces: bytes
per token come from a per-id lookup (`byte_level_lengths`), types and spelling counts from
counts per id. They encode with ``encode_batch_fast`` (ids only, ~26% less encoder time),
except word(oov=bytes)'s val and test, whose word ids give the spelled-word rates the
reports read; its train split's spelled words are therefore not counted (None in
SplitStats), see `counts_spelled_words`. The closed vocabulary reads offsets: its gaps
are counted and priced once per distinct event (`metrics.layout_event_index`), and without a
normalizer only the <unk> surfaces are cut from the text (`word_spelling_counts`). Exact
vocabularies write all three splits in one pass over the corpus; the closed vocabulary reads
it once per split, since val/test charges use models fitted on train. The word-level OOV
curve is a property of the corpus, not of the arm: its own stage (`embinit.run.data.oov`)
counts it once per corpus, before the first arm's token cache, and every arm shares it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from embinit.config import DataConfig, VocabConfig
from embinit.metrics import (
    N_SYMBOLS,
    LayoutModel,
    NgramSpeller,
    SpellingModel,
    layout_event_index,
)
from embinit.run.data.accounting import (
    SplitAccumulator,
    SplitStats,
    byte_level_lengths,
    spelled_words,
    token_byte_lengths,
)
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.locking import entry_lock
from embinit.run.data.oov import build_or_load_oov_curve
from embinit.run.data.split import SPLITS, SplitAssigner, empty_split_error, iter_split
from embinit.run.data.tokenizer import is_byte_word_vocab, is_closed_vocab, tokenizer_key
from embinit.storage import atomic_open, atomic_write_json, file_sha256, read_json, stable_hash

log = logging.getLogger(__name__)

# Bump when the stream layout, the byte attribution or meta.json changes.
# 5: n-gram <unk> speller and the spelled-out word counts of word(oov=bytes) in SplitStats.
# 6: held-out document ids in meta.json.
# 7: byte-level vocabularies' bookkeeping from ids (n_types = distinct ids, spelling counts of
#    the tokens' own bytes); the arrays themselves are unchanged.
# 8: word(oov=bytes) train encoded ids-only: its spelled-word counts are None; arrays unchanged.
CACHE_FORMAT = 8
NBYTES_DTYPE = np.dtype(np.uint32)
EXTRA_DTYPE = np.dtype(np.float32)
KINDS = ("ids", "nbytes", "extra")


def ids_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


@dataclass
class TokenSplit:
    ids: np.ndarray  # read-only np.memmap
    nbytes: np.ndarray  # read-only np.memmap
    stats: SplitStats
    charges: np.ndarray | None = None  # closed word vocab, val/test: lossless charge per token


@dataclass
class TokenCache:
    key: str
    dir: Path
    vocab_size: int
    eod_id: int
    unk_id: int
    reused: bool
    splits: dict[str, TokenSplit]
    word_oov_curve: list[dict[str, float]]
    spelling_counts: np.ndarray = field(repr=False)  # 257 byte/end-of-word counts of train tokens
    doc_ids: dict[str, list[str]] = field(default_factory=dict)  # val/test, in stream order

    def train_token_counts(self) -> np.ndarray:
        """How often each token id occurs in the train stream (length vocab_size)."""
        ids = self.splits["train"].ids
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        chunk = 1 << 24  # bincount widens to int64: chunk it so memory stays flat
        for start in range(0, len(ids), chunk):
            counts += np.bincount(ids[start:start + chunk], minlength=self.vocab_size)
        return counts

    def spelling_model(self) -> SpellingModel:
        """The byte unigram model that prices <unk> (fitted on train token surfaces)."""
        return SpellingModel.from_counts(self.spelling_counts)


# --- building -------------------------------------------------------------------------------


class _ArrayWriter:
    """Appends arrays to an open file, counting elements and hashing the bytes as they pass."""

    def __init__(self, fh: IO[bytes], dtype: np.dtype) -> None:
        self.fh, self.dtype, self.length = fh, dtype, 0
        self.sha = hashlib.sha256()

    def write(self, array: np.ndarray) -> None:
        blob = np.ascontiguousarray(array, dtype=self.dtype).tobytes()
        self.fh.write(blob)
        self.sha.update(blob)
        self.length += array.size

    def meta(self) -> dict[str, Any]:
        return {"dtype": self.dtype.name, "length": self.length, "sha256": self.sha.hexdigest()}


def _batched(docs: Iterable[Document], n: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


Consumer = Generator[None, "list[Document] | None", "tuple[SplitAccumulator, dict[str, Any]]"]


def _encode_split(
    split: str, tokenizer: Tokenizer, *, eod_id: int,
    unk_id: int, dtype: np.dtype, out_dir: Path,
    spelling_counts: np.ndarray | None, track_layout: bool,
    charges: tuple[SpellingModel, LayoutModel] | None = None, track_spelled: bool = False,
    token_bytes: np.ndarray | None = None, method: str = "encode_batch",
    surfaces_are_tokens: bool = False,
) -> Consumer:
    """Stream one split's documents into ``{split}.ids.bin`` / ``{split}.nbytes.bin``.

    A consumer: prime it with ``next()``, ``send`` it batches of the split's documents, then
    `_finish` it; so one pass over the corpus can feed all three splits (`_feed_one_pass`).

    Given ``spelling_counts`` (train) it accumulates them, so the corpus is read once per
    split. With ``charges`` (word-level val/test, models fitted on train) it also writes
    ``{split}.extra.bin``. With ``track_spelled`` (word(oov=bytes) val/test,
    `counts_spelled_words`) it counts the words spelled out in byte tokens. With
    ``token_bytes`` (a byte-level vocabulary: bytes per token id) the bookkeeping is
    vectorised per batch and never looks at offsets or surfaces (`byte_level_lengths`);
    train's spelling counts are then added by the caller from the id counts, as they are
    with ``surfaces_are_tokens`` (closed vocabulary, nothing rewrites the text: only <unk>
    surfaces are cut from the text, see `add_offsets_batch`). ``method`` is the Tokenizer
    call that encodes (`encode_method`).
    """
    vocab_size = tokenizer.get_vocab_size()
    acc = SplitAccumulator(track_layout)
    eod = np.array([eod_id], dtype=dtype)
    zero = np.zeros(1, dtype=NBYTES_DTYPE)
    t0 = time.perf_counter()
    gap_cost = spell_cost = None
    if charges is not None:
        # Few distinct gaps and unknown words: price each once.
        spelling, layout = charges
        gap_cost = functools.lru_cache(maxsize=None)(layout.cost)
        spell_cost = functools.lru_cache(maxsize=1 << 20)(spelling.cost)
    with contextlib.ExitStack() as stack:
        f_ids = stack.enter_context(atomic_open(out_dir / f"{split}.ids.bin"))
        f_nb = stack.enter_context(atomic_open(out_dir / f"{split}.nbytes.bin"))
        w_extra = None
        if charges is not None:
            w_extra = _ArrayWriter(
                stack.enter_context(atomic_open(out_dir / f"{split}.extra.bin")), EXTRA_DTYPE)
            w_extra.write(np.zeros(1))
        bar = stack.enter_context(tqdm(desc=f"tokenize {split}", unit="B", unit_scale=True,
                                       disable=None, leave=False))
        w_ids, w_nb = _ArrayWriter(f_ids, dtype), _ArrayWriter(f_nb, NBYTES_DTYPE)
        w_ids.write(eod)
        w_nb.write(zero)
        def add_offsets_batch(batch: list[Document], texts: list[str],
                              encodings: list[Any]) -> int:
            """The closed vocabulary's bookkeeping: offsets, surfaces, charges. With
            ``surfaces_are_tokens`` only the <unk> surfaces are cut from the text: every
            other surface is its token's string, so the types and train's spelling counts
            follow from counts per id (`count_known_ids`, `word_spelling_counts`)."""
            id_parts: list[np.ndarray] = []
            nb_parts: list[np.ndarray] = []
            extra_parts: list[np.ndarray] = []
            batch_bytes = 0
            for doc, text, enc in zip(batch, texts, encodings, strict=True):
                if not enc.ids:
                    raise ValueError(f"document {doc.doc_id!r} tokenized to nothing")
                ids = np.asarray(enc.ids, dtype=dtype)
                offsets = enc.offsets
                offset_array = np.fromiter(  # twice as fast as np.array on the tuples
                    itertools.chain.from_iterable(offsets), dtype=np.int64,
                    count=2 * len(offsets)).reshape(-1, 2)
                nbytes = token_byte_lengths(text, offset_array)
                unk_at = np.flatnonzero(ids == unk_id)
                surfaces = None
                if surfaces_are_tokens:
                    unk_surfaces = [text[a:b] for a, b in offset_array[unk_at].tolist()]
                else:
                    surfaces = [text[a:b] for a, b in offsets]
                    unk_surfaces = [surfaces[i] for i in unk_at.tolist()]
                    if spelling_counts is not None:
                        # Byte counts of all surfaces at once equal the per-word sum
                        # SpellingModel.fit computes; plus one end-of-word symbol per token.
                        blob = np.frombuffer("".join(surfaces).encode("utf-8"), dtype=np.uint8)
                        spelling_counts[:256] += np.bincount(blob, minlength=256)
                        spelling_counts[256] += len(surfaces)
                doc_bytes = int(nbytes.sum())
                acc.add_word_level(doc_bytes, len(ids), surfaces, unk_surfaces)
                acc.doc_ids.append(doc.doc_id)
                if track_layout:
                    # The gaps as distinct (context, gap) events and an index per gap:
                    # counted and priced once per distinct event (`layout_event_index`).
                    events, event_index = layout_event_index(text, offset_array)
                    acc.add_layout(events, np.bincount(event_index, minlength=len(events)))
                    if gap_cost is not None and spell_cost is not None:
                        # Token i pays for the gap before it; the EOD after the document
                        # pays for the trailing gap; an <unk> also pays for spelling its word.
                        costs = np.array([gap_cost(c, g) for c, g in events], dtype=np.float64)
                        extra = costs[event_index]
                        for i, word in zip(unk_at.tolist(), unk_surfaces, strict=True):
                            extra[i] += spell_cost(word)
                        extra_parts.append(extra)
                id_parts += [ids, eod]
                nb_parts += [nbytes, zero]
                batch_bytes += doc_bytes
            all_ids = np.concatenate(id_parts)
            if surfaces_are_tokens:
                acc.count_known_ids(all_ids, vocab_size, eod_id, len(batch), unk_id)
            w_ids.write(all_ids)
            w_nb.write(np.concatenate(nb_parts))
            if w_extra is not None:
                w_extra.write(np.concatenate(extra_parts))
            return batch_bytes

        encode = functools.partial(getattr(tokenizer, method, tokenizer.encode_batch),
                                   add_special_tokens=False)
        # One batch ahead: a thread encodes the next batch (Rust, GIL released) while this
        # one does the previous batch's bookkeeping, so the Python work overlaps encoding.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        ahead: tuple[list[Document], list[str], Future[list[Any]]] | None = None
        while True:
            batch = yield
            nxt = None
            if batch is not None:
                texts = [d.text for d in batch]
                nxt = (batch, texts, pool.submit(encode, texts))
            if ahead is not None:
                prev, prev_texts, encoded = ahead
                if token_bytes is not None:
                    n_bytes = _add_byte_level_batch(
                        acc, prev, prev_texts, encoded.result(), token_bytes, dtype,
                        track_spelled, w_ids, w_nb, eod, zero)
                else:
                    n_bytes = add_offsets_batch(prev, prev_texts, encoded.result())
                bar.update(n_bytes)
            ahead = nxt
            if batch is None:
                break
    seconds = time.perf_counter() - t0
    s = acc.stats
    log.info("tokenized %s: %d docs, %.2f MB -> %d tokens in %.1fs (%.2f MB/s)", split, s.n_docs,
             s.n_bytes / 1e6, s.n_text_tokens + s.n_docs + 1, seconds,
             s.n_bytes / 1e6 / max(seconds, 1e-9))
    files = {f"{split}.ids.bin": w_ids.meta(), f"{split}.nbytes.bin": w_nb.meta()}
    if w_extra is not None:
        files[f"{split}.extra.bin"] = w_extra.meta()
    return acc, files


def counts_spelled_words(vocab_cfg: VocabConfig, split: str) -> bool:
    """Whether the cache counts `split`'s words spelled out in byte tokens: word(oov=bytes)
    val and test only. Counting needs each token's word id, which only ``encode_batch``
    returns, at a third more encoder work; on train (the bulk of the text) nothing reads the
    count: the reports' spelled-word rates are val/test's."""
    return is_byte_word_vocab(vocab_cfg) and split != "train"


def encode_method(vocab_cfg: VocabConfig, split: str) -> str:
    """The Tokenizer method the cache encodes `split` with: ``encode_batch_fast`` (ids only;
    no offsets, no word ids; tokenizers >= 0.20, older ones fall back to ``encode_batch``)
    wherever ids are all the bookkeeping needs; ``encode_batch`` for the closed vocabulary
    (offsets) and where spelled words are counted (word ids)."""
    needs_more = is_closed_vocab(vocab_cfg) or counts_spelled_words(vocab_cfg, split)
    return "encode_batch" if needs_more else "encode_batch_fast"


def _finish(consumer: Consumer) -> tuple[SplitAccumulator, dict[str, Any]]:
    try:
        consumer.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise RuntimeError("a split consumer did not finish")


def _feed_split(corpus: Corpus, split: str, data_cfg: DataConfig, consumer: Consumer,
                batch_size: int) -> tuple[SplitAccumulator, dict[str, Any]]:
    """One pass over the corpus for one split."""
    next(consumer)
    for batch in _batched(iter_split(corpus, split, data_cfg), batch_size):
        consumer.send(batch)
    return _finish(consumer)


def _feed_one_pass(corpus: Corpus, data_cfg: DataConfig, consumers: dict[str, Consumer],
                   batch_size: int) -> dict[str, tuple[SplitAccumulator, dict[str, Any]]]:
    """One pass over the corpus feeding every split's consumer (a cold text_files or hf
    corpus is read once, not once per split). Each split's stream keeps corpus order."""
    for consumer in consumers.values():
        next(consumer)
    pending: dict[str, list[Document]] = {split: [] for split in consumers}
    n_docs = 0
    assign = SplitAssigner.of(data_cfg)
    for doc in corpus:
        n_docs += 1
        split = assign(doc.doc_id)
        batch = pending[split]
        batch.append(doc)
        if len(batch) == batch_size:
            consumers[split].send(batch)
            pending[split] = []
    for split, batch in pending.items():
        if batch:
            consumers[split].send(batch)
    results = {split: _finish(consumer) for split, consumer in consumers.items()}
    for split, (acc, _) in results.items():
        if acc.stats.n_docs == 0:
            raise empty_split_error(split, n_docs, data_cfg)
    return results


def _add_byte_level_batch(
    acc: SplitAccumulator, batch: list[Document], texts: list[str], encodings: list[Any],
    token_bytes: np.ndarray, dtype: np.dtype, track_spelled: bool, w_ids: _ArrayWriter,
    w_nb: _ArrayWriter, eod: np.ndarray, zero: np.ndarray,
) -> int:
    """Write one batch of a byte-level vocabulary: ids, per-token bytes, counts; its bytes."""
    id_parts: list[np.ndarray] = []
    nb_parts: list[np.ndarray] = []
    n_bytes = 0
    words = spelled_n = spelled_b = 0
    for doc, text, enc in zip(batch, texts, encodings, strict=True):
        ids = np.array(enc.ids, dtype=np.int64)
        if len(ids) == 0:
            raise ValueError(f"document {doc.doc_id!r} tokenized to nothing")
        nbytes = byte_level_lengths(text, ids, token_bytes)
        if track_spelled:
            w = spelled_words(np.array(enc.word_ids, dtype=np.int64), nbytes)
            words, spelled_n, spelled_b = words + w[0], spelled_n + w[1], spelled_b + w[2]
        id_parts += [ids, eod]
        nb_parts += [nbytes, zero]
        n_bytes += len(text) if text.isascii() else len(text.encode("utf-8"))
        acc.doc_ids.append(doc.doc_id)
    acc.stats.n_docs += len(batch)
    all_ids = np.concatenate(id_parts)
    w_ids.write(all_ids.astype(dtype, copy=False))
    w_nb.write(np.concatenate(nb_parts))
    acc.add_byte_level(n_bytes, all_ids, len(token_bytes), int(eod[0]), n_eod=len(batch),
                       spelled=(words, spelled_n, spelled_b) if track_spelled else None)
    return n_bytes


def byte_level_token_bytes(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 bytes of each token id of a byte-level vocabulary: one per ByteLevel symbol.
    Special tokens (never produced from text) count 0."""
    sizes = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    specials = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
    for token, i in tokenizer.get_vocab().items():
        sizes[i] = 0 if token in specials else len(token)
    return sizes


def _byte_level_decoder() -> dict[str, int]:
    # GPT-2's bytes_to_unicode, inverted: ByteLevel symbol -> the byte it stands for.
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
          *range(ord("\xae"), ord("\xff") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def byte_level_spelling_counts(tokenizer: Tokenizer, id_counts: np.ndarray) -> np.ndarray:
    """Spelling counts (256 bytes + end of word) of a byte-level token stream with these id
    counts: each token's own bytes (its surface), one end-of-word symbol per token."""
    decoder = _byte_level_decoder()
    counts = np.zeros(N_SYMBOLS, dtype=np.int64)
    for i in np.flatnonzero(id_counts):
        token = tokenizer.id_to_token(int(i))
        blob = np.frombuffer(bytes(decoder[c] for c in token), dtype=np.uint8)
        counts[:256] += np.bincount(blob, minlength=256) * int(id_counts[i])
    counts[256] = int(id_counts.sum())
    return counts


def word_spelling_counts(tokenizer: Tokenizer, id_counts: np.ndarray,
                         unk_surfaces: Counter[str]) -> np.ndarray:
    """Spelling counts (256 bytes + end of word) of a closed-vocabulary token stream whose
    known tokens' surfaces are their own strings: ``id_counts`` of the known ids (<unk>
    excluded) and the <unk> surfaces with their counts; one end-of-word symbol per token."""
    known = np.flatnonzero(id_counts)
    words = [tokenizer.id_to_token(int(i)) for i in known] + list(unk_surfaces)
    n = np.concatenate([id_counts[known], np.fromiter(unk_surfaces.values(), dtype=np.int64,
                                                      count=len(unk_surfaces))])
    raw = [w.encode("utf-8") for w in words]
    blob = np.frombuffer(b"".join(raw), dtype=np.uint8)
    # Each word's bytes weighted by its count, in one bincount (integers: exact in float64).
    weights = np.repeat(n, [len(b) for b in raw]).astype(np.float64)
    counts = np.zeros(N_SYMBOLS, dtype=np.int64)
    counts[:256] = np.rint(np.bincount(blob, weights=weights, minlength=256)).astype(np.int64)
    counts[256] = int(n.sum())
    return counts


def _build(
    corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig, tokenizer: Tokenizer,
    tokenizer_path: Path, key: str, out_dir: Path, batch_size: int,
) -> dict[str, Any]:
    vocab_size = tokenizer.get_vocab_size()
    eod_id = tokenizer.token_to_id(vocab_cfg.eod_token)
    unk_id = tokenizer.token_to_id(vocab_cfg.unk_token)
    if eod_id is None or unk_id is None:
        raise ValueError(f"tokenizer {tokenizer_path} lacks {vocab_cfg.eod_token} or "
                         f"{vocab_cfg.unk_token}")
    dtype = ids_dtype(vocab_size)
    spelling_counts = np.zeros(N_SYMBOLS, dtype=np.int64)
    # Its own stage, shared by every arm on the corpus (a no-op once the first arm built it).
    curve = build_or_load_oov_curve(corpus, data_cfg, vocab_cfg, out_dir.parent.parent)
    accs: dict[str, SplitAccumulator] = {}
    files: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    # Only the closed vocabulary drops text (<unk>, whitespace) that must be charged.
    closed = is_closed_vocab(vocab_cfg)
    spelling: SpellingModel | None = None
    spelling_ngram: NgramSpeller | None = None
    layout: LayoutModel | None = None
    # Byte-level vocabularies (every arm but the closed one): vectorised bookkeeping from ids.
    token_bytes = None if closed else byte_level_token_bytes(tokenizer)
    # A known token's surface is its own string when nothing rewrites the text: no normalizer
    # (such as lowercase), and both pre-tokenizers only cut slices (HF's Whitespace; Treebank
    # pieces, `pretokenize._Treebank`). Then only <unk>s are cut from the text.
    surfaces_are_tokens = closed and tokenizer.normalizer is None

    def consumer(split: str) -> Consumer:
        charges = (spelling, layout) if split != "train" and spelling and layout else None
        return _encode_split(
            split, tokenizer, eod_id=eod_id, unk_id=unk_id, dtype=dtype, out_dir=out_dir,
            spelling_counts=(spelling_counts if split == "train" and closed
                             and not surfaces_are_tokens else None),
            token_bytes=token_bytes, track_layout=closed, charges=charges,
            track_spelled=counts_spelled_words(vocab_cfg, split),
            method=encode_method(vocab_cfg, split), surfaces_are_tokens=surfaces_are_tokens)

    # Exact vocabularies charge nothing fitted on train: every split in one corpus pass. The
    # closed vocabulary's val/test charges need train's models first: a pass per split.
    done = (_feed_one_pass(corpus, data_cfg, {s: consumer(s) for s in SPLITS}, batch_size)
            if not closed else {})
    for split in SPLITS:  # train first: the spelling and layout models are fitted on it
        if split not in done:
            done[split] = _feed_split(corpus, split, data_cfg, consumer(split), batch_size)
        accs[split], split_files = done[split]
        files.update(split_files)
        if split == "train":
            train_ids = accs["train"].id_counts
            if train_ids is not None:
                spelling_counts[:] = (
                    word_spelling_counts(tokenizer, train_ids, accs["train"].unk_surfaces)
                    if closed else byte_level_spelling_counts(tokenizer, train_ids))
            spelling = SpellingModel.from_counts(spelling_counts)
            train_layout = accs["train"].layout
            if train_layout is not None:
                layout = LayoutModel.from_counts(train_layout, spelling)
            if closed:
                # Fitted on train's own <unk> surfaces, the words outside the vocabulary: rare
                # words, the population val/test <unk>s come from (longer, more capitals,
                # digits and foreign script than running text), so the charge is tighter
                # than a fit on all words that frequent short words would dominate.
                spelling_ngram = NgramSpeller.fit(accs["train"].unk_surfaces)
    stats = {split: asdict(acc.finish(spelling, layout, spelling_ngram,
                                      spelled_counted=counts_spelled_words(vocab_cfg, split)
                                      or not is_byte_word_vocab(vocab_cfg)))
             for split, acc in accs.items()}
    total = sum(s["n_bytes"] for s in stats.values())
    seconds = time.perf_counter() - t0
    log.info("token cache built: %.2f MB in %.1fs (%.2f MB/s overall)", total / 1e6, seconds,
             total / 1e6 / max(seconds, 1e-9))
    return {
        "format": CACHE_FORMAT,
        "key": key,
        "corpus_fingerprint": corpus.fingerprint(),
        "tokenizer_path": str(tokenizer_path),
        "tokenizer_sha256": file_sha256(tokenizer_path),
        "vocab_size": vocab_size,
        "eod_id": eod_id,
        "unk_id": unk_id,
        "files": files,
        "splits": stats,
        # Held-out documents in stream order; the report pairs arms document by document.
        "doc_ids": {split: accs[split].doc_ids for split in ("val", "test")},
        "spelling_counts": [int(c) for c in spelling_counts],
        "word_oov_curve": curve,
    }


# --- loading --------------------------------------------------------------------------------


def _open(meta: dict[str, Any], out_dir: Path, reused: bool) -> TokenCache:
    splits = {}
    for split in SPLITS:
        arrays: dict[str, np.ndarray] = {}
        for kind in KINDS:
            f = meta["files"].get(f"{split}.{kind}.bin")
            if f is not None:
                arrays[kind] = np.memmap(out_dir / f"{split}.{kind}.bin",
                                         dtype=np.dtype(f["dtype"]), mode="r",
                                         shape=(int(f["length"]),))
        splits[split] = TokenSplit(arrays["ids"], arrays["nbytes"],
                                   SplitStats(**meta["splits"][split]), arrays.get("extra"))
    return TokenCache(
        key=meta["key"], dir=out_dir, vocab_size=int(meta["vocab_size"]),
        eod_id=int(meta["eod_id"]), unk_id=int(meta["unk_id"]), reused=reused, splits=splits,
        word_oov_curve=meta["word_oov_curve"], doc_ids=meta.get("doc_ids", {}),
        spelling_counts=np.asarray(meta["spelling_counts"], dtype=np.int64))


def _verify(meta: dict[str, Any], out_dir: Path, key: str, tokenizer_sha: str) -> str | None:
    """Why the entry cannot be used, or None if every check passes."""
    if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
        return "format or key mismatch"
    if meta.get("tokenizer_sha256") != tokenizer_sha:
        return "it was built with a different tokenizer.json"
    for split in SPLITS:
        for kind in ("ids", "nbytes"):
            if f"{split}.{kind}.bin" not in meta["files"]:
                return f"{split}.{kind}.bin is not listed in meta.json"
    for name, f in meta["files"].items():
        path = out_dir / name
        if not path.exists():
            return f"{name} is missing"
        if path.stat().st_size != int(f["length"]) * np.dtype(f["dtype"]).itemsize:
            return f"{name} has the wrong size"
        if file_sha256(path) != f["sha256"]:
            return f"{name} fails its sha256 check"
    return None


def build_or_load_token_cache(
    corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig, tokenizer: Tokenizer,
    tokenizer_path: Path, cache_root: Path, batch_size: int = 256,
) -> TokenCache:
    """The verified token cache of (corpus, split, tokenizer), building it if needed."""
    key = stable_hash({"tokenizer": tokenizer_key(corpus.fingerprint(), data_cfg, vocab_cfg),
                       "format": CACHE_FORMAT})
    out_dir = Path(cache_root) / "tokens" / key
    with entry_lock(out_dir, "token cache"):  # concurrent runs: one builds, the rest reuse
        return _build_or_load(corpus, data_cfg, vocab_cfg, tokenizer, Path(tokenizer_path),
                              key, out_dir, batch_size)


def _build_or_load(corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig,
                   tokenizer: Tokenizer, tokenizer_path: Path, key: str, out_dir: Path,
                   batch_size: int) -> TokenCache:
    meta_path = out_dir / "meta.json"
    tokenizer_sha = file_sha256(tokenizer_path)
    if meta_path.exists():
        try:
            meta = read_json(meta_path)
            problem = _verify(meta, out_dir, key, tokenizer_sha)
            if problem is None:
                cache = _open(meta, out_dir, reused=True)
                log.info("reusing cached token arrays %s", out_dir)
                return cache
        except (OSError, ValueError, KeyError, TypeError) as e:
            problem = f"meta.json is unreadable ({e})"
        log.warning("token cache %s is unusable: %s; rebuilding", out_dir, problem)
        meta_path.unlink(missing_ok=True)  # no stale completeness marker during the rebuild
    elif out_dir.exists() and any(out_dir.iterdir()):
        log.warning("token cache %s has no meta.json (an interrupted build); rebuilding", out_dir)
    log.info("building token arrays %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = _build(corpus, data_cfg, vocab_cfg, tokenizer, Path(tokenizer_path), key, out_dir,
                  batch_size)
    atomic_write_json(meta_path, meta)  # last: its presence marks the entry complete
    return _open(meta, out_dir, reused=False)
