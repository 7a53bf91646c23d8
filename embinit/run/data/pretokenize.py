"""Word splitting of the word-level vocabularies: HF's built-in rules, or NLTK's Treebank.

``vocab.pretokenizer``:

- ``whitespace`` (default): the Rust pre-tokenizers, ByteLevel's GPT-2 regex for
  ``oov=bytes`` (``don't`` -> ``don 't``) and ``Whitespace`` for ``oov=unk`` (``don ' t``).
- ``treebank``: NLTK's ``TreebankWordTokenizer().span_tokenize``, the Penn Treebank
  conventions GloVe's vocabulary follows: ``don't`` -> ``do n't``, ``U.S.A.'s`` ->
  ``U.S.A. 's``, ``3.50`` whole. Treebank rules split a final period only at the end of
  the string they get, so each document is first cut into sentences: at line breaks, and
  after ``.``/``?``/``!`` (and closing quotes/brackets) followed by whitespace and a capital,
  digit or opening quote, unless the word before is an initialism (``U.S.A.``, ``D.C.``) or
  a title (``Mr.``). NLTK's untrained Punkt was tried and cuts ``U.S.A.| 's``; its trained
  model needs a download.
  Spans point into the original text, so the byte accounting stays exact and quotes keep
  their original characters (span_tokenize's ````/'' rewrite is never used).

Treebank is Python, not Rust: it runs as an HF ``PreTokenizer.custom``, which a
``tokenizer.json`` cannot store. The saved file therefore carries a serialisable stand-in,
``Sequence([Split(MARKER), <the whitespace pre-tokenizer>])``: the marker is a string that
never occurs in text (a no-op split), so any HF loader gets a working, lossless tokenizer
with the whitespace word splitting, and `embinit.run.data.tokenizer.load_tokenizer` finds
the marker and attaches Treebank again, so embinit reproduces the exact splitting.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from tokenizers import NormalizedString, PreTokenizedString, Tokenizer, pre_tokenizers

from embinit.config import PRETOKENIZERS
from embinit.errors import ConfigError

Span = tuple[int, int]
_MARKER_PREFIX = "\x00embinit:pretokenizer="
_NON_SPACE = re.compile(r"\S+")


def marker(name: str) -> str:
    """The no-op Split pattern that names the runtime pre-tokenizer inside tokenizer.json."""
    return f"{_MARKER_PREFIX}{name}\x00"


# A candidate sentence end: terminal punctuation, closing quotes/brackets, whitespace, then
# what starts a sentence. Line breaks always end one.
_SENTENCE_END = re.compile(r"""[.!?]["')\]]*[ \t]+(?=["'(\[]?[A-Z0-9])|\s*\n\s*""")
_NOT_AN_END = re.compile(r"(?:^|\s)(?:(?:[A-Za-z]\.)+|Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Mt|No|vs|"
                         r"etc|Inc|Ltd|Co|Gen|Col|Lt|Sgt|Capt|Rev|Hon|Fig|approx|ca|c)\.$")


@functools.cache
def _nltk() -> Any:
    try:
        from nltk.tokenize import TreebankWordTokenizer
    except ImportError as exc:
        raise ConfigError(f"vocab.pretokenizer=treebank needs nltk ({exc}); pip install nltk, "
                          "or use vocab.pretokenizer=whitespace") from exc
    return TreebankWordTokenizer()


def sentence_spans(text: str) -> list[Span]:
    """Character spans of the sentences of ``text`` (see the module doc); they cover it."""
    spans: list[Span] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        # After terminal punctuation, an initialism or a title is not a sentence end.
        if m.group()[0] in ".!?" and _NOT_AN_END.search(text, max(0, m.start() - 12),
                                                       m.start() + 1):
            continue
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def nltk_version() -> str:
    import nltk

    return str(nltk.__version__)


def treebank_spans(text: str) -> list[Span]:
    """Character spans of the Treebank words of ``text`` (whitespace belongs to no span)."""
    treebank = _nltk()
    spans: list[Span] = []
    for s0, s1 in sentence_spans(text):
        sentence = text[s0:s1]
        try:
            words = treebank.span_tokenize(sentence)
            spans.extend((s0 + a, s0 + b) for a, b in words)
        except ValueError:
            # align_tokens fails on the rare sentence whose rewritten tokens it cannot find
            # again; whitespace-separated chunks keep the sentence (and the bytes) whole.
            spans.extend((s0 + m.start(), s0 + m.end()) for m in _NON_SPACE.finditer(sentence))
    return spans


def treebank_pieces(text: str) -> list[Span]:
    """A partition of ``text`` into pre-tokens for the byte-fallback word arm.

    Like the GPT-2 regex, the single space before a word belongs to it (" the"); any other
    whitespace (newlines, runs of spaces less their last one) is a pre-token of its own.
    Text no span covers stays a pre-token too, so the pieces always concatenate to ``text``.
    """
    pieces: list[Span] = []
    prev = 0
    for a, b in treebank_spans(text):
        if a < prev:  # overlapping spans (never seen): keep the partition
            a = prev
        if a > prev and text[a - 1] == " ":
            if a - 1 > prev:
                pieces.append((prev, a - 1))
            pieces.append((a - 1, b))
        else:
            if a > prev:
                pieces.append((prev, a))
            if b > a:
                pieces.append((a, b))
        prev = max(prev, b)
    if prev < len(text):
        pieces.append((prev, len(text)))
    return pieces


class _Treebank:
    """HF custom pre-tokenizer: Treebank words, with (pieces) or without (spans) whitespace."""

    def __init__(self, keep_whitespace: bool) -> None:
        self._split = treebank_pieces if keep_whitespace else treebank_spans

    def _cut(self, _i: int, ns: NormalizedString) -> list[NormalizedString]:
        return [ns[a:b] for a, b in self._split(str(ns))]

    def pre_tokenize(self, pretok: PreTokenizedString) -> None:
        pretok.split(self._cut)


def whitespace_pretokenizer(byte_level: bool) -> Any:
    """Today's Rust pre-tokenizer: GPT-2 regex ByteLevel (oov=bytes) or Whitespace (oov=unk)."""
    if byte_level:
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    return pre_tokenizers.Whitespace()


def stand_in(name: str, byte_level: bool) -> Any:
    """The serialisable pre-tokenizer tokenizer.json stores for ``name`` (see the module doc)."""
    if name == "whitespace":
        return whitespace_pretokenizer(byte_level)
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(marker(name), behavior="isolated"),
        whitespace_pretokenizer(byte_level)])


def runtime(name: str, byte_level: bool) -> Any:
    """The pre-tokenizer a live tokenizer uses for ``name``."""
    if name == "whitespace":
        return whitespace_pretokenizer(byte_level)
    if name != "treebank":
        raise ConfigError(f"vocab.pretokenizer={name!r} is unknown; choose one of {PRETOKENIZERS}")
    custom = pre_tokenizers.PreTokenizer.custom(_Treebank(keep_whitespace=byte_level))
    if not byte_level:
        return custom
    # The pieces already partition the text; ByteLevel only maps bytes to its symbols.
    return pre_tokenizers.Sequence([
        custom, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def saved_pretokenizer(tokenizer_json: str) -> tuple[str, bool]:
    """(pre-tokenizer name, byte level) recorded in a tokenizer.json's text."""
    pre = json.loads(tokenizer_json).get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    byte_level = any(p.get("type") == "ByteLevel" for p in parts)
    patterns = {(p.get("pattern") or {}).get("String") for p in parts if p.get("type") == "Split"}
    for name in PRETOKENIZERS:
        if marker(name) in patterns:
            return name, byte_level
    return "whitespace", byte_level


def to_json(tok: Tokenizer, name: str, byte_level: bool, pretty: bool = False) -> str:
    """tokenizer.json text of ``tok``, with the stand-in in place of a custom pre-tokenizer."""
    if name == "whitespace":
        return Tokenizer.to_str(tok, pretty)
    live = tok.pre_tokenizer
    tok.pre_tokenizer = stand_in(name, byte_level)
    try:
        return Tokenizer.to_str(tok, pretty)
    finally:
        tok.pre_tokenizer = live


def attach(tok: Tokenizer, name: str, byte_level: bool) -> Tokenizer:
    """Give ``tok`` the runtime pre-tokenizer ``name``. A custom one also gets instance
    ``to_str``/``save`` that write the stand-in, so any caller (a run directory's copy of
    tokenizer.json, say) saves a loadable file instead of failing on the custom part."""
    tok.pre_tokenizer = runtime(name, byte_level)
    if name != "whitespace":
        def to_str(pretty: bool = False) -> str:
            return to_json(tok, name, byte_level, pretty)

        def save(path: str, pretty: bool = True) -> None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(to_json(tok, name, byte_level, pretty))

        # Instance attributes shadow the Rust methods (Tokenizer objects carry a __dict__).
        tok.to_str = to_str  # type: ignore[method-assign]
        tok.save = save  # type: ignore[method-assign]
    return tok
