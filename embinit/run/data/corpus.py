"""Corpus stage: stream documents from a source, cleaned and filtered, never all in memory.

A `Corpus` is re-iterable: every `iter()` reads the source again, so a corpus larger than
memory streams. Each full pass also fingerprints the content (sha256 over ids and texts)
and counts what was dropped or repaired; `fingerprint()` runs a pass only if none has
completed yet. The fingerprint, not the source's name or path, keys every downstream cache.

Sources (``data.name``):

- ``wiki_sample``: the Wikipedia XML excerpt shipped with gensim's tests, one document per
  article. The XML parse and markup stripping take about a second and the corpus is read
  several times per run, so with a ``cache_root`` the cleaned documents are written once to
  ``<cache_root>/corpus/<key>/docs.jsonl`` and streamed from there.
- ``vital_articles``: the lead sections of Wikipedia's ~10,000 Level 4 Vital Articles, one
  document per article, read from an installed package (optional; `embinit.run.data.vital`).
- ``text_files``: a UTF-8 file (one document per blank-line-separated block) or a directory
  of ``*.txt`` files (one document per file).
- ``hf``: a Hugging Face dataset (optional ``datasets`` dependency); WikiText's raw lines are
  regrouped into articles.
- ``combined``: the sources ``data.parts`` names, in order, each with its own
  ``min_doc_chars``; a title that an earlier part kept is dropped (wiki_sample and
  vital_articles know titles; text_files and hf documents are never duplicates). Document ids
  are the parts' own, so a document's split is the one it has in its own corpus; two parts
  yielding one id is a DataError. Cached like wiki_sample when every part is a packaged file.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embinit.config import DATA_NAMES, DATA_PART_NAMES, DataConfig
from embinit.errors import DataError
from embinit.run.data.locking import entry_lock
from embinit.run.data.vital import VITAL_CLEAN_VERSION, iter_vital_articles, vital_articles_path
from embinit.storage import atomic_open, atomic_write_json, file_sha256, read_json, stable_hash

log = logging.getLogger(__name__)

# Bump when the cleaning below changes, so cached wiki_sample documents are rebuilt.
WIKI_CLEAN_VERSION = 1
WIKI_SAMPLE_RELPATH = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF8_REPLACEMENT = "\ufffd".encode()  # a U+FFFD already present in the file, not a repair


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


@dataclass(frozen=True)
class CorpusStats:
    """What one full pass saw: kept documents, dropped ones, repaired characters, identity."""

    n_docs: int
    # stubs (< data.min_doc_chars), redirects, empty or non-article pages, and (combined)
    # documents whose title an earlier part kept
    n_dropped: int
    n_replaced_chars: int  # U+FFFD substituted for undecodable bytes in kept documents
    fingerprint: str


# A source yields (doc_id, text, n_replaced_chars) candidates before filtering.
Source = Callable[[], Iterator[tuple[str, str, int]]]
# A part of data=combined yields (doc_id, title or None, text, n_replaced_chars).
TitledSource = Callable[[], Iterator[tuple[str, "str | None", str, int]]]


class Corpus:
    """A re-iterable stream of `Document`s: filtered to ``min_doc_chars``, cut at ``max_docs``."""

    def __init__(
        self,
        name: str,
        source: Source,
        *,
        min_doc_chars: int = 0,
        max_docs: int | None = None,
        description: str = "",
        stats: CorpusStats | None = None,
    ) -> None:
        self.name = name
        self.description = description or name
        self._source = source
        self._min_doc_chars = min_doc_chars
        self._max_docs = max_docs
        self._stats = stats  # known up front when streaming from a verified cache

    @classmethod
    def from_documents(cls, docs: Iterable[Document], name: str = "memory",
                       min_doc_chars: int = 0) -> Corpus:
        """A small in-memory corpus (tests, examples); real corpora stream from `open_corpus`."""
        items = [(d.doc_id, d.text, 0) for d in docs]
        return cls(name, lambda: iter(items), min_doc_chars=min_doc_chars)

    def __repr__(self) -> str:
        return f"Corpus({self.description!r})"

    def __iter__(self) -> Iterator[Document]:
        kept = dropped = replaced = 0
        h = hashlib.sha256()
        if self._max_docs is not None and self._max_docs <= 0:
            raise DataError(f"data.max_docs={self._max_docs} keeps no documents; use a positive "
                            "number or data.max_docs=null")
        for doc_id, text, n_replaced in self._source():
            # Whitespace-only documents would tokenize to nothing: drop them at any threshold.
            if len(text) < self._min_doc_chars or not text.strip():
                dropped += 1
                continue
            kept += 1
            replaced += n_replaced
            _hash_document(h, doc_id, text)
            yield Document(doc_id, text)
            if self._max_docs is not None and kept >= self._max_docs:
                break
        if kept == 0:
            raise DataError(
                f"{self.description} has no usable text: none of its {dropped} documents has at "
                f"least data.min_doc_chars={self._min_doc_chars} characters that are not all "
                "whitespace; add text, or lower data.min_doc_chars")
        # Only a pass that ran to the end describes the corpus; an abandoned one records nothing.
        if self._stats is None:
            self._stats = CorpusStats(kept, dropped, replaced, h.hexdigest())
            if replaced:
                log.warning("%s: %d undecodable byte sequences replaced by U+FFFD",
                            self.description, replaced)

    @property
    def stats(self) -> CorpusStats:
        if self._stats is None:
            for _ in self:  # one full pass fills in the stats
                pass
        assert self._stats is not None
        return self._stats

    def fingerprint(self) -> str:
        """sha256 over every kept document's id and text (memoised after the first pass)."""
        return self.stats.fingerprint

    @property
    def n_docs(self) -> int:
        return self.stats.n_docs

    @property
    def n_dropped(self) -> int:
        return self.stats.n_dropped

    @property
    def n_replaced_chars(self) -> int:
        return self.stats.n_replaced_chars


def _hash_document(h: Any, doc_id: str, text: str) -> None:
    # Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    for part in (doc_id.encode("utf-8"), text.encode("utf-8")):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)


def open_corpus(cfg: DataConfig, cache_root: Path | None = None) -> Corpus:
    """The corpus ``cfg`` names. ``cache_root`` enables the cleaned-document cache (wiki_sample,
    and combined corpora of packaged files)."""
    if cfg.name == "wiki_sample":
        corpus = _wiki_sample_corpus(cfg)
        if cache_root is None:
            return corpus
        key = _wiki_cache_key(cfg)
        return _cached_corpus(corpus, key, wiki_sample_path(), Path(cache_root))
    if cfg.name == "vital_articles":
        return _vital_corpus(cfg)
    if cfg.name == "text_files":
        return _text_files_corpus(cfg)
    if cfg.name == "hf":
        return _hf_corpus(cfg)
    if cfg.name == "combined":
        return _combined_corpus(cfg, cache_root)
    raise DataError(f"data.name={cfg.name!r} is unknown; choose one of {DATA_NAMES}")


# --- wiki_sample ----------------------------------------------------------------------------

_HEADING = re.compile(r"^(={1,6})\s*(.*?)\s*\1$")


def clean_wiki_text(raw_markup: str) -> str:
    """Plain text of one article's wiki markup, keeping case and punctuation.

    gensim's `filter_wiki` removes templates, refs, tables, comments and files and turns
    links into their text; on top of that: bold/italic quotes go, ``==Heading==`` lines
    become their heading text, lines are stripped, and blank runs collapse to one blank line.
    """
    from gensim.corpora.wikicorpus import filter_wiki

    text = filter_wiki(raw_markup)
    # ''' before '': five quotes (bold italic) vanish, four leave the apostrophe, as in MediaWiki.
    text = text.replace("'''", "").replace("''", "")
    return _tidy_lines(text.splitlines(), _HEADING)


def _tidy_lines(lines: Iterable[str], heading: re.Pattern[str]) -> str:
    out: list[str] = []
    for line in lines:
        line = line.strip()
        m = heading.match(line)
        if m:
            line = m.group(2).strip()
        if line or (out and out[-1]):
            out.append(line)  # an empty line here is the single blank line between paragraphs
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def wiki_sample_path() -> Path:
    """The gensim test-data excerpt, located through the installed gensim package."""
    import gensim

    path = Path(os.path.dirname(gensim.__file__)) / WIKI_SAMPLE_RELPATH
    if not path.is_file():
        raise DataError(f"data.name=wiki_sample: {path} is missing from the installed gensim; "
                        "reinstall it (pip install --force-reinstall gensim) or use data=text_files")
    return path


def _is_redirect(markup: str) -> bool:
    return markup.lstrip()[:9].lower() == "#redirect"


def _wiki_pages(path: Path) -> Iterator[tuple[str, str | None, str, int]]:
    """(page id, title, cleaned text, 0) per page; redirects and non-articles have no text."""
    from gensim.corpora.wikicorpus import extract_pages

    with bz2.open(path, "rb") as fh:
        # Pages outside namespace 0 (articles) come back with empty text and are dropped.
        for title, markup, page_id in extract_pages(fh, filter_namespaces=("0",)):
            text = "" if not markup or _is_redirect(markup) else clean_wiki_text(markup)
            yield page_id, title, text, 0


def _wiki_sample_corpus(cfg: DataConfig) -> Corpus:
    path = wiki_sample_path()

    def source() -> Iterator[tuple[str, str, int]]:
        for page_id, _title, text, n in _wiki_pages(path):
            yield page_id, text, n

    return Corpus("wiki_sample", source, min_doc_chars=cfg.min_doc_chars, max_docs=cfg.max_docs,
                  description=f"wiki_sample ({path.name})")


def _wiki_identity() -> dict[str, Any]:
    import gensim

    return {
        "source_sha256": file_sha256(wiki_sample_path()),
        "gensim": gensim.__version__,  # filter_wiki's output can change between releases
        "clean_version": WIKI_CLEAN_VERSION,
    }


def _wiki_cache_key(cfg: DataConfig) -> str:
    return stable_hash({**_wiki_identity(), "min_doc_chars": cfg.min_doc_chars,
                        "max_docs": cfg.max_docs})


def _cached_corpus(corpus: Corpus, key: str, src: Path | str, cache_root: Path) -> Corpus:
    """Stream ``corpus`` from ``<cache_root>/corpus/<key>/docs.jsonl``, writing it first if needed.

    ``key`` must change whenever the documents can: source content, cleaning, settings."""
    entry = cache_root / "corpus" / key
    docs_path = entry / "docs.jsonl"
    with entry_lock(entry, "cleaned documents"):  # concurrent runs: one cleans, the rest reuse
        stats = _load_or_write_docs(corpus, src, key, entry)

    def source() -> Iterator[tuple[str, str, int]]:
        with open(docs_path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                yield row["id"], row["text"], 0

    return Corpus(corpus.name, source, description=corpus.description, stats=stats)


def _load_or_write_docs(corpus: Corpus, src: Path | str, key: str,
                        entry: Path) -> CorpusStats:
    docs_path, meta_path = entry / "docs.jsonl", entry / "meta.json"
    stats = _load_docs_meta(docs_path, meta_path)
    if stats is None:
        log.info("cleaning %s into %s", corpus.description, entry)
        meta_path.unlink(missing_ok=True)  # no stale marker while the documents are rewritten
        with atomic_open(docs_path, "w") as fh:
            for doc in corpus:
                fh.write(json.dumps({"id": doc.doc_id, "text": doc.text}, ensure_ascii=False) + "\n")
        stats = corpus.stats
        # meta.json last: its presence (with a matching docs sha256) marks a complete entry.
        atomic_write_json(meta_path, {"key": key, "source": str(src), **asdict(stats),
                                      "docs_bytes": docs_path.stat().st_size,
                                      "docs_sha256": file_sha256(docs_path)})
    else:
        log.info("reusing cleaned documents %s", entry)
    return stats


def _load_docs_meta(docs_path: Path, meta_path: Path) -> CorpusStats | None:
    if not meta_path.exists():
        return None
    try:
        meta = read_json(meta_path)
        ok = (docs_path.stat().st_size == meta["docs_bytes"]
              and file_sha256(docs_path) == meta["docs_sha256"])
        stats = CorpusStats(int(meta["n_docs"]), int(meta["n_dropped"]),
                            int(meta["n_replaced_chars"]), str(meta["fingerprint"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("cached documents %s are unreadable (%s); rebuilding", docs_path.parent, e)
        return None
    if not ok:
        log.warning("cached documents %s fail their sha256 check; rebuilding", docs_path.parent)
        return None
    return stats


# --- vital_articles --------------------------------------------------------------------------


def _vital_pages(path: Path) -> Iterator[tuple[str, str | None, str, int]]:
    for title, text in iter_vital_articles(path):
        yield title, title, text, 0


def _vital_corpus(cfg: DataConfig) -> Corpus:
    path = vital_articles_path()  # fail at start-up, naming the install command

    def source() -> Iterator[tuple[str, str, int]]:
        for doc_id, _title, text, n in _vital_pages(path):
            yield doc_id, text, n

    return Corpus("vital_articles", source, min_doc_chars=cfg.min_doc_chars,
                  max_docs=cfg.max_docs, description=f"vital_articles ({path.name})")


# --- combined --------------------------------------------------------------------------------


def _part_source(name: str, cfg: DataConfig) -> tuple[TitledSource, dict[str, Any] | None]:
    """A part's titled candidates, and its content identity when that is cheap (a packaged
    file's sha256), which lets the combined corpus be cached; None for text_files and hf."""
    if name == "wiki_sample":
        wiki = wiki_sample_path()
        return (lambda: _wiki_pages(wiki)), _wiki_identity()
    if name == "vital_articles":
        vital = vital_articles_path()
        return (lambda: _vital_pages(vital)), {"source_sha256": file_sha256(vital),
                                               "clean_version": VITAL_CLEAN_VERSION}
    if name in ("text_files", "hf"):
        plain = (_text_files_corpus if name == "text_files" else _hf_corpus)(cfg)._source
        return (lambda: ((i, None, t, n) for i, t, n in plain())), None
    raise DataError(f"data.parts names {name!r}; each part must be one of {DATA_PART_NAMES}")


def title_key(title: str) -> str:
    """A title as MediaWiki compares titles: underscores are spaces, the first letter's case
    does not matter; the rest is exact."""
    t = " ".join(title.replace("_", " ").split())
    return t[:1].upper() + t[1:]


def _combined_corpus(cfg: DataConfig, cache_root: Path | None) -> Corpus:
    names = [str(p.name) for p in cfg.parts]
    if not names or len(set(names)) != len(names):
        raise DataError(f"data.name=combined needs data.parts, each source once (got {names}); "
                        "e.g. data=wiki_plus_vital")
    # A part's own threshold, and data.min_doc_chars as a floor under every part.
    floors = [max(int(p.min_doc_chars), int(cfg.min_doc_chars)) for p in cfg.parts]
    parts = [_part_source(n, cfg) for n in names]  # a missing part fails here, at start-up
    description = f"combined ({' + '.join(names)})"

    def source() -> Iterator[tuple[str, str, int]]:
        kept_titles: set[str] = set()
        kept_ids: dict[str, str] = {}  # doc id -> the part that yielded it
        n_duplicates = 0
        for name, floor, (candidates, _identity) in zip(names, floors, parts, strict=True):
            for doc_id, title, text, n in candidates():
                # Filtered before deduplication: a dropped stub leaves its title to a later part.
                if len(text) < floor or not text.strip():
                    yield doc_id, "", 0  # counted as dropped
                    continue
                key = None if title is None else title_key(title)
                if key is not None and key in kept_titles:
                    n_duplicates += 1
                    yield doc_id, "", 0
                    continue
                if doc_id in kept_ids:
                    raise DataError(f"{description}: document id {doc_id!r} comes from both "
                                    f"{kept_ids[doc_id]} and {name}; combine sources whose "
                                    "document ids differ")
                if key is not None:
                    kept_titles.add(key)
                kept_ids[doc_id] = name
                yield doc_id, text, n
        log.info("%s: %d documents whose title an earlier part has were dropped",
                 description, n_duplicates)

    corpus = Corpus("combined", source, min_doc_chars=int(cfg.min_doc_chars),
                    max_docs=cfg.max_docs, description=description)
    identities = [identity for _candidates, identity in parts]
    if cache_root is None or any(identity is None for identity in identities):
        return corpus
    key = stable_hash({
        "name": "combined",
        "parts": [{"name": n, "min_doc_chars": f, **identity}
                  for n, f, identity in zip(names, floors, identities, strict=True)],
        "min_doc_chars": int(cfg.min_doc_chars),
        "max_docs": cfg.max_docs,
    })
    return _cached_corpus(corpus, key, description, Path(cache_root))


# --- text_files ------------------------------------------------------------------------------


def _decode(raw: bytes, path: Path, offset: int, non_utf8: str) -> tuple[str, int]:
    """Decode UTF-8; return the text and how many U+FFFD the decoder substituted."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError as e:
        if non_utf8 != "replace":
            pos = offset + e.start
            raise DataError(
                f"{path}: invalid UTF-8 at byte offset {pos} (byte 0x{raw[e.start]:02x}); "
                "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8) or set "
                "data.non_utf8=replace to substitute U+FFFD (counted and logged)") from None
    text = raw.decode("utf-8", errors="replace")
    # U+FFFD characters that were already in the file are content, not substitutions.
    return text, text.count("\ufffd") - raw.count(_UTF8_REPLACEMENT)


# A block ends at a run of lines that are empty or ASCII whitespace only (bytes.strip()'s
# whitespace), including the newline that ends the block's last line.
_BLANK_LINES = re.compile(rb"\n(?:[ \t\r\x0b\x0c]*\n)+")
_LEADING_BLANK_LINES = re.compile(rb"(?:[ \t\r\x0b\x0c]*\n)+")
_READ_CHUNK = 1 << 24


def _file_blocks(path: Path, non_utf8: str) -> Iterator[tuple[str, str, int]]:
    """One candidate per blank-line-separated block, read in 16 MB chunks (streams big files).

    Blocks are found with one regex over each chunk and decoded whole: UTF-8 sequences never
    span a newline, so this equals decoding line by line, at a fraction of the Python work.
    """
    index = 0
    carry = b""
    carry_offset = 0  # file byte offset of carry[0]
    with open(path, "rb") as fh:
        first = True
        while True:
            chunk = fh.read(max(_READ_CHUNK, len(_UTF8_BOM)) if first else _READ_CHUNK)
            eof = not chunk
            if first:
                first = False
                if chunk.startswith(_UTF8_BOM):
                    chunk, carry_offset = chunk[len(_UTF8_BOM):], len(_UTF8_BOM)
            buf = carry + chunk
            lead = _LEADING_BLANK_LINES.match(buf)
            pos = lead.end() if lead else 0
            for m in _BLANK_LINES.finditer(buf, pos):
                if eof or m.end() < len(buf):  # a run at the end may continue
                    yield _block(buf[pos:m.start() + 1], path, carry_offset + pos, non_utf8, index)
                    index += 1
                    pos = m.end()
            carry, carry_offset = buf[pos:], carry_offset + pos
            if eof:
                break
    if carry.strip():
        yield _block(carry, path, carry_offset, non_utf8, index)


def _block(raw: bytes, path: Path, offset: int, non_utf8: str,
           index: int) -> tuple[str, str, int]:
    text, n = _decode(raw, path, offset, non_utf8)
    return f"{path.name}#{index}", text.strip(), n


def _text_files_corpus(cfg: DataConfig) -> Corpus:
    if not cfg.path:
        raise DataError("data=text_files needs data.path=<a UTF-8 .txt file or a directory of them>")
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"data.path={cfg.path} does not exist; point data.path at a UTF-8 .txt "
                        "file or a directory of .txt files")
    if root.is_file():
        def source() -> Iterator[tuple[str, str, int]]:
            yield from _file_blocks(root, cfg.non_utf8)

        description = f"text_files ({root})"
    else:
        files = sorted((p for p in root.rglob("*.txt") if p.is_file()),
                       key=lambda p: p.relative_to(root).as_posix())
        if not files:
            raise DataError(f"data.path={cfg.path} contains no .txt files; add UTF-8 .txt files "
                            "(one document per file) or point data.path at a single .txt file")

        def source() -> Iterator[tuple[str, str, int]]:
            for p in files:
                raw = p.read_bytes()
                start = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
                text, n = _decode(raw[start:], p, start, cfg.non_utf8)
                yield p.relative_to(root).as_posix(), text.strip(), n

        description = f"text_files ({root}, {len(files)} files)"
    return Corpus("text_files", source, min_doc_chars=cfg.min_doc_chars, max_docs=cfg.max_docs,
                  description=description)


# --- hf --------------------------------------------------------------------------------------

_WIKITEXT_TITLE = re.compile(r" = ([^=].*?) = ")  # " = Title = "; subsections are " = = X = = "
_WIKITEXT_HEADING = re.compile(r"^(=(?: =)*)\s+(.*?)\s+\1$")  # "= = X = =" once stripped


def group_wikitext_articles(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(title, text) per article of WikiText's raw lines, split at top-level " = Title = " lines."""
    title: str | None = None
    body: list[str] = []
    for line in lines:
        m = _WIKITEXT_TITLE.fullmatch(line.rstrip("\n"))
        if m:
            if title is not None:
                yield title, _tidy_lines(body, _WIKITEXT_HEADING)
            title, body = m.group(1), []
        elif title is not None:
            body.append(line)
    if title is not None:
        yield title, _tidy_lines(body, _WIKITEXT_HEADING)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError("data=hf needs the Hugging Face `datasets` package: "
                        "pip install -e .[hf]") from None
    return datasets


def _hf_corpus(cfg: DataConfig) -> Corpus:
    _import_datasets()  # fail at start-up, not on the first pass

    def source() -> Iterator[tuple[str, str, int]]:
        datasets = _import_datasets()
        try:
            # data_files: a builder (text, parquet, ...) on local files, the same call as the hub.
            ds = datasets.load_dataset(cfg.hf_dataset, cfg.hf_config, split=cfg.hf_split,
                                       data_files=getattr(cfg, "hf_data_files", None) or None)
        except Exception as e:  # the hub raises many types; all mean "cannot load it"
            raise DataError(
                f"cannot load Hugging Face dataset data.hf_dataset={cfg.hf_dataset} "
                f"data.hf_config={cfg.hf_config} data.hf_split={cfg.hf_split} "
                f"data.hf_data_files={getattr(cfg, 'hf_data_files', None)}: {e}; check the "
                "names, and note the first use of a hub dataset needs a network connection") from e
        if cfg.hf_text_field not in ds.column_names:
            raise DataError(f"data.hf_text_field={cfg.hf_text_field} is not a column of "
                            f"{cfg.hf_dataset}; choose one of {ds.column_names}")
        if "wikitext" in Path(cfg.hf_dataset).name.lower():
            lines = (row[cfg.hf_text_field] for row in ds)
            for i, (_title, text) in enumerate(group_wikitext_articles(lines)):
                yield f"{cfg.hf_split}#{i}", text, 0
        else:
            for i, row in enumerate(ds):
                doc_id = str(row["id"]) if "id" in row else f"{cfg.hf_split}#{i}"
                yield doc_id, str(row[cfg.hf_text_field]).strip(), 0

    return Corpus("hf", source, min_doc_chars=cfg.min_doc_chars, max_docs=cfg.max_docs,
                  description=f"hf ({cfg.hf_dataset}/{cfg.hf_config}/{cfg.hf_split})")
