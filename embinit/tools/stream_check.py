"""Scale check of the data stages: tokenize a synthetic corpus of N GB in bounded memory.

``python -m embinit.tools.stream_check --gb 1 [--gb 0.1 ...] [--vocab bpe|word]`` writes a
synthetic text corpus of the requested size (Zipf-distributed words from a fixed word list
plus a trickle of never-seen words, in lines, sentences and blank-line-separated documents;
generated chunk by chunk), then runs the real data stages on it in a fresh subprocess:
``open_corpus`` (data=text_files), ``build_or_load_tokenizer`` and
``build_or_load_token_cache``. It prints one JSON line per size with the child's peak
resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), wall times per stage and the
throughputs: ``mb_per_s`` (the token cache stage: reading the splits, encoding and all its
bookkeeping), ``encode_mb_per_s`` (bare ``Tokenizer.encode_batch`` on the same documents in
the same process and batches, timing the encode calls alone: the tokenizer's limit) and
``ratio`` = mb_per_s / encode_mb_per_s (the goal: >= 0.8).

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


def run_stages(corpus_path: Path, root: Path, vocab: str) -> dict[str, Any]:
    """The real data stages on `corpus_path`, composed from the real config (child side)."""
    from hydra import compose, initialize_config_dir

    from embinit.config import register_configs
    from embinit.params import CONF_DIR
    from embinit.run.data.cache import build_or_load_token_cache
    from embinit.run.data.corpus import open_corpus
    from embinit.run.data.tokenizer import build_or_load_tokenizer

    rss_start = _peak_rss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["data=text_files", f"data.path={corpus_path}",
                                           f"vocab={vocab}", f"paths.root={root}"])
    cache_root = root / "cache"
    t0 = time.perf_counter()
    corpus = open_corpus(cfg.data, cache_root)
    corpus.fingerprint()  # the first full pass (content hash), shared by the later keys
    t1 = time.perf_counter()
    tokenizer, tok_path, _ = build_or_load_tokenizer(corpus, cfg.data, cfg.vocab, cache_root)
    t2 = time.perf_counter()
    cache = build_or_load_token_cache(corpus, cfg.data, cfg.vocab, tokenizer, tok_path, cache_root)
    t3 = time.perf_counter()
    encode_s = bare_encode_seconds(corpus, tokenizer)
    stats = {k: v.stats for k, v in cache.splits.items()}
    return {
        "rss_after_imports_mb": round(rss_start / 2**20, 1),
        "docs": corpus.n_docs,
        "text_bytes": sum(s.n_bytes for s in stats.values()),
        "tokens": sum(s.n_tokens for s in stats.values()),
        "vocab_size": cache.vocab_size,
        "fingerprint_s": round(t1 - t0, 1),
        "tokenizer_train_s": round(t2 - t1, 1),
        "token_cache_s": round(t3 - t2, 2),
        "encode_s": round(encode_s, 2),
    }


def bare_encode_seconds(corpus: Any, tokenizer: Any, batch_size: int = 256) -> float:
    """Seconds spent in ``encode_batch`` alone over every document, in the cache's batches."""
    spent = 0.0
    batch: list[str] = []
    for doc in corpus:
        batch.append(doc.text)
        if len(batch) == batch_size:
            t = time.perf_counter()
            tokenizer.encode_batch(batch, add_special_tokens=False)
            spent += time.perf_counter() - t
            batch = []
    if batch:
        t = time.perf_counter()
        tokenizer.encode_batch(batch, add_special_tokens=False)
        spent += time.perf_counter() - t
    return spent


def check(gb: float, vocab: str, workdir: Path, seed: int = 0) -> dict[str, Any]:
    """Generate `gb` GB of text in `workdir`, run the stages in a child, measure it."""
    corpus_path = workdir / "corpus.txt"
    t0 = time.perf_counter()
    written = write_synthetic_corpus(corpus_path, int(gb * 1e9), seed=seed)
    gen_s = time.perf_counter() - t0
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t1 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "embinit.tools.stream_check", "--child", str(corpus_path),
         "--root", str(workdir), "--vocab", vocab],
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
        "ratio": round(child["encode_s"] / child["token_cache_s"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embinit.tools.stream_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=float, action="append",
                   help="corpus size in GB (repeat for several sizes; default 1)")
    p.add_argument("--vocab", choices=("bpe", "word"), default="bpe")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the corpus and caches go (default: a temp dir, removed after)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        print(json.dumps(run_stages(args.child, args.root, args.vocab)))
        return 0
    sizes = args.gb or [1.0]
    if len(sizes) > 1:  # RUSAGE_CHILDREN is a max over all children: one size per process
        for gb in sizes:
            cmd = [sys.executable, "-m", "embinit.tools.stream_check", "--gb", str(gb),
                   "--vocab", args.vocab, "--seed", str(args.seed)]
            if args.workdir:
                cmd += ["--workdir", str(args.workdir / f"{gb}gb")]
            subprocess.run(cmd, check=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="embinit-stream-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(check(sizes[0], args.vocab, workdir, args.seed)), flush=True)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
