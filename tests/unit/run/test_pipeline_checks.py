"""The pipeline's pure checks: step-0 golden check and held-out targets by row class."""

import math

import numpy as np
import pytest

from embinit.run.pipeline import row_classes, step0_check


def test_step0_check_compares_with_ln_v_and_flags_a_start_far_above() -> None:
    ok = step0_check(9.65, 16384)
    assert ok is not None
    assert ok["ln_vocab"] == pytest.approx(math.log(16384))
    assert ok["excess"] == pytest.approx(9.65 - 9.704060527839234)
    assert not ok["flagged"]
    assert step0_check(math.log(8192) + 0.3, 8192)["flagged"]
    assert step0_check(None, 8192) is None


def test_row_classes_split_targets_and_keep_specials_apart() -> None:
    # ids: 0 = EOD (special), 1 = <unk> (special), 2-3 byte rows, 4-5 word rows.
    eligible = np.array([False, False, False, False, True, True])
    ids = np.array([4, 2, 3, 5, 0, 4])
    nbytes = np.array([3, 1, 1, 4, 0, 3])
    nll = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # targets ids[1:] = 2, 3, 5, 0, 4
    out = row_classes(nll, ids, nbytes, None, eligible, specials=(0, 1))
    assert out["vector_rows"] == {"tokens": 2, "bytes": 7, "nats": 8.0, "charge_nats": 0.0}
    assert out["fallback_rows"] == {"tokens": 2, "bytes": 2, "nats": 3.0, "charge_nats": 0.0}
    assert out["special_rows"] == {"tokens": 1, "bytes": 0, "nats": 4.0, "charge_nats": 0.0}
    total = sum(c["nats"] for c in out.values())
    assert total == pytest.approx(nll.sum())
