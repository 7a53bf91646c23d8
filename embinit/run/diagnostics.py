"""Embedding diagnostics: what the token-embedding matrix knows about words, at init and at the end.

Called by the pipeline at the start and at the end of a run; the result is stored as
``summary.diagnostics`` (see `embinit.record`). numpy and scipy only, so it runs wherever the
record is written, and it takes a few hundred milliseconds for V=16384, d=128.

- Word similarity: WordSim353 and SimLex-999 (Spearman rho between the cosine of the two word
  vectors and the human score, over the covered pairs).
- Analogies: the Google analogy set, 3CosAdd (b - a + c) on unit vectors. The candidates are
  the distinct covered words of the analogy file itself, minus the question's three words: a
  closed candidate set that depends only on which of the file's words an arm covers, so a
  large vocabulary is not penalised by more distractors. (gensim's ``restrict_vocab`` is a
  different restriction: the model's N most frequent words.) Accuracy is over covered
  questions.
- Drift: mean cosine between each row at init and at the end, separately for rows that came
  from vectors and for the other rows that occur in training.
- Nearest neighbours of a fixed list of probe words.

What "the vector of a word" is depends on the arm (`word_index`):

- word arms: a word is covered when it is exactly one word row of the vocabulary (trying the
  word as given, then lowercase, then Capitalized); its vector is that row.
- bpe: a word is the MEAN of the rows of the tokens of " " + word (the leading space is how a
  word inside running text is tokenized). Every word is covered, so BPE coverage is 100%
  by construction; its scores measure the composed vectors, not single rows. Composition
  alone solves some analogies: words that share pieces ("walk"/"walking", "swim"/"swimming")
  share rows, so even random rows score well above chance (measured: 0.15 of the questions
  with random rows and a BPE 8192 vocabulary of the wiki excerpt, 0.001 for a word arm).
  Compare BPE scores with the same arm at init, never with a word arm's absolute number.

The benchmark files ship in gensim's test data, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from tokenizers import Tokenizer

from embinit.config import VocabConfig
from embinit.run.data.tokenizer import EOD_ID, FIRST_WORD_ID, UNK_ID, vector_lookup_keys

# Common words with unambiguous neighbours (royalty, countries, places, conflict, arts,
# numbers, months, sentiment, technology, geography), all frequent in Wikipedia text.
PROBES: tuple[str, ...] = ("king", "france", "city", "war", "music", "three", "january",
                           "good", "computer", "river")
MIN_PAIRS = 10  # below this many covered pairs a rank correlation means nothing
_EPS = 1e-12  # guards the norm of an all-zero row (its cosine with anything is then 0)
_CHUNK = 4096  # analogy questions per matmul: ~4096 x candidates floats at a time

Pair = tuple[str, str, float]
Question = tuple[str, str, str, str]
WordIndex = Callable[[str], list[int] | None]


@dataclass(frozen=True)
class Benchmarks:
    """The three benchmark sets, parsed."""

    wordsim353: tuple[Pair, ...]  # (word1, word2, human score)
    simlex999: tuple[Pair, ...]
    analogy: tuple[Question, ...]  # (a, b, c, d): a is to b as c is to d


def parse_pairs(lines: Sequence[str]) -> tuple[Pair, ...]:
    """Tab-separated ``word1 word2 score`` lines; '#' lines are comments."""
    pairs = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        w1, w2, score = line.rstrip("\n").split("\t")[:3]
        pairs.append((w1.strip(), w2.strip(), float(score)))
    return tuple(pairs)


def parse_analogies(lines: Sequence[str]) -> tuple[Question, ...]:
    """``a b c d`` lines; ': section' lines only name the section and are skipped."""
    questions = []
    for line in lines:
        if not line.strip() or line.startswith(":"):
            continue
        a, b, c, d = line.split()
        questions.append((a, b, c, d))
    return tuple(questions)


@lru_cache(maxsize=1)
def load_benchmarks() -> Benchmarks:
    """WordSim353, SimLex-999 and the Google analogy set from gensim's test data (cached)."""
    from gensim.test.utils import datapath  # gensim import is slow: only when first needed

    def read(name: str) -> list[str]:
        with open(datapath(name), encoding="utf-8") as f:
            return f.readlines()

    return Benchmarks(wordsim353=parse_pairs(read("wordsim353.tsv")),
                      simlex999=parse_pairs(read("simlex999.txt")),
                      analogy=parse_analogies(read("questions-words.txt")))


def word_index(tokenizer: Tokenizer, vocab_name: str, oov: str | None) -> WordIndex:
    """A function word -> the rows whose mean represents it, or None if the arm lacks the word.

    word (oov=bytes): " " + word must encode to exactly one word row (id >= FIRST_WORD_ID, not a
    byte row); word (oov=unk): word must encode to one token other than <unk>/EOD. Both try the
    word as given, then lowercase, then Capitalized. bpe: the token ids of " " + word (always
    covered; the caller averages their rows). Results are memoised per word.
    """
    memo: dict[str, list[int] | None] = {}

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    if vocab_name == "bpe":
        def lookup(word: str) -> list[int] | None:
            ids = encode(" " + word)
            return ids or None
    elif vocab_name == "word":
        closed = oov == "unk"

        def is_word_row(i: int) -> bool:
            return i not in (EOD_ID, UNK_ID) if closed else i >= FIRST_WORD_ID

        def lookup(word: str) -> list[int] | None:
            for form in dict.fromkeys((word, word.lower(), word.capitalize())):
                ids = encode(form if closed else " " + form)
                if len(ids) == 1 and is_word_row(ids[0]):
                    return ids
            return None
    else:
        raise ValueError(f"vocab_name={vocab_name!r} is unknown; expected bpe or word")

    def index(word: str) -> list[int] | None:
        if word not in memo:
            memo[word] = lookup(word)
        return memo[word]

    return index


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def _vectors(matrix: np.ndarray, words: Sequence[str], index: WordIndex
             ) -> tuple[np.ndarray, np.ndarray]:
    """(vectors of the covered words (n_covered x d), covered mask over ``words``)."""
    rows = [index(w) for w in words]
    covered = np.array([r is not None for r in rows], dtype=bool)
    vecs = np.zeros((len(words), matrix.shape[1]), dtype=np.float64)
    for k, r in enumerate(rows):
        if r is not None:
            vecs[k] = matrix[r[0]] if len(r) == 1 else matrix[r].mean(axis=0)
    return vecs[covered], covered


def similarity_spearman(matrix: np.ndarray, pairs: Sequence[Pair], index: WordIndex
                        ) -> tuple[float | None, int, int]:
    """(Spearman rho of cosine vs human score, covered pairs, all pairs).

    A pair is covered when both words are; rho is None below MIN_PAIRS covered pairs or when
    either side is constant (rho undefined).
    """
    n_total = len(pairs)
    if not pairs:
        return None, 0, 0
    v1, c1 = _vectors(matrix, [p[0] for p in pairs], index)
    v2, c2 = _vectors(matrix, [p[1] for p in pairs], index)
    both = c1 & c2
    n = int(both.sum())
    if n < MIN_PAIRS:
        return None, n, n_total
    # Re-select the pairs where both words are covered from each side's covered subset.
    cos = np.sum(_unit(v1[both[c1]]) * _unit(v2[both[c2]]), axis=1)
    human = np.array([p[2] for p in pairs], dtype=np.float64)[both]
    rho = spearmanr(cos, human).statistic
    return (None if not np.isfinite(rho) else float(rho)), n, n_total


def analogy_accuracy(matrix: np.ndarray, questions: Sequence[Question], index: WordIndex
                     ) -> tuple[float | None, int, int]:
    """(3CosAdd accuracy on covered questions, covered questions, all questions).

    Candidates: the distinct covered words of ``questions`` (words that share the same rows
    are one candidate), minus the question's a, b and c. A question is covered when all four
    words are. The answer is argmax_x cos(x, b - a + c) over unit vectors, as gensim's
    ``most_similar(positive=[b, c], negative=[a])``.
    """
    n_total = len(questions)
    words = list(dict.fromkeys(w for q in questions for w in q))
    cand_of_rows: dict[tuple[int, ...], int] = {}
    cand_of_word: dict[str, int] = {}
    for w in words:
        r = index(w)
        if r is not None:
            cand_of_word[w] = cand_of_rows.setdefault(tuple(r), len(cand_of_rows))
    covered = [q for q in questions if all(w in cand_of_word for w in q)]
    if not covered:
        return None, 0, n_total
    rows = list(cand_of_rows)
    # float32 halves the matmul; argmax over ~1k candidates does not need more precision.
    cands = _unit(np.stack([matrix[list(r)].mean(axis=0) for r in rows])).astype(np.float32)
    ids = np.array([[cand_of_word[w] for w in q] for q in covered], dtype=np.int64)
    correct = 0
    for start in range(0, len(ids), _CHUNK):
        q = ids[start:start + _CHUNK]
        target = cands[q[:, 1]] - cands[q[:, 0]] + cands[q[:, 2]]
        # The norm of the target does not change the argmax, so no second normalisation.
        scores = target @ cands.T
        at = np.arange(len(q))
        for col in range(3):
            scores[at, q[:, col]] = -np.inf
        correct += int(np.sum(scores.argmax(axis=1) == q[:, 3]))
    return correct / len(covered), len(covered), n_total


def row_drift(init: np.ndarray, final: np.ndarray, rows_mask: np.ndarray) -> float | None:
    """Mean cosine between each masked row at init and at the end; None for an empty mask.

    1 = the rows kept their direction; 0 = they turned orthogonal to where they started.
    """
    mask = np.asarray(rows_mask, dtype=bool)
    if not mask.any():
        return None
    cos = np.sum(_unit(init[mask]) * _unit(final[mask]), axis=1)
    return float(cos.mean())


def neighbours(matrix: np.ndarray, probes: Sequence[str], index: WordIndex,
               labels: Sequence[str | None], k: int = 5) -> dict[str, list[str] | None]:
    """The k nearest rows (cosine) of each probe word, as labels; None for an uncovered probe.

    Only rows with a label are candidates (``labels[i] is None`` excludes specials and byte
    rows), and the probe's own rows are left out.
    """
    usable = np.array([lab is not None for lab in labels], dtype=bool)
    cand = np.flatnonzero(usable)
    unit = _unit(matrix[cand])
    out: dict[str, list[str] | None] = {}
    for probe in probes:
        r = index(probe)
        if r is None:
            out[probe] = None
            continue
        scores = unit @ _unit(matrix[r].mean(axis=0))
        scores[np.isin(cand, r)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        out[probe] = [str(labels[cand[t]]) for t in top if np.isfinite(scores[t])]
    return out


def row_labels(tokenizer: Tokenizer, vocab_name: str, oov: str | None) -> list[str | None]:
    """Readable text of each row for neighbour lists; None for rows that are not words.

    Byte-level tokens are decoded and stripped ("Ġthe" -> "the"); specials, <unk>, the 256
    byte rows of word(oov=bytes) and tokens that decode to whitespace or a partial UTF-8
    character get None.
    """
    cfg = VocabConfig(name=vocab_name, oov=oov or "bytes")
    labels = vector_lookup_keys(tokenizer, cfg, external=True)
    labels[EOD_ID] = labels[UNK_ID] = None  # the closed vocabulary keys <unk>: not a word
    return labels


def embedding_diagnostics(init: np.ndarray, final: np.ndarray | None, tokenizer: Tokenizer,
                          vocab_name: str, oov: str | None, from_vectors: np.ndarray,
                          token_counts: np.ndarray | None) -> dict[str, Any]:
    """The ``summary.diagnostics`` section for one run.

    Keys: wordsim353_init/_final, simlex999_init/_final (Spearman rho or None), analogy_init/
    _final (accuracy or None), their coverage counts wordsim353_n, simlex999_n, analogy_n
    (covered items; the same at init and at the end), drift_covered (rows from vectors) and
    drift_fallback (the other rows that occur in training, ``token_counts > 0`` when given:
    a row never seen only moves by weight decay, so it would flatter the drift), and
    neighbours {"init": {probe: [words]}, "final": ... or None}. Everything ``_final`` and the
    drifts are None when ``final`` is None.
    """
    init = np.asarray(init)
    if final is not None:
        final = np.asarray(final)
        if final.shape != init.shape:
            raise ValueError(f"final has shape {final.shape}, init {init.shape}")
    bench = load_benchmarks()
    index = word_index(tokenizer, vocab_name, oov)  # memoised: both matrices share lookups
    labels = row_labels(tokenizer, vocab_name, oov)
    out: dict[str, Any] = {}
    for name, pairs in (("wordsim353", bench.wordsim353), ("simlex999", bench.simlex999)):
        out[f"{name}_init"], out[f"{name}_n"], _ = similarity_spearman(init, pairs, index)
        out[f"{name}_final"] = (None if final is None
                                else similarity_spearman(final, pairs, index)[0])
    out["analogy_init"], out["analogy_n"], _ = analogy_accuracy(init, bench.analogy, index)
    out["analogy_final"] = (None if final is None
                            else analogy_accuracy(final, bench.analogy, index)[0])
    covered = np.asarray(from_vectors, dtype=bool)
    seen = (np.ones(len(covered), dtype=bool) if token_counts is None
            else np.asarray(token_counts) > 0)
    if final is None:
        out["drift_covered"] = out["drift_fallback"] = None
    else:
        out["drift_covered"] = row_drift(init, final, covered)
        out["drift_fallback"] = row_drift(init, final, ~covered & seen)
    out["neighbours"] = {
        "init": neighbours(init, PROBES, index, labels),
        "final": None if final is None else neighbours(final, PROBES, index, labels),
    }
    return out
