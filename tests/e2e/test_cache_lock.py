"""Two runs started at once on a cold cache build each cache entry once; the other reuses it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

# A child: wait for the go file (so both start together), then run every cached data stage.
CHILD = r"""
import json, logging, sys, time
from pathlib import Path
from embinit.config import DataConfig, InitConfig, VocabConfig
from embinit.run.data.cache import build_or_load_token_cache
from embinit.run.data.corpus import open_corpus
from embinit.run.data.tokenizer import build_or_load_tokenizer
from embinit.run.init.vectors import TokenSentences, build_or_load_vectors

root, go, log_path = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
logging.basicConfig(filename=log_path, level=logging.INFO, format="%(name)s: %(message)s")
while not go.exists():
    time.sleep(0.005)
data = DataConfig(name="wiki_sample", max_docs=12, val_fraction=0.25, test_fraction=0.25)
vocab = VocabConfig(name="word", size=1000)
corpus = open_corpus(data, root)
tok, path, tok_reused = build_or_load_tokenizer(corpus, data, vocab, root)
cache = build_or_load_token_cache(corpus, data, vocab, tok, path, root)
strings = [tok.id_to_token(i) for i in range(cache.vocab_size)]
kv, vec_path, vec_reused = build_or_load_vectors(
    InitConfig(name="word2vec", epochs=1, seed=0), 16,
    lambda: TokenSentences(cache.splits["train"].ids, strings, cache.eod_id), cache.key, root)
print(json.dumps({"tokenizer_reused": tok_reused, "cache_reused": cache.reused,
                  "vectors_reused": vec_reused, "key": cache.key, "vectors": str(vec_path),
                  "train_tokens": int(len(cache.splits["train"].ids))}))
"""

BUILD_LINES = {
    "cleaned documents": "cleaning wiki_sample",
    "tokenizer": "training tokenizer",
    "token arrays": "building token arrays",
    "vectors": "training Word2Vec",
}


def test_two_runs_on_a_cold_cache_build_each_entry_once(tmp_path: Path):
    root, go = tmp_path / "cache", tmp_path / "go"
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(go), str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for log in logs]
    time.sleep(1.0)  # both children have imported and are polling for the go file
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    text = [log.read_text() for log in logs]
    for entry, line in BUILD_LINES.items():
        builds = sum(t.count(line) for t in text)
        assert builds == 1, f"{entry} built {builds} times:\n" + "\n---\n".join(text)
    # Whoever did not build reused the builder's result: the same entries, the same arrays.
    assert results[0]["key"] == results[1]["key"] and results[0]["vectors"] == results[1]["vectors"]
    assert results[0]["train_tokens"] == results[1]["train_tokens"] > 0
    for flag in ("tokenizer_reused", "cache_reused", "vectors_reused"):
        assert sorted(r[flag] for r in results) == [False, True]
    # They did run at the same time: one of them waited on a lock held by the other.
    assert "waiting for another run building" in "".join(text)
    assert not any("interrupted build" in t or "unusable" in t for t in text)
