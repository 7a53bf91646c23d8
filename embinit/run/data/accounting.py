"""Counting what a tokenization does to the text: bytes per token, OOV and word statistics.

Pure functions and accumulators; the token cache calls them while it streams each split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import regex

from embinit.metrics import LayoutModel, NgramSpeller, SpellingModel


def token_byte_lengths(text: str, offsets: Sequence[tuple[int, int]]) -> np.ndarray:
    """UTF-8 bytes per token, summing exactly to ``len(text.encode())``.

    Token i is charged the bytes from the end of token i-1 (the start of the text for i = 0)
    to its own end, so the whitespace between tokens goes to the token after it and the last
    token also takes any trailing bytes. ``offsets`` are character offsets (as HF tokenizers
    report them); tokens sharing one character (a multi-byte character split across
    byte-level tokens) charge it to the first of them and 0 to the rest.
    """
    if len(offsets) == 0:
        raise ValueError("a text with no tokens has no token to charge its bytes to")
    # Byte width of each character from its code point: 1/2/3/4 bytes below 0x80/0x800/0x10000.
    cp = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    width = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    byte_pos = np.zeros(len(text) + 1, dtype=np.int64)  # byte offset of each character index
    np.cumsum(width, out=byte_pos[1:])
    char_ends = np.minimum(np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[:, 1], len(text))
    ends = byte_pos[char_ends]
    ends[-1] = byte_pos[-1]
    ends = np.maximum.accumulate(ends)  # repeated offsets charge 0, never a negative count
    return np.diff(ends, prepend=0)


def byte_level_lengths(text: str, ids: np.ndarray, token_bytes: np.ndarray) -> np.ndarray:
    """`token_byte_lengths` for a byte-level tokenizer (BPE, word(oov=bytes)), from ids alone.

    Byte-level tokens partition the text's UTF-8 bytes in order, ``token_bytes[id]`` bytes
    each, so token i ends at byte ``cumsum[i]``. The offset rule charges a character split
    across tokens to the first of them: a token's end moves up to the end of the character
    its last byte belongs to. ASCII text has no split characters: a lookup and nothing else.
    """
    lengths = token_bytes[ids]
    if text.isascii():
        return lengths
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    ends = np.cumsum(lengths)
    if ends[-1] != len(raw):
        raise ValueError(f"tokens cover {ends[-1]} bytes of a {len(raw)}-byte text; "
                         "not a byte-level tokenization")
    # Character starts are the bytes that are not UTF-8 continuation bytes (10xxxxxx).
    starts = np.flatnonzero((raw & 0xC0) != 0x80)
    bounds = np.append(starts, len(raw))
    ends = bounds[np.searchsorted(bounds, ends)]  # round up to a character boundary
    ends = np.maximum.accumulate(ends)
    return np.diff(ends, prepend=0)


@dataclass
class SplitStats:
    """Counts of one split's token stream; JSON-able with `dataclasses.asdict`."""

    n_docs: int = 0
    n_bytes: int = 0  # UTF-8 bytes of the documents' text (= nbytes.sum())
    n_tokens: int = 0  # every stream token, EODs included
    n_targets: int = 0  # n_tokens - 1: every token after the first is predicted
    n_text_tokens: int = 0  # tokens of document text (not EOD); <unk> included
    n_unk: int = 0
    # distinct surface strings (text[start:end]) of text tokens; byte-level vocabularies
    # (bpe, word(oov=bytes)): distinct token ids (a token's surface is its own bytes)
    n_types: int = 0
    n_unk_types: int = 0  # distinct surface strings that became <unk>
    unk_bytes: int = 0  # UTF-8 bytes of <unk> surfaces, summed over occurrences
    unk_spelling_nats: float = 0.0  # sum over <unk> occurrences of SpellingModel.cost(surface)
    # The same <unk> occurrences priced by the order-5 byte n-gram speller (NgramSpeller),
    # fitted on the train split's <unk> surfaces (train's own figure is therefore in-sample).
    unk_spelling_nats_ngram: float = 0.0
    n_gaps: int = 0  # closed word vocabulary only: gaps (whitespace the tokens do not carry)
    layout_nats: float = 0.0  # closed word vocabulary only: sum of LayoutModel.cost over gaps
    # word(oov=bytes) only: words (ByteLevel pre-tokens) and those spelled out in byte tokens
    # because they are not in the vocabulary (more than one token), with their UTF-8 bytes.
    # None where they were not counted: word(oov=bytes) train (`cache.counts_spelled_words`).
    n_words: int | None = 0
    n_spelled_words: int | None = 0
    spelled_bytes: int | None = 0


def oov_rates(stats: SplitStats) -> dict[str, float]:
    """Token, type and byte shares of <unk> (0.0 unless the vocabulary is closed), and the
    shares of words and bytes spelled out in byte tokens (0.0 unless word(oov=bytes); NaN
    where they were not counted)."""
    def ratio(a: float | None, b: float | None) -> float:
        if a is None or b is None:
            return float("nan")  # not counted on this split
        return float(a / b) if b else 0.0

    return {
        "token_rate": ratio(stats.n_unk, stats.n_text_tokens),
        "type_rate": ratio(stats.n_unk_types, stats.n_types),
        "unk_byte_share": ratio(stats.unk_bytes, stats.n_bytes),
        "spelled_word_rate": ratio(stats.n_spelled_words, stats.n_words),
        "spelled_byte_share": ratio(stats.spelled_bytes, stats.n_bytes),
    }


def spelled_words(word_ids: np.ndarray, nbytes: np.ndarray) -> tuple[int, int, int]:
    """(words, words spelled out, their UTF-8 bytes) of one byte-fallback encoding.

    ``word_ids[i]`` is the pre-token index of token i (`Encoding.word_ids`: 0, 1, ...,
    non-decreasing) and ``nbytes`` the bytes per token (`token_byte_lengths`). A word is
    spelled out when it took more than one token. Byte-level tokens cover every character,
    so a word's bytes are the sum of its tokens' bytes.
    """
    if len(word_ids) == 0:
        return 0, 0, 0
    word_ids = np.asarray(word_ids, dtype=np.int64)
    n = int(word_ids[-1]) + 1
    per_word = np.bincount(word_ids, minlength=n)
    word_bytes = np.bincount(word_ids, weights=nbytes, minlength=n)
    spelled = per_word > 1
    return n, int(spelled.sum()), int(round(word_bytes[spelled].sum()))


class SplitAccumulator:
    """Running statistics of one split; <unk> surfaces are kept as counts to price them later."""

    def __init__(self, track_layout: bool) -> None:
        self.stats = SplitStats()
        self.types: set[str] = set()
        self.unk_surfaces: Counter[str] = Counter()
        # Word-level tokens drop the text between them; count those gaps to price them later.
        self.layout: Counter[tuple[str, str]] | None = Counter() if track_layout else None
        self.doc_ids: list[str] = []  # in stream order: pairs documents across arms
        # tokens per id: byte-level vocabularies; the closed one's known ids (<unk> zeroed)
        self.id_counts: np.ndarray | None = None

    def add_byte_level(self, n_bytes: int, ids: np.ndarray, vocab_size: int, eod_id: int,
                       n_eod: int, spelled: tuple[int, int, int] | None) -> None:
        """Statistics of a batch of byte-level documents (``ids``: their tokens and one EOD
        each, which text never produces): no surfaces, counts per id."""
        s = self.stats
        s.n_bytes += n_bytes
        s.n_text_tokens += len(ids) - n_eod
        if spelled is not None:
            s.n_words += spelled[0]
            s.n_spelled_words += spelled[1]
            s.spelled_bytes += spelled[2]
        self._count_ids(ids, vocab_size, eod_id, n_eod)

    def _count_ids(self, ids: np.ndarray, vocab_size: int, eod_id: int, n_eod: int,
                   drop_id: int | None = None) -> None:
        # bincount per batch, the batch's EODs (and drop_id) taken out, added to the total.
        counts = np.bincount(ids, minlength=vocab_size)
        counts[eod_id] -= n_eod
        if drop_id is not None:
            counts[drop_id] = 0
        self.id_counts = counts if self.id_counts is None else self.id_counts + counts

    def add_word_level(self, n_bytes: int, n_tokens: int, surfaces: list[str] | None,
                       unk_surfaces: list[str]) -> None:
        """Statistics of one closed-vocabulary document: its size, its token surfaces (the
        types; None where every surface but <unk>'s is its token's string, see
        `count_known_ids`) and the surfaces that became <unk>."""
        s = self.stats
        s.n_docs += 1
        s.n_bytes += n_bytes
        s.n_text_tokens += n_tokens
        if surfaces is not None:
            self.types.update(surfaces)
        self.unk_surfaces.update(unk_surfaces)

    def count_known_ids(self, ids: np.ndarray, vocab_size: int, eod_id: int, n_eod: int,
                        unk_id: int) -> None:
        """Counts per id of a batch's tokens (and its ``n_eod`` EODs) other than <unk>: where
        each known token's surface is its own string, the distinct known ids plus the
        distinct <unk> surfaces are the distinct surfaces."""
        self._count_ids(ids, vocab_size, eod_id, n_eod, drop_id=unk_id)

    def add_layout(self, events: list[tuple[str, str]], counts: np.ndarray) -> None:
        """Count gaps given as distinct (context, gap) events and how often each occurs."""
        if self.layout is not None:
            for event, n in zip(events, counts.tolist(), strict=True):
                self.layout[event] += n

    def finish(self, spelling: SpellingModel | None, layout: LayoutModel | None,
               spelling_ngram: NgramSpeller | None = None,
               spelled_counted: bool = True) -> SplitStats:
        s = self.stats
        if not spelled_counted:
            s.n_words = s.n_spelled_words = s.spelled_bytes = None
        s.n_tokens = s.n_text_tokens + s.n_docs + 1  # one EOD before each document, one at the end
        s.n_targets = s.n_tokens - 1
        s.n_unk = sum(self.unk_surfaces.values())
        # Distinct surfaces: kept as strings, or distinct ids (byte-level vocabularies; the
        # closed one's known tokens) plus the distinct <unk> surfaces (none if byte-level).
        s.n_types = (len(self.types) if self.id_counts is None
                     else int(np.count_nonzero(self.id_counts)) + len(self.unk_surfaces))
        s.n_unk_types = len(self.unk_surfaces)
        s.unk_bytes = sum(len(w.encode("utf-8")) * c for w, c in self.unk_surfaces.items())
        if spelling is not None:
            s.unk_spelling_nats = float(sum(spelling.cost(w) * c
                                            for w, c in self.unk_surfaces.items()))
        if spelling_ngram is not None and self.unk_surfaces:
            # Each distinct surface is priced once, in one vectorised call.
            words = list(self.unk_surfaces)
            counts = np.fromiter(self.unk_surfaces.values(), dtype=np.float64,
                                 count=len(words))
            s.unk_spelling_nats_ngram = float(spelling_ngram.costs(words) @ counts)
        if layout is not None and self.layout is not None:
            s.n_gaps = sum(self.layout.values())
            s.layout_nats = float(sum(layout.cost(ctx, gap) * c
                                      for (ctx, gap), c in self.layout.items()))
        return s


# HF's Whitespace pre-tokenizer, \w+|[^\w\s]+, with Rust regex's Unicode classes spelled
# out (\w = Alphabetic, marks, decimal digits, connector punctuation, join controls; \s =
# White_Space): the same words, from one C findall instead of a Python tuple per word.
_W = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}"
_WHITESPACE_WORDS = regex.compile(rf"[{_W}]+|[^{_W}\p{{White_Space}}]+")
# The same on ASCII text (twice as fast with re): \x1c-\x1f are not White_Space.
_ASCII_WORDS = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\t\n\x0b\x0c\r ]+")


def word_counts(texts: Iterable[str], lowercase: bool = False,
                pretokenizer: str = "whitespace") -> Counter[str]:
    """Counts of the words the closed `word` tokenizer would see (the same pre-tokenizer:
    HF Whitespace, or Treebank words)."""
    tally = WordTally(lowercase, pretokenizer)
    tally.update(texts)
    return tally.counts()


# str.split() splits at White_Space and also at \x1c-\x1f (str.isspace), which HF's \s does
# not: a text holding one of those takes the regex path.
_ISSPACE_NOT_WHITE_SPACE = re.compile("[\x1c-\x1f]")


def _regex_words(text: str) -> list[str]:
    return (_ASCII_WORDS if text.isascii() else _WHITESPACE_WORDS).findall(text)


class WordTally:
    """`word_counts` over many texts, fast for whitespace words: whitespace-separated chunks
    are counted in C (``Counter.update(text.split())``) and each distinct chunk is split into
    its words once, in `counts`, instead of one regex match object per running word."""

    def __init__(self, lowercase: bool = False, pretokenizer: str = "whitespace") -> None:
        self.lowercase, self.pretokenizer = lowercase, pretokenizer
        self._chunks: Counter[str] = Counter()
        self._words: Counter[str] = Counter()

    def update(self, texts: Iterable[str]) -> None:
        from embinit.run.data.pretokenize import treebank_spans  # nltk only when asked for

        for text in texts:
            if self.lowercase:
                text = text.lower()
            if self.pretokenizer != "whitespace":
                self._words.update(text[a:b] for a, b in treebank_spans(text))
            elif _ISSPACE_NOT_WHITE_SPACE.search(text) is None:
                self._chunks.update(text.split())
            else:
                self._words.update(_regex_words(text))

    def counts(self) -> Counter[str]:
        words = Counter(self._words)
        for chunk, n in self._chunks.items():
            if chunk.isascii() and chunk.isalnum():  # one \w+ word: no regex needed
                words[chunk] += n
                continue
            for w in _regex_words(chunk):
                words[w] += n
        return words


def oov_curve(
    train_counts: Mapping[str, int], eval_counts: Mapping[str, int], sizes: Sequence[int]
) -> list[dict[str, float]]:
    """Share of eval tokens and types outside the k most frequent train words, per k in ``sizes``.

    Train words are ranked by count, ties broken by the word itself so the curve is
    deterministic. Specials take no slots: k counts words only. Empty eval counts give 0.0.
    """
    ranked = sorted((w for w, c in train_counts.items() if c > 0),
                    key=lambda w: (-train_counts[w], w))
    rank = {w: i for i, w in enumerate(ranked)}
    eval_items = [(w, c) for w, c in eval_counts.items() if c > 0]
    # A word is out of vocabulary at size k iff its train rank is >= k (unseen: rank = inf).
    ranks = np.array([rank.get(w, np.inf) for w, _ in eval_items], dtype=np.float64)
    counts = np.array([c for _, c in eval_items], dtype=np.int64)
    n_tokens, n_types = int(counts.sum()), len(eval_items)
    curve = []
    for k in sizes:
        oov = ranks >= k
        curve.append({
            "vocab_size": int(k),
            "token_rate": float(counts[oov].sum() / n_tokens) if n_tokens else 0.0,
            "type_rate": float(oov.sum() / n_types) if n_types else 0.0,
        })
    return curve
