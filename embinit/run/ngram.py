"""Interpolated Kneser–Ney n-gram baselines, counted from the train stream in pure numpy.

A split is a flat stream [EOD] doc1 [EOD] doc2 ... [EOD]; target t is ids[t + 1], exactly
the targets the GPT is scored on, so `per_document` sums either model's per-target nats
the same way. A token's context is the previous n-1 tokens of its own document,
left-padded with EOD: for nltk, each document is the sentence [EOD]*(n-1) + doc + [EOD]
and its n-grams are `nltk.util.everygrams(padded, max_len=n)`.

The smoothing is `nltk.lm.KneserNeyInterpolated`'s: the highest order uses raw counts,
lower orders continuation counts (distinct left extensions), and

    p_k(w | c) = max(N_k(c w) - D_k, 0) / N_k(c •) + gamma_k(c) p_{k-1}(w | c'),
    gamma_k(c) = D_k T_k(c) / N_k(c •)            (alpha = 0, gamma = 1 if c is unseen),

ending in the continuation unigram. Two departures, both switchable, make it a proper
distribution that never gives 0 (Chen & Goodman 1998):

- `uniform_floor`: the unigram level is discounted as well and interpolated with the
  uniform distribution over the V vocabulary entries, so unseen words keep some mass.
- `nltk_gamma=False`: T_k(c) counts the words with a positive continuation count after c.
  nltk counts them from raw counts instead, which adds the all-EOD (n-1)-gram of a
  document's padding (it has no left extension); after EOD^(n-1) nltk's model then sums
  to more than 1. The two differ in that one context only.

Counting: k-gram keys are built level by level, key_k = rank_{k-1}(context) * V + w, where
rank_{k-1} is the dense rank of the (k-1)-gram among the distinct train (k-1)-grams
(np.unique), so every key fits an int64 and held-out n-grams are found by np.searchsorted.
The tables of the highest order serve every lower order: several orders cost about one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Ney's estimate is clipped into this range: D = 0 would give unseen words no mass and
# D = 1 would drop every singleton from the highest order.
MIN_DISCOUNT = 0.01
MAX_DISCOUNT = 0.99


@dataclass(frozen=True, eq=False)
class GramTables:
    """The distinct k-grams of the train stream for k = 1..max_order, shared by every order.

    Level k's ranks index its sorted keys; level 1's ranks are the token ids themselves.
    The all-EOD k-gram (a document's padding) always has a rank, so contexts at a
    document's start are found at every level.
    """

    vocab_size: int
    eod_id: int
    keys: tuple[np.ndarray, ...] = field(repr=False)  # keys[k - 2]: sorted int64 keys, k >= 2
    eod_ranks: tuple[int, ...] = field(repr=False)  # eod_ranks[k - 1]: rank of EOD^k

    @property
    def max_order(self) -> int:
        return len(self.eod_ranks)

    def size(self, k: int) -> int:
        """Number of distinct train k-grams; also the rank given to an unseen one."""
        return self.vocab_size if k == 1 else len(self.keys[k - 2])


@dataclass(frozen=True, eq=False)
class Level:
    """One interpolation level k: counts per k-gram rank, sums per context rank.

    `count` is raw at the model's highest order and the continuation count below. Arrays
    end in one extra zero, the entry of an unseen k-gram or context (rank = table size).
    Level 1 has a single context, rank 0.
    """

    discount: float
    count: np.ndarray = field(repr=False)  # N_k(c w) per k-gram rank
    total: np.ndarray = field(repr=False)  # N_k(c •) per context rank
    types: np.ndarray = field(repr=False)  # T_k(c): distinct words after c, for gamma


@dataclass(frozen=True, eq=False)
class KneserNey:
    """An interpolated Kneser–Ney model of one order; score streams with `target_nats`."""

    tables: GramTables
    levels: tuple[Level, ...]  # levels[k - 1] for k = 1..order
    uniform_floor: bool

    @property
    def order(self) -> int:
        return len(self.levels)

    @property
    def discounts(self) -> tuple[float, ...]:
        """D_k for k = 1..order (the unigram's is used only with the uniform floor)."""
        return tuple(lv.discount for lv in self.levels)

    def target_nats(self, ids: np.ndarray) -> np.ndarray:
        """-ln p of every target of a stream (positions 1..n-1), float64, length n-1.

        The layout is the GPT's, so `per_document(nats, ids, eod_id)` gives per-document
        sums on the same footing. Without the uniform floor an unseen word gets inf.
        """
        ids = _check_stream(ids, self.tables.vocab_size, self.tables.eod_id, "ids")
        ranks = _lookup_ranks(self.tables, ids, self.order)
        eod = self.tables.eod_id
        grams = [r[1:] for r in ranks]
        contexts = [np.zeros(len(ids) - 1, dtype=np.int64)] + [
            _following_context(ids, ranks[k - 2], self.tables.eod_ranks[k - 2], eod)[:-1]
            for k in range(2, self.order + 1)
        ]
        with np.errstate(divide="ignore"):
            return -np.log(self._probability(grams, contexts))

    def probabilities(self, prefix: Sequence[int]) -> np.ndarray:
        """p(w | prefix) for every w in the vocabulary, where prefix is the document so far.

        For inspection and exact checks: the values sum to 1 with the uniform floor (and
        nltk_gamma off).
        """
        tables, eod = self.tables, self.tables.eod_id
        prefix = np.asarray(prefix, dtype=np.int64)
        if np.any(prefix == eod):
            raise ValueError("the prefix is the current document: it cannot contain EOD")
        stream = np.concatenate([[eod], prefix[max(0, len(prefix) - (self.order - 1)):]])
        stream = _check_ids(stream, tables.vocab_size, "prefix")
        ranks = _lookup_ranks(tables, stream, self.order - 1)
        words = np.arange(tables.vocab_size, dtype=np.int64)
        grams, contexts = [words], [np.zeros_like(words)]
        for k in range(2, self.order + 1):
            ctx = _following_context(stream, ranks[k - 2], tables.eod_ranks[k - 2], eod)[-1]
            grams.append(_lookup(tables.keys[k - 2], ctx * tables.vocab_size + words))
            contexts.append(np.full_like(words, ctx))
        return self._probability(grams, contexts)

    def _probability(self, grams: list[np.ndarray], contexts: list[np.ndarray]) -> np.ndarray:
        """Interpolate level by level; grams[k-1] / contexts[k-1] are the ranks at level k."""
        uni = self.levels[0]
        count, total = uni.count[grams[0]].astype(np.float64), float(uni.total[0])
        if self.uniform_floor:
            d = uni.discount
            p = (np.maximum(count - d, 0.0) + d * uni.types[0] / self.tables.vocab_size) / total
        else:
            p = count / total
        for lv, gram, ctx in zip(self.levels[1:], grams[1:], contexts[1:], strict=True):
            total = lv.total[ctx].astype(np.float64)
            seen = total > 0
            denom = np.where(seen, total, 1.0)
            alpha = np.where(seen, np.maximum(lv.count[gram] - lv.discount, 0.0) / denom, 0.0)
            gamma = np.where(seen, lv.discount * lv.types[ctx] / denom, 1.0)
            p = alpha + gamma * p
        return p


def ney_discount(counts: np.ndarray) -> float:
    """Ney's D = n1 / (n1 + 2 n2) from the positive counts of one level, clipped.

    n1 and n2 are how many n-grams occur once and twice: the usual leave-one-out estimate
    of how much to take from each seen n-gram for the unseen ones.
    """
    counts = np.asarray(counts)
    n1, n2 = int(np.count_nonzero(counts == 1)), int(np.count_nonzero(counts == 2))
    if n1 == 0:
        return MIN_DISCOUNT
    return float(np.clip(n1 / (n1 + 2 * n2), MIN_DISCOUNT, MAX_DISCOUNT))


def fit_kneser_ney(
    train_ids: np.ndarray,
    order: int,
    vocab_size: int,
    eod_id: int,
    discount: float | None = None,
    uniform_floor: bool = True,
    nltk_gamma: bool = False,
) -> KneserNey:
    """One interpolated KN model of `order` (>= 2) fitted on a train stream.

    discount None: Ney's estimate per level; a float: that D at every level (as nltk).
    uniform_floor=False, nltk_gamma=True reproduces `nltk.lm.KneserNeyInterpolated`.
    """
    return fit_kneser_ney_orders(
        train_ids, (order,), vocab_size, eod_id, discount, uniform_floor, nltk_gamma
    )[order]


def fit_kneser_ney_orders(
    train_ids: np.ndarray,
    orders: Iterable[int],
    vocab_size: int,
    eod_id: int,
    discount: float | None = None,
    uniform_floor: bool = True,
    nltk_gamma: bool = False,
) -> dict[int, KneserNey]:
    """KN models of several orders from one count of the highest order's tables.

    Each model is what fitting its order alone gives: only the padding n-grams depend on
    the order, and they are added per model.
    """
    orders = _check_orders(orders)
    if discount is not None and not 0.0 < discount <= 1.0:
        raise ValueError(f"the discount must be in (0, 1] (counts are integers >= 1), "
                         f"got {discount}")
    ids = _check_stream(train_ids, vocab_size, eod_id, "train_ids")
    tables, ranks = _count_tables(ids, max(orders), vocab_size, eod_id)
    raw = [np.bincount(r[1:], minlength=tables.size(k)) for k, r in enumerate(ranks, start=1)]
    suffixes = [_suffix_ranks(tables, ranks, k) for k in range(2, tables.max_order + 1)]
    cache: dict[tuple[int, int], Level] = {}

    def level(k: int, order: int) -> Level:
        # Level k depends on the order only through whether it is the top, and whether
        # the padding EOD^(k+1) exists (k + 1 <= order - 1): three variants at most.
        variant = 0 if k == order else 1 + (k + 1 <= order - 1)
        if (k, variant) not in cache:
            if variant == 0:
                cache[k, variant] = _raw_level(tables, raw[k - 1], k, discount)
            else:
                cache[k, variant] = _continuation_level(
                    tables, raw, suffixes[k - 1], k, variant == 2, discount, nltk_gamma)
        return cache[k, variant]

    return {
        n: KneserNey(tables, tuple(level(k, n) for k in range(1, n + 1)), uniform_floor)
        for n in orders
    }


def ngram_baselines(
    train_ids: np.ndarray,
    eval_streams: Mapping[str, np.ndarray],
    vocab_size: int,
    eod_id: int,
    orders: Iterable[int] = (2, 3, 4, 5),
    discount: float | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """Per-target nats, {order: {split: array of length len(ids) - 1}}, of the default
    (Ney discounts, uniform floor) KN models fitted on the train stream.

    Sum them per document with `per_document`, as the GPT's `target_nll`.
    """
    models = fit_kneser_ney_orders(train_ids, orders, vocab_size, eod_id, discount)
    return {n: {split: m.target_nats(ids) for split, ids in eval_streams.items()}
            for n, m in models.items()}


def _check_orders(orders: Iterable[int]) -> tuple[int, ...]:
    orders = tuple(int(n) for n in orders)
    if not orders:
        raise ValueError("no n-gram order requested")
    bad = [n for n in orders if n < 2]
    if bad:
        raise ValueError(f"n-gram orders must be >= 2 (order 2 is a bigram; the unigram is "
                         f"only the lowest level of interpolation), got {bad}")
    return orders


def _check_ids(ids: np.ndarray, vocab_size: int, name: str) -> np.ndarray:
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be integer token ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name} has token ids outside [0, vocab_size={vocab_size})")
    return ids


def _check_stream(ids: np.ndarray, vocab_size: int, eod_id: int, name: str) -> np.ndarray:
    """int64 copy of a stream [EOD] doc [EOD] ... [EOD], validated."""
    if not 0 <= eod_id < vocab_size:
        raise ValueError(f"eod_id={eod_id} is outside [0, vocab_size={vocab_size})")
    ids = _check_ids(ids, vocab_size, name)
    if ids.ndim != 1 or len(ids) < 2 or ids[0] != eod_id or ids[-1] != eod_id:
        raise ValueError(f"{name} must be a flat stream that starts and ends with the "
                         f"end-of-document token {eod_id}")
    if len(ids) >= np.iinfo(np.int32).max:
        raise ValueError(f"{name} has {len(ids)} tokens; counts are stored as int32")
    return ids


def _following_context(ids: np.ndarray, ranks: np.ndarray, eod_rank: int,
                       eod_id: int) -> np.ndarray:
    """Rank of the k-gram a token after each position has as context.

    That is the k-gram ending there, or EOD^k (the padding) after an EOD, since a context
    never crosses a document's start.
    """
    return np.where(ids == eod_id, eod_rank, ranks)


def _keys(following: np.ndarray, ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Key of the (k+1)-gram ending at each position 1..n-1 from the context ranks."""
    return following[:-1] * vocab_size + ids[1:]


def _count_tables(ids: np.ndarray, max_order: int, vocab_size: int,
                  eod_id: int) -> tuple[GramTables, list[np.ndarray]]:
    """The train tables, and the rank of the k-gram ending at every position per level.

    Position 0 (the opening EOD) ends no n-gram; its entry is EOD^k's rank, never read.
    """
    ranks, keys, eod_ranks = [ids], [], [eod_id]
    for k in range(2, max_order + 1):
        prev_size = vocab_size if k == 2 else len(keys[-1])
        if (prev_size + 1) * vocab_size >= np.iinfo(np.int64).max:
            raise ValueError(f"{k}-gram keys would overflow int64")
        following = _following_context(ids, ranks[-1], eod_ranks[-1], eod_id)
        eod_key = eod_ranks[-1] * vocab_size + eod_id
        table, inverse = np.unique(
            np.concatenate([_keys(following, ids, vocab_size), [eod_key]]), return_inverse=True)
        inverse = inverse.reshape(-1)
        ranks.append(np.concatenate([inverse[-1:], inverse[:-1]]))
        keys.append(table)
        eod_ranks.append(int(inverse[-1]))
    return GramTables(vocab_size, eod_id, tuple(keys), tuple(eod_ranks)), ranks


def _lookup(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank of each key in a sorted table; len(table) (the unseen rank) where absent."""
    idx = np.searchsorted(table, keys)
    found = np.zeros(len(keys), dtype=bool)
    inside = idx < len(table)
    found[inside] = table[idx[inside]] == keys[inside]
    return np.where(found, idx, len(table))


def _lookup_ranks(tables: GramTables, ids: np.ndarray, order: int) -> list[np.ndarray]:
    """`_count_tables`' ranks for a held-out stream, looked up; unseen k-grams (and every
    extension of them) get the unseen rank."""
    ranks = [ids]
    for k in range(2, order + 1):
        following = _following_context(ids, ranks[-1], tables.eod_ranks[k - 2], tables.eod_id)
        found = _lookup(tables.keys[k - 2], _keys(following, ids, tables.vocab_size))
        ranks.append(np.concatenate([[tables.eod_ranks[k - 1]], found]))
    return ranks


def _suffix_ranks(tables: GramTables, ranks: list[np.ndarray], k: int) -> np.ndarray:
    """Rank of each train k-gram's (k-1)-gram suffix (drop its first word).

    The k-gram ending at a position has as suffix the (k-1)-gram ending there; EOD^k's
    is EOD^(k-1). Every k-gram is one of those.
    """
    suffix = np.empty(tables.size(k), dtype=np.int64)
    suffix[ranks[k - 1][1:]] = ranks[k - 2][1:]
    suffix[tables.eod_ranks[k - 1]] = tables.eod_ranks[k - 2]
    return suffix


def _context_ranks(tables: GramTables, k: int) -> np.ndarray:
    """Rank of each level-k gram's context (its first k-1 words); 0 for the unigrams."""
    if k == 1:
        return np.zeros(tables.vocab_size, dtype=np.int64)
    return tables.keys[k - 2] // tables.vocab_size


def _with_unseen(values: np.ndarray) -> np.ndarray:
    """int32 copy with the trailing zero entry of the unseen rank."""
    return np.concatenate([values, [0]]).astype(np.int32)


def _level(tables: GramTables, count: np.ndarray, typed: np.ndarray, k: int,
           discount: float | None) -> Level:
    """Sum `count` per context; T(c) counts the k-grams marked in `typed`."""
    ctx = _context_ranks(tables, k)
    n_ctx = 1 if k == 1 else tables.size(k - 1)
    total = np.bincount(ctx, weights=count, minlength=n_ctx).round().astype(np.int64)
    types = np.bincount(ctx[typed], minlength=n_ctx)
    d = ney_discount(count[count > 0]) if discount is None else float(discount)
    return Level(d, _with_unseen(count), _with_unseen(total), _with_unseen(types))


def _raw_level(tables: GramTables, raw: np.ndarray, k: int, discount: float | None) -> Level:
    """The highest order: raw counts of the n-grams ending at each train target."""
    return _level(tables, raw, raw > 0, k, discount)


def _continuation_level(tables: GramTables, raw: list[np.ndarray], suffix: np.ndarray, k: int,
                        padded: bool, discount: float | None, nltk_gamma: bool) -> Level:
    """A lower order: N(c w) = how many distinct train (k+1)-grams end in c w.

    The (k+1)-grams are those ending at a target plus, when the model's padding is that
    long (`padded`), EOD^(k+1). nltk_gamma takes T(c) from the raw k-grams instead, which
    always include the padding EOD^k.
    """
    extended = raw[k] > 0
    if padded:
        extended[tables.eod_ranks[k]] = True
    count = np.bincount(suffix[extended], minlength=tables.size(k))
    if nltk_gamma and k > 1:
        typed = raw[k - 1] > 0
        typed[tables.eod_ranks[k - 1]] = True
    else:
        typed = count > 0
    return _level(tables, count, typed, k, discount)
