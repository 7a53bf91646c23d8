"""data.train_fraction: whole-document, nested prefixes of the train stream."""

import numpy as np
import pytest

from embinit.errors import ConfigError
from embinit.run.data.accounting import SplitStats
from embinit.run.data.cache import TokenSplit
from embinit.run.data.fraction import prefix_end, train_prefix

EOD = 0
# Three documents of 10, 30 and 60 bytes: tokens 1..k, each doc followed by EOD (0 bytes).
IDS = np.array([5, 6, EOD, 7, 8, 9, EOD, 5, 5, 5, 5, EOD])
NBYTES = np.array([4, 6, 0, 10, 10, 10, 0, 15, 15, 15, 15, 0])


def test_prefix_ends_on_the_first_document_boundary_reaching_the_fraction() -> None:
    assert prefix_end(IDS, NBYTES, EOD, 0.1) == 3  # 10 of 100 bytes: the first document
    assert prefix_end(IDS, NBYTES, EOD, 0.11) == 7  # just past it: two documents (40 bytes)
    assert prefix_end(IDS, NBYTES, EOD, 0.4) == 7
    assert prefix_end(IDS, NBYTES, EOD, 0.41) == 12
    assert prefix_end(IDS, NBYTES, EOD, 1.0) == 12


def test_fraction_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="train_fraction"):
        prefix_end(IDS, NBYTES, EOD, 0.0)


def test_train_prefix_recounts_the_stream() -> None:
    stats = SplitStats(n_docs=3, n_bytes=100, n_tokens=12, n_targets=11, n_text_tokens=9,
                       n_words=9, n_spelled_words=3)
    split = TokenSplit(ids=IDS, nbytes=NBYTES, stats=stats)
    sub = train_prefix(split, EOD, 0.3)
    assert list(sub.ids) == list(IDS[:7])
    assert (sub.stats.n_docs, sub.stats.n_bytes, sub.stats.n_tokens) == (2, 40, 7)
    assert (sub.stats.n_targets, sub.stats.n_text_tokens) == (6, 5)
    assert sub.stats.n_spelled_words == round(3 * 5 / 9)
    assert train_prefix(split, EOD, 1.0) is split
