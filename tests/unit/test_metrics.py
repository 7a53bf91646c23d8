"""bpb and the OOV spelling charge against hand computations."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from embinit.metrics import (
    N_SYMBOLS,
    LayoutModel,
    NgramSpeller,
    SpellingModel,
    bits_per_byte,
    layout_event_index,
    layout_events,
    lossless_bpb,
    oov_adjusted_bpb,
)


def test_bits_per_byte_is_nats_over_ln2_bytes() -> None:
    assert bits_per_byte(100 * math.log(2), 50) == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(ValueError):
        bits_per_byte(1.0, 0)


def test_oov_adjusted_adds_spelling_nats() -> None:
    assert oov_adjusted_bpb(10.0, 4.0, 7) == pytest.approx(14.0 / (math.log(2) * 7))


def test_spelling_model_hand_computed() -> None:
    # Training words "ab", "a": counts a=2, b=1, EOW=2; N = 5 symbols, 257 in the alphabet.
    m = SpellingModel.fit(["ab", "a"])
    denom = 5 + 257
    p_a, p_b, p_eow, p_z = 3 / denom, 2 / denom, 3 / denom, 1 / denom
    assert m.cost("ab") == pytest.approx(-(math.log(p_a) + math.log(p_b) + math.log(p_eow)))
    # An unseen character still has finite cost (add-one smoothing).
    assert m.cost("z") == pytest.approx(-(math.log(p_z) + math.log(p_eow)))
    assert np.exp(m.log_probs).sum() == pytest.approx(1.0)


def test_spelling_model_counts_utf8_bytes() -> None:
    m = SpellingModel.fit([])
    # 'é' is two UTF-8 bytes: two uniform byte costs plus end-of-word, each ln 257.
    assert m.cost("é") == pytest.approx(3 * math.log(257))


def test_layout_events_reconstruct_the_text() -> None:
    text = "Hi, you  there.\n"
    offsets = [(0, 2), (2, 3), (4, 7), (9, 14), (14, 15)]
    events = layout_events(text, offsets)
    assert events == [("^|w", ""), ("w|p", ""), ("p|w", " "), ("w|w", "  "), ("w|p", ""),
                      ("p|^", "\n")]
    rebuilt = "".join(gap + text[a:b] for (_, gap), (a, b) in zip(events, offsets, strict=False))
    assert rebuilt + events[-1][1] == text


def test_layout_event_index_hand_computed() -> None:
    text = "Hi, you  there.\n"
    events, index = layout_event_index(text, np.array([(0, 2), (2, 3), (4, 7), (9, 14),
                                                       (14, 15)]))
    # Distinct events in order of first occurrence; "w|p" with no gap occurs twice.
    assert events == [("^|w", ""), ("w|p", ""), ("p|w", " "), ("w|w", "  "), ("p|^", "\n")]
    assert index.tolist() == [0, 1, 2, 3, 1, 4]


def _random_offsets(rng: np.random.Generator, n_chars: int) -> np.ndarray:
    # Up to two characters past the end: slicing clamps them, and so must the index.
    pairs = np.sort(rng.integers(0, n_chars + 3, size=(int(rng.integers(0, 7)), 2)), axis=1)
    return pairs[np.argsort(pairs[:, 0])] if rng.random() < 0.5 else pairs


def test_layout_event_index_equals_layout_events() -> None:
    # Real tokenizer offsets and arbitrary ones (empty, overlapping, out of order), over
    # one- and multi-character gaps of ASCII, non-ASCII and astral characters, digits and _.
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = list("ab _.,\n\t  é漢😀½²\u00a0\u3000-'\x1c0\u2028\u0301ǅ")
    rng = np.random.default_rng(0)
    for k in range(3000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
        offsets = (tok.encode(text, add_special_tokens=False).offsets if k % 2
                   else [tuple(p) for p in _random_offsets(rng, len(text)).tolist()])
        events, index = layout_event_index(text, np.array(offsets, dtype=np.int64))
        ref = layout_events(text, offsets)
        assert [events[i] for i in index] == ref
        assert events == list(dict.fromkeys(ref))  # first-occurrence order


def test_layout_model_hand_computed() -> None:
    spelling = SpellingModel.fit([])
    m = LayoutModel.fit([("w|w", " "), ("w|w", " "), ("w|w", "\n"), ("w|p", "")], spelling)
    # context w|w: N=3, K=2 -> denominator 6
    assert m.cost("w|w", " ") == pytest.approx(-math.log(3 / 6))
    assert m.cost("w|w", "\n") == pytest.approx(-math.log(2 / 6))
    # an unseen gap: escape probability 1/6, then spelled byte by byte (here 2 bytes + EOW)
    assert m.cost("w|w", "  ") == pytest.approx(math.log(6) + 3 * math.log(257))
    # an unseen context: only the escape outcome, denominator 1
    assert m.cost("p|p", "") == pytest.approx(0.0 + math.log(257))


def test_lossless_bpb_adds_both_charges() -> None:
    assert lossless_bpb(10.0, 3.0, 1.0, 7) == pytest.approx(14.0 / (math.log(2) * 7))


# --- the n-gram speller -----------------------------------------------------------------------

TEXT = ("the of and to in was is for that with as by on his from at which were "
        "also this had are first their other after between during national "
        "mathematician engineering university international government station "
        "population television developed including several thousand")
TRAIN_WORDS = TEXT.split()


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("prefix", ["", "t", "th", "the", "nation", "zzqx", "é", "漢", "\x00"])
def test_ngram_is_a_distribution_in_every_context(order, prefix) -> None:
    m = NgramSpeller.fit(Counter({w: i + 1 for i, w in enumerate(TRAIN_WORDS)}), order=order)
    lp = m.next_log_probs(prefix)
    assert lp.shape == (N_SYMBOLS,) and np.isfinite(lp).all()
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)


def test_ngram_cost_is_the_chain_of_next_symbol_probabilities() -> None:
    m = NgramSpeller.fit(TRAIN_WORDS)
    for word in ("then", "Straße", "x", "nationalities"):
        raw = word.encode()
        chain = -sum(m.next_log_probs(raw[:i])[raw[i]] for i in range(len(raw)))
        chain -= m.next_log_probs(raw)[256]
        assert m.cost(word) == pytest.approx(chain, rel=1e-12)
    np.testing.assert_allclose(m.costs(["then", "x"]), [m.cost("then"), m.cost("x")])
    assert m.costs([]).shape == (0,)


def test_ngram_hand_computed_and_uniform_without_data() -> None:
    # No data: uniform over 257 outcomes, like the add-one unigram fitted on nothing.
    assert NgramSpeller.fit([]).cost("é") == pytest.approx(SpellingModel.fit([]).cost("é"))
    # Order 2 on the single word "ab": the order-0 level has 3 outcomes seen once each
    # (a, b, EOW; T = 3), so P0(s) = (1 + 3/257) / 6 for those; each of the contexts BOW, a
    # and b saw one symbol once (c = T = 1), so P(s | h) = (1 + P0(s)) / 2.
    m = NgramSpeller.fit(["ab"], order=2)
    p0 = (1 + 3 / 257) / 6
    assert m.cost("ab") == pytest.approx(-3 * math.log((1 + p0) / 2), rel=1e-12)
    # "b" first: context BOW saw only "a", so b gets T * P0(b) / (c + T) = P0(b) / 2.
    assert math.exp(m.next_log_probs("")[ord("b")]) == pytest.approx(p0 / 2, rel=1e-12)
    # An unseen context falls back to the lower order unchanged.
    assert math.exp(m.next_log_probs("z")[ord("a")]) == pytest.approx(p0, rel=1e-12)
    # Counts weight words: a mapping is the same as repeating each word.
    np.testing.assert_allclose(NgramSpeller.fit({"ab": 2, "b": 1}).costs(["ab", "ba"]),
                               NgramSpeller.fit(["ab", "b", "ab"]).costs(["ab", "ba"]))


def test_ngram_charges_less_than_unigram_in_distribution() -> None:
    # Words from a syllable grammar: strong byte-to-byte structure that only context sees.
    rng = np.random.default_rng(0)
    syllables = ["ka", "to", "ri", "shi", "mu", "ne", "sa", "yo"]

    def words(n):
        return ["".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(n)]

    train, held_out = words(2000), words(300)
    ngram, unigram = NgramSpeller.fit(train), SpellingModel.fit(train)
    ngram_nats = ngram.costs(held_out)
    unigram_nats = np.array([unigram.cost(w) for w in held_out])
    assert ngram_nats.sum() < 0.8 * unigram_nats.sum()
    assert (ngram_nats < unigram_nats).mean() > 0.9


def test_gap_probabilities_sum_to_at_most_one_in_every_context() -> None:
    # Seen gaps get their smoothed share; the escape mass is spread over spelled strings,
    # so summed over distinct gaps the probabilities never exceed 1.
    spelling = SpellingModel.fit(["ab", "a ", "\n"])
    m = LayoutModel.fit([("w|w", " "), ("w|w", " "), ("w|w", "\n"), ("w|p", ""),
                         ("p|w", " ")], spelling)
    short = [""] + [bytes([b]).decode("latin-1") for b in range(256)]
    for ctx in ("w|w", "w|p", "p|w", "p|p"):
        gaps = set(m.counts.get(ctx, {})) | set(short)
        total = sum(math.exp(-m.cost(ctx, g)) for g in gaps)
        assert 0.0 < total <= 1.0 + 1e-12
        seen = sum(math.exp(-m.cost(ctx, g)) for g in m.counts.get(ctx, {}))
        assert total > seen  # the escape outcome carries real mass


def test_tokens_plus_gaps_rebuild_every_document() -> None:
    from embinit.config import DataConfig, VocabConfig
    from embinit.run.data.corpus import open_corpus
    from embinit.run.data.tokenizer import train_tokenizer

    docs = [d.text for d in open_corpus(DataConfig(name="wiki_sample", max_docs=4))]
    tok = train_tokenizer(docs[:2], VocabConfig(name="word", oov="unk", size=2000, min_count=1))
    for text in docs:
        offsets = tok.encode(text, add_special_tokens=False).offsets
        events = layout_events(text, offsets)
        rebuilt = "".join(gap + text[a:b] for (_, gap), (a, b) in zip(events, offsets, strict=False))
        assert rebuilt + events[-1][1] == text
