"""Scale check of the data stages: tokenize a synthetic corpus of N GB in bounded memory.

``python -m embinit.tools.stream_check --gb 1 [--gb 0.1 ...] [--vocab bpe|word|word-unk]``
(word: the exact arm, oov=bytes; word-unk: the closed vocabulary, oov=unk) writes a
synthetic text corpus of the requested size (Zipf-distributed words from a fixed word list
plus a trickle of never-seen words, in lines, sentences and blank-line-separated documents;
generated chunk by chunk), then runs the real data stages on it in a fresh subprocess:
``open_corpus`` (data=text_files), ``build_or_load_tokenizer``, ``build_or_load_oov_curve``
and ``build_or_load_token_cache``. It prints one JSON line per size with the child's peak
resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), wall times per stage and the
throughputs: ``mb_per_s`` (the token cache stage, what every arm pays: reading the splits,
encoding and all its bookkeeping); ``encode_mb_per_s`` and ``encode_fast_mb_per_s`` (bare
``Tokenizer.encode_batch`` and ``encode_batch_fast`` on the same documents in the same
process and the cache's batches, split by split, timing the encode calls alone); and
``encode_calls_mb_per_s``, the bare rate of the very calls the cache makes on each split
(`cache.encode_method`: ``encode_batch_fast`` where ids suffice, i.e. all of bpe and word's
train; ``encode_batch`` for word's val/test word ids and word-unk's offsets). ``ratio`` =
mb_per_s / encode_calls_mb_per_s (the goal: >= 0.8); ``ratio_vs_encode_batch`` and
``ratio_vs_encode_batch_fast`` divide by one call's rate for every split. The one-pass build
can encode a train, a val and a test batch at once, so a ratio can exceed 1. The word OOV
curve is a corpus statistic that only the first arm on a corpus builds (``oov_curve_s``);
``first_arm_ratio`` charges it to the token cache as well.

``--word2vec SPEC`` (repeatable; ``1``, ``2``, ``2:file``: workers, and gensim's
``corpus_file`` mode) then trains Word2Vec on the arm's train token stream the way
``init=word2vec`` does (`embinit.run.init.vectors`), ``--w2v-epochs`` epochs (default 1),
and reports per spec the wall time (vocabulary scan + epochs; plus writing the sentence
file in file mode) and ``words_per_s`` = train tokens x epochs / training seconds.

If the stages stream, peak RSS stays roughly flat as the corpus grows; what may still grow
is anything keyed by word type (the tokenizer trainer's word counts, the cache's surface
and OOV-curve counters), which follows the number of distinct words, not the bytes.
Not part of the default test run: at 1 GB it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_WORDS = 1 << 20
# --vocab choice -> the config overrides of that arm's vocabulary.
VOCAB_OVERRIDES = {"bpe": ["vocab=bpe"], "word": ["vocab=word"],
                   "word-unk": ["vocab=word", "vocab.oov=unk"]}
# Separator after each word: space, sentence end, line end, document end (blank line).
_SEPARATORS = (" ", ". ", "\n", "\n\n")
_SEPARATOR_P = (0.86, 0.06, 0.0788, 0.0012)  # ~830 words (~6 KB) per document


def _random_word(rng: np.random.Generator, letters: np.ndarray) -> str:
    return bytes(rng.choice(letters, size=int(rng.integers(2, 11)))).decode("ascii")


def write_synthetic_corpus(
    path: Path, n_bytes: int, *, seed: int = 0, n_words: int = 50_000, zipf_a: float = 1.1,
    novel_rate: float = 1e-3,
) -> dict[str, int]:
    """Write >= n_bytes of word-like text to `path`, one chunk of words at a time.

    Word ranks follow a Zipf law (p(r) ~ r^-zipf_a) over `n_words` random lowercase words;
    a share `novel_rate` of positions get a fresh random word instead, so the number of
    word types keeps growing with the corpus as in real text.
    """
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    words = sorted({_random_word(rng, letters) for _ in range(n_words)})
    rng.shuffle(words)  # rank order independent of spelling
    cdf = np.cumsum(1.0 / np.arange(1, len(words) + 1) ** zipf_a)
    cdf /= cdf[-1]
    # Every (word, separator) pair as one string: a chunk is one fancy-index and one join.
    table = np.array([w + s for s in _SEPARATORS for w in words], dtype=object)
    written = n_docs = 0
    with open(path, "w", encoding="ascii") as fh:
        while written < n_bytes:
            idx = np.minimum(np.searchsorted(cdf, rng.random(CHUNK_WORDS)), len(words) - 1)
            sep = rng.choice(len(_SEPARATORS), size=CHUNK_WORDS, p=_SEPARATOR_P)
            pieces = table[sep * len(words) + idx]
            for i in np.flatnonzero(rng.random(CHUNK_WORDS) < novel_rate):
                pieces[i] = _random_word(rng, letters) + _SEPARATORS[sep[i]]
            text = "".join(pieces.tolist())
            fh.write(text)
            written += len(text)
            n_docs += int((sep == 3).sum())
        fh.write("\n")
    return {"bytes": written + 1, "docs": n_docs + 1}


def _peak_rss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024  # Linux reports KiB


def run_stages(corpus_path: Path, root: Path, vocab: str, word2vec: list[str] | None = None,
               w2v_epochs: int = 1) -> dict[str, Any]:
    """The real data stages on `corpus_path`, composed from the real config (child side)."""
    from hydra import compose, initialize_config_dir

    from embinit.config import register_configs
    from embinit.params import CONF_DIR
    from embinit.run.data.cache import build_or_load_token_cache, encode_method
    from embinit.run.data.corpus import open_corpus
    from embinit.run.data.oov import build_or_load_oov_curve
    from embinit.run.data.split import SPLITS
    from embinit.run.data.tokenizer import build_or_load_tokenizer

    rss_start = _peak_rss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["data=text_files", f"data.path={corpus_path}",
                                           *VOCAB_OVERRIDES[vocab], f"paths.root={root}",
                                           "init=word2vec"])
    cache_root = root / "cache"
    t0 = time.perf_counter()
    corpus = open_corpus(cfg.data, cache_root)
    corpus.fingerprint()  # the first full pass (content hash), shared by the later keys
    t1 = time.perf_counter()
    tokenizer, tok_path, _ = build_or_load_tokenizer(corpus, cfg.data, cfg.vocab, cache_root)
    t2 = time.perf_counter()
    build_or_load_oov_curve(corpus, cfg.data, cfg.vocab, cache_root)
    t_curve = time.perf_counter()
    cache = build_or_load_token_cache(corpus, cfg.data, cfg.vocab, tokenizer, tok_path, cache_root)
    t3 = time.perf_counter()
    bare = {m: bare_encode_seconds(corpus, tokenizer, cfg.data, method=m)
            for m in ("encode_batch", "encode_batch_fast")}
    calls = {split: encode_method(cfg.vocab, split) for split in SPLITS}
    stats = {k: v.stats for k, v in cache.splits.items()}
    dim = int(cfg.init.dim or cfg.model.d_model)  # as the pipeline sizes Word2Vec
    w2v = [word2vec_timing(cache, tokenizer, cfg.init, dim, spec, w2v_epochs, root)
           for spec in word2vec or []]
    return {
        "rss_after_imports_mb": round(rss_start / 2**20, 1),
        "docs": corpus.n_docs,
        "text_bytes": sum(s.n_bytes for s in stats.values()),
        "tokens": sum(s.n_tokens for s in stats.values()),
        "vocab_size": cache.vocab_size,
        "fingerprint_s": round(t1 - t0, 1),
        "tokenizer_train_s": round(t2 - t1, 1),
        "oov_curve_s": round(t_curve - t2, 2),
        "token_cache_s": round(t3 - t_curve, 2),
        "encode_s": round(sum(bare["encode_batch"].values()), 2),
        "encode_fast_s": round(sum(bare["encode_batch_fast"].values()), 2),
        # The bare time of the very calls the cache makes, split by split: its floor.
        "encode_calls_s": round(sum(bare[m][split] for split, m in calls.items()), 2),
        "cache_encode_calls": calls,
        "bare_split_s": {m: {split: round(t, 2) for split, t in by_split.items()}
                         for m, by_split in bare.items()},
        **({"word2vec": w2v} if w2v else {}),
    }


def word2vec_timing(cache: Any, tokenizer: Any, init_cfg: Any, dim: int, spec: str,
                    epochs: int, root: Path) -> dict[str, Any]:
    """Train Word2Vec (the word2vec arm's settings ``init_cfg``; ``spec`` = workers[:file])
    on the train token stream and time it."""
    from omegaconf import OmegaConf

    from embinit.run.init.vectors import TokenSentences, train_word2vec, write_corpus_file

    workers, _, mode = spec.partition(":")
    file_mode = mode == "file"
    cfg = OmegaConf.merge(init_cfg, {"workers": int(workers), "epochs": epochs,
                                     "corpus_file": file_mode})
    train = cache.splits["train"]
    strings = [tokenizer.id_to_token(i) for i in range(cache.vocab_size)]
    sentences = TokenSentences(train.ids, strings, cache.eod_id)
    n_tokens = int(len(train.ids) - train.stats.n_docs - 1)  # the EODs are not words
    write_s = 0.0
    corpus_path = None
    if file_mode:
        corpus_path = root / "w2v_sentences.txt"
        t = time.perf_counter()
        write_corpus_file(sentences, corpus_path)
        write_s = time.perf_counter() - t
    t = time.perf_counter()
    kv = train_word2vec(None if file_mode else sentences, cfg, dim, corpus_file=corpus_path)
    train_s = time.perf_counter() - t
    if corpus_path is not None:
        corpus_path.unlink()
    return {"workers": int(workers), "corpus_file": file_mode, "epochs": epochs,
            "dim": dim, "train_tokens": n_tokens, "vectors": len(kv),
            "write_s": round(write_s, 1), "train_s": round(train_s, 1),
            "words_per_s": round(n_tokens * epochs / train_s)}


def bare_encode_seconds(corpus: Any, tokenizer: Any, data_cfg: Any, batch_size: int = 256,
                        method: str = "encode_batch") -> dict[str, float]:
    """Seconds per split spent in ``tokenizer.<method>`` alone, over every document in the
    cache's batches (a split's documents in corpus order; the encodings are dropped outside
    the timed call)."""
    from embinit.run.data.split import SPLITS, SplitAssigner

    encode = getattr(tokenizer, method)
    spent = dict.fromkeys(SPLITS, 0.0)
    pending: dict[str, list[str]] = {split: [] for split in SPLITS}

    def timed(split: str) -> None:
        t = time.perf_counter()
        encode(pending[split], add_special_tokens=False)
        spent[split] += time.perf_counter() - t
        pending[split] = []

    assign = SplitAssigner.of(data_cfg)
    for doc in corpus:
        split = assign(doc.doc_id)
        pending[split].append(doc.text)
        if len(pending[split]) == batch_size:
            timed(split)
    for split in SPLITS:
        if pending[split]:
            timed(split)
    return spent


def check(gb: float, vocab: str, workdir: Path, seed: int = 0,
          word2vec: list[str] | None = None, w2v_epochs: int = 1) -> dict[str, Any]:
    """Generate `gb` GB of text in `workdir`, run the stages in a child, measure it."""
    corpus_path = workdir / "corpus.txt"
    t0 = time.perf_counter()
    written = write_synthetic_corpus(corpus_path, int(gb * 1e9), seed=seed)
    gen_s = time.perf_counter() - t0
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t1 = time.perf_counter()
    extra = [a for spec in word2vec or [] for a in ("--word2vec", spec)]
    proc = subprocess.run(
        [sys.executable, "-m", "embinit.tools.stream_check", "--child", str(corpus_path),
         "--root", str(workdir), "--vocab", vocab, "--w2v-epochs", str(w2v_epochs), *extra],
        stdout=subprocess.PIPE, text=True, check=True)
    wall = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        raise RuntimeError("a previous child had a higher peak RSS; run one size per process")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    mb = child["text_bytes"] / 1e6
    return {
        "gb": gb,
        "vocab": vocab,
        "corpus_file_bytes": written["bytes"],
        "generate_s": round(gen_s, 1),
        **child,
        "stages_wall_s": round(wall, 1),
        "peak_rss_mb": round(_peak_rss_bytes(peak) / 2**20, 1),
        "stages_mb_per_s": round(mb / wall, 2),
        "mb_per_s": round(mb / child["token_cache_s"], 2),
        "encode_mb_per_s": round(mb / child["encode_s"], 2),
        "encode_fast_mb_per_s": round(mb / child["encode_fast_s"], 2),
        "encode_calls_mb_per_s": round(mb / child["encode_calls_s"], 2),
        "ratio": round(child["encode_calls_s"] / child["token_cache_s"], 3),
        "ratio_vs_encode_batch": round(child["encode_s"] / child["token_cache_s"], 3),
        "ratio_vs_encode_batch_fast": round(child["encode_fast_s"] / child["token_cache_s"], 3),
        "first_arm_ratio": round(child["encode_calls_s"]
                                 / (child["token_cache_s"] + child["oov_curve_s"]), 3),
    }


def _positive_gb(text: str) -> float:
    try:
        gb = float(text)
    except ValueError:
        gb = float("nan")
    if not gb > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a corpus size in GB above 0, e.g. 1")
    return gb


def _w2v_spec(spec: str) -> str:
    workers, sep, mode = spec.partition(":")
    if not workers.isdigit() or int(workers) < 1 or (sep and mode != "file"):
        raise argparse.ArgumentTypeError(
            f"{spec!r}: give the number of workers, optionally with :file (e.g. 1, 2, 2:file)")
    return spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embinit.tools.stream_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=_positive_gb, action="append",
                   help="corpus size in GB (repeat for several sizes; default 1)")
    p.add_argument("--vocab", choices=tuple(VOCAB_OVERRIDES), default="bpe")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the corpus and caches go (default: a temp dir, removed after)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--word2vec", action="append", metavar="WORKERS[:file]", type=_w2v_spec,
                   help="also time Word2Vec on the train tokens (repeatable: 1, 2, 2:file)")
    p.add_argument("--w2v-epochs", type=int, default=1)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        print(json.dumps(run_stages(args.child, args.root, args.vocab, args.word2vec,
                                    args.w2v_epochs)))
        return 0
    sizes = args.gb or [1.0]
    if len(sizes) > 1:  # RUSAGE_CHILDREN is a max over all children: one size per process
        for gb in sizes:
            cmd = [sys.executable, "-m", "embinit.tools.stream_check", "--gb", str(gb),
                   "--vocab", args.vocab, "--seed", str(args.seed),
                   "--w2v-epochs", str(args.w2v_epochs),
                   *[a for spec in args.word2vec or [] for a in ("--word2vec", spec)]]
            if args.workdir:
                cmd += ["--workdir", str(args.workdir / f"{gb}gb")]
            subprocess.run(cmd, check=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="embinit-stream-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(check(sizes[0], args.vocab, workdir, args.seed, args.word2vec,
                               args.w2v_epochs)), flush=True)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
