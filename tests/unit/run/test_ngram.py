"""Kneser–Ney baselines: nltk parity, exact normalization, finite scores, Ney's discount."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from nltk.lm import KneserNeyInterpolated, Vocabulary
from nltk.util import everygrams

from embinit.run.ngram import (
    MIN_DISCOUNT,
    fit_kneser_ney,
    fit_kneser_ney_orders,
    ney_discount,
    ngram_baselines,
)
from embinit.run.train.evaluate import per_document, result_from_targets

EOD = 0
V = 10  # ids 7..9 never occur: without the floor they do not matter

# 6 occurs once. Held-out contexts such as (1, 1), (6, 4) and (4, 1, 6) never occur in train.
TRAIN_DOCS = [[1, 2, 3, 4, 2, 3, 5], [2, 3, 1, 4, 4], [3, 1, 2, 3, 4, 1], [5, 2, 1, 6],
              [4, 2, 3, 3, 1], [2]]
HELD_OUT_DOCS = [[2, 3, 4, 1, 6, 2], [1, 1, 5, 3, 2, 4], [6, 4, 3, 2, 1], [3]]


def _stream(docs: list[list[int]]) -> np.ndarray:
    """[EOD] doc1 [EOD] doc2 ... [EOD], the layout of a split."""
    out = [EOD]
    for doc in docs:
        out += [*doc, EOD]
    return np.asarray(out, dtype=np.uint16)


def _padded(doc: list[int], order: int) -> list[str]:
    return [str(w) for w in [EOD] * (order - 1) + doc + [EOD]]


def _nltk_model(order: int, discount: float) -> KneserNeyInterpolated:
    sentences = [_padded(doc, order) for doc in TRAIN_DOCS]
    vocab = Vocabulary([w for s in sentences for w in s])
    lm = KneserNeyInterpolated(order, discount=discount, vocabulary=vocab)
    lm.fit([list(everygrams(s, max_len=order)) for s in sentences])
    return lm


def _nltk_targets(lm: KneserNeyInterpolated, order: int) -> tuple[np.ndarray, int]:
    """ln p of every held-out target in stream order, and how many had unseen contexts."""
    logp, unseen = [], 0
    for doc in HELD_OUT_DOCS:
        padded = _padded(doc, order)
        for i in range(order - 1, len(padded)):
            context = tuple(padded[i - order + 1 : i])
            unseen += not lm.counts[context]
            logp.append(np.log(lm.score(padded[i], context)))
    return np.asarray(logp), unseen


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("discount", [0.1, 0.75])
def test_matches_nltk_kneser_ney_interpolated(order: int, discount: float) -> None:
    lm = _nltk_model(order, discount)
    expected, unseen = _nltk_targets(lm, order)
    # Some held-out contexts never occur in train (a bigram's context is one seen word,
    # always followed by something), and the word 6 occurs once.
    assert unseen > 0 or order == 2
    assert sum(doc.count(6) for doc in TRAIN_DOCS) == 1
    model = fit_kneser_ney(_stream(TRAIN_DOCS), order, V, EOD, discount=discount,
                           uniform_floor=False, nltk_gamma=True)
    nats = model.target_nats(_stream(HELD_OUT_DOCS))
    np.testing.assert_allclose(-nats, expected, rtol=0, atol=1e-6)


def test_nltk_gamma_differs_only_after_the_padding() -> None:
    """nltk counts T(c) of a lower order from raw counts, which include the padding's
    all-EOD n-gram: right after a document starts its model sums to more than 1."""
    train = _stream(TRAIN_DOCS)
    for nltk_gamma, expected in [(True, False), (False, True)]:
        model = fit_kneser_ney(train, 3, V, EOD, discount=0.5, nltk_gamma=nltk_gamma)
        assert np.isclose(model.probabilities([]).sum(), 1.0, rtol=0, atol=1e-9) == expected
        assert np.isclose(model.probabilities([2, 3]).sum(), 1.0, rtol=0, atol=1e-9)
    held_out = _stream(HELD_OUT_DOCS)
    plain, nltk = (fit_kneser_ney(train, 3, V, EOD, discount=0.5, nltk_gamma=g)
                   .target_nats(held_out) for g in (False, True))
    first = held_out[:-1] == EOD  # targets that start a document
    np.testing.assert_allclose(plain[~first], nltk[~first], rtol=1e-12)
    assert np.all(plain[first] > nltk[first])


def _random_stream(rng: np.random.Generator, n: int, n_words: int,
                   doc_len: int = 40) -> np.ndarray:
    """A Zipf-like stream over ids 1..n_words with EOD about every doc_len tokens."""
    p = 1.0 / np.arange(1, n_words + 1)
    ids = rng.choice(np.arange(1, n_words + 1), size=n, p=p / p.sum())
    ids[rng.random(n) < 1.0 / doc_len] = EOD
    ids[0] = ids[-1] = EOD
    return ids.astype(np.uint16)


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_probabilities_sum_to_one_with_the_uniform_floor(order: int) -> None:
    rng = np.random.default_rng(0)
    vocab = 40  # train uses ids 0..29: 30..39 are unseen words
    train = _random_stream(rng, 4000, 29)
    model = fit_kneser_ney(train, order, vocab, EOD)
    assert all(0 < d < 1 for d in model.discounts)
    doc = train[1 : np.flatnonzero(train[1:] == EOD)[0] + 1].tolist()
    prefixes = [
        [],  # a document's start
        doc[:1],
        doc[: order + 2],  # seen, longer than the context
        [35, 36, 37, 38],  # unseen words only
        [35, *doc[:2]],  # unseen at the highest order, seen below
        rng.integers(1, 30, size=order - 1).tolist(),  # random, perhaps never seen
    ]
    for prefix in prefixes:
        p = model.probabilities(prefix)
        assert p.shape == (vocab,)
        assert np.all(p > 0)
        assert abs(p.sum() - 1.0) < 1e-9, prefix


def test_every_target_is_finite_and_sums_per_document() -> None:
    rng = np.random.default_rng(1)
    train = _random_stream(rng, 3000, 20)
    held_out = _random_stream(rng, 500, 25)  # ids 21..25 never occur in train
    assert np.isin(held_out, train, invert=True).any()
    nbytes = rng.integers(1, 5, size=len(held_out)) * (held_out != EOD)
    test = _stream([[1, 2, 3], [21, 22]])
    out = ngram_baselines(train, {"val": held_out, "test": test}, 30, EOD, orders=(2, 3, 4))
    assert set(out) == {2, 3, 4}
    for by_split in out.values():
        nats = by_split["val"]
        assert nats.dtype == np.float64 and nats.shape == (len(held_out) - 1,)
        assert np.all(np.isfinite(nats)) and np.all(nats > 0)
        assert np.isclose(per_document(nats, held_out, EOD).sum(), nats.sum(), rtol=1e-12)
        result = result_from_targets(nats, nbytes)
        assert result.nats == nats.sum() and result.bytes == nbytes[1:].sum()
        assert by_split["test"].shape == (len(test) - 1,)
        assert np.all(np.isfinite(by_split["test"]))


def test_target_nats_agree_with_probabilities() -> None:
    rng = np.random.default_rng(2)
    train, held_out = _random_stream(rng, 3000, 20), _random_stream(rng, 200, 24)
    model = fit_kneser_ney(train, 4, 30, EOD)
    nats = model.target_nats(held_out)
    start = 0
    for t in range(1, len(held_out)):
        prefix = held_out[start + 1 : t]
        assert np.isclose(nats[t - 1], -np.log(model.probabilities(prefix)[held_out[t]]),
                          rtol=1e-12)
        if held_out[t] == EOD:
            start = t


def test_orders_fitted_together_equal_orders_fitted_alone() -> None:
    rng = np.random.default_rng(3)
    train, held_out = _random_stream(rng, 3000, 20), _random_stream(rng, 400, 20)
    together = fit_kneser_ney_orders(train, (2, 3, 4, 5), 21, EOD)
    for order, model in together.items():
        alone = fit_kneser_ney(train, order, 21, EOD)
        assert model.discounts == alone.discounts
        np.testing.assert_array_equal(model.target_nats(held_out), alone.target_nats(held_out))


@pytest.mark.parametrize("orders", [(1,), (0,), (2, 1), ()])
def test_orders_below_two_are_rejected(orders: tuple[int, ...]) -> None:
    train = _stream(TRAIN_DOCS)
    with pytest.raises(ValueError, match="order"):
        fit_kneser_ney_orders(train, orders, V, EOD)
    with pytest.raises(ValueError, match="order"):
        ngram_baselines(train, {"val": train}, V, EOD, orders=orders)


def test_bad_streams_are_rejected() -> None:
    with pytest.raises(ValueError, match="starts and ends"):
        fit_kneser_ney(np.array([1, 2, EOD]), 2, V, EOD)
    with pytest.raises(ValueError, match="outside"):
        fit_kneser_ney(np.array([EOD, V, EOD]), 2, V, EOD)
    with pytest.raises(ValueError, match="discount"):
        fit_kneser_ney(_stream(TRAIN_DOCS), 2, V, EOD, discount=1.5)


def test_ney_discount_on_a_hand_made_table() -> None:
    counts = np.array([1, 1, 1, 2, 2, 3, 5, 1])  # n1 = 4, n2 = 2
    assert ney_discount(counts) == pytest.approx(4 / (4 + 2 * 2))
    assert ney_discount(np.array([2, 3, 4])) == MIN_DISCOUNT  # no singletons


def test_fitted_discounts_are_ney_of_each_levels_counts() -> None:
    """Raw bigram counts at the top of a bigram model, continuation counts below."""
    bigrams: dict[tuple[int, int], int] = defaultdict(int)
    for doc in TRAIN_DOCS:
        padded = [EOD, *doc, EOD]
        for pair in zip(padded, padded[1:], strict=False):
            bigrams[pair] += 1
    left_neighbours: dict[int, set[int]] = defaultdict(set)
    for x, w in bigrams:
        left_neighbours[w].add(x)
    continuation = [len(s) for s in left_neighbours.values()]
    model = fit_kneser_ney(_stream(TRAIN_DOCS), 2, V, EOD)
    assert model.discounts == (ney_discount(np.array(continuation)),
                               ney_discount(np.array(list(bigrams.values()))))
    raw = np.array(list(bigrams.values()))
    n1, n2 = (raw == 1).sum(), (raw == 2).sum()
    assert model.discounts[1] == pytest.approx(n1 / (n1 + 2 * n2))


def _second_order_markov(rng: np.random.Generator, table: np.ndarray, n: int) -> np.ndarray:
    """Documents of 30 tokens whose next word depends on the previous two."""
    n_words, branches = table.shape[0], table.shape[2]
    out = [EOD]
    for _ in range(n // 31):
        a, b = rng.integers(1, n_words, size=2)
        doc = [a, b]
        for _ in range(28):
            doc.append(table[doc[-2], doc[-1], rng.integers(branches)])
        out += [*doc, EOD]
    return np.asarray(out, dtype=np.uint16)


def test_a_trigram_beats_a_bigram_on_a_second_order_chain() -> None:
    rng = np.random.default_rng(4)
    table = rng.integers(1, 16, size=(16, 16, 2))  # two successors per pair of words
    train = _second_order_markov(rng, table, 30_000)
    held_out = _second_order_markov(rng, table, 5_000)
    out = ngram_baselines(train, {"val": held_out}, 16, EOD, orders=(2, 3))
    bigram, trigram = out[2]["val"].mean(), out[3]["val"].mean()
    assert trigram < bigram - 0.5
