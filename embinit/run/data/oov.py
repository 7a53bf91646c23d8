"""OOV-curve stage: the share of val words outside the k most frequent train words, per k.

The curve describes the corpus and its word splitting, not an arm: it is built once per
(corpus, split, word splitting) and shared by every arm through
``<cache>/oov_curves/<key>.json`` (under the entry's build lock, so runs started together
count once). It is its own stage: the pipeline builds it before the token cache (which also
asks for it, a cache hit then), so an arm's token cache costs reading, encoding and its own
bookkeeping only, and the first arm on a cold corpus reads it once more for the curve;
`embinit.tools.stream_check` times the two separately. Counting is Python (`accounting.WordTally`: whitespace chunks counted in C, each
distinct chunk split into words once), several times the tokenizer's encode rate.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from embinit.config import DataConfig, VocabConfig
from embinit.run.data import pretokenize
from embinit.run.data.accounting import WordTally, oov_curve
from embinit.run.data.corpus import Corpus
from embinit.run.data.locking import entry_lock
from embinit.run.data.split import SplitAssigner
from embinit.run.data.tokenizer import is_closed_vocab, pretokenizer_name, split_fields
from embinit.storage import atomic_write_json, read_json, stable_hash

log = logging.getLogger(__name__)

OOV_CURVE_SIZES = (1000, 2000, 5000, 10000, 20000, 50000, 100000)


def oov_curve_path(cache_root: Path, corpus: Corpus, data_cfg: DataConfig,
                   vocab_cfg: VocabConfig) -> Path:
    closed = is_closed_vocab(vocab_cfg)
    name = pretokenizer_name(vocab_cfg)
    key = stable_hash({
        "corpus": corpus.fingerprint(), "data": split_fields(data_cfg),
        "sizes": list(OOV_CURVE_SIZES),
        # the words as the closed word tokenizer would see them
        "lowercase": closed and bool(vocab_cfg.lowercase), "pretokenizer": name,
        "nltk": pretokenize.nltk_version() if name != "whitespace" else None,
    })
    return Path(cache_root) / "oov_curves" / f"{key}.json"


def _read_curve(path: Path) -> list[dict[str, float]] | None:
    """The cached curve, if it is there and matches the hash saved with it (an edited or
    damaged file, or one from before the hash, is counted again)."""
    try:
        saved = read_json(path)
        if (saved.get("sizes") == list(OOV_CURVE_SIZES)
                and saved.get("sha256") == stable_hash(saved["curve"], length=64)):
            return list(saved["curve"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if path.exists():
        log.warning("cached OOV curve %s is unreadable or fails its hash; counting again", path)
    return None


def count_split_words(corpus: Corpus, data_cfg: DataConfig,
                      vocab_cfg: VocabConfig) -> dict[str, Counter[str]]:
    """Word counts of the train and val documents, in one pass over the corpus."""
    closed = is_closed_vocab(vocab_cfg)
    lowercase = closed and bool(vocab_cfg.lowercase)
    name = pretokenizer_name(vocab_cfg)
    assign = SplitAssigner.of(data_cfg)
    tallies = {"train": WordTally(lowercase, name), "val": WordTally(lowercase, name)}
    for doc in corpus:
        tally = tallies.get(assign(doc.doc_id))
        if tally is not None:  # test words are never looked at
            tally.update((doc.text,))
    counts = {split: tally.counts() for split, tally in tallies.items()}
    return counts


def build_or_load_oov_curve(corpus: Corpus, data_cfg: DataConfig, vocab_cfg: VocabConfig,
                            cache_root: Path) -> list[dict[str, float]]:
    """The corpus's word OOV curve (`accounting.oov_curve` at `OOV_CURVE_SIZES`), cached."""
    path = oov_curve_path(cache_root, corpus, data_cfg, vocab_cfg)
    with entry_lock(path.with_suffix(""), "OOV curve"):
        curve = _read_curve(path)
        if curve is not None:
            return curve
        t0 = time.perf_counter()
        counts = count_split_words(corpus, data_cfg, vocab_cfg)
        curve = oov_curve(counts["train"], counts["val"], OOV_CURVE_SIZES)
        atomic_write_json(path, {"sizes": list(OOV_CURVE_SIZES), "curve": curve,
                                 "sha256": stable_hash(curve, length=64)})
        log.info("OOV curve: %d train and %d val word types counted in %.1fs",
                 len(counts["train"]), len(counts["val"]), time.perf_counter() - t0)
    return curve
