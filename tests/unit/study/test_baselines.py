"""The report's n-gram baselines and regime table, on hand-made summaries with known sums."""

import math

import numpy as np
import pandas as pd
import pytest

from embinit.study.baselines import (
    BEATS,
    BELOW,
    baseline_docs,
    best_orders,
    ngram_table,
    regime_table,
    stream_key,
    versus_ngram,
)
from embinit.study.load import AnalysisError

LN2 = math.log(2.0)
BYTES = {"val": [100, 300], "test": [200, 400]}
IDS = {"val": ["a", "b"], "test": ["c", "d"]}


def summary(arm, seed, cache, arm_nats, orders, charge=0.0, fraction=1.0):
    """arm_nats / orders[n]: {split: [nats per document]}; charges `charge` per document."""
    s = {"arm": arm, "seed": seed, "status": "completed",
         "data": {"token_cache": f"/x/cache/tokens/{cache}"},
         "arm_spec": {"train_fraction": fraction}}
    for split in ("val", "test"):
        s[split] = {"doc_nats": arm_nats[split], "doc_bytes": BYTES[split],
                    "doc_ids": IDS[split], "doc_charge_nats": [charge] * 2}
    s["baselines"] = {"ngram": {"train_tokens": 1234, "orders": {
        str(n): {split: {"doc_nats": v[split]} for split in ("val", "test")}
        for n, v in orders.items()}}}
    return s


ORDERS = {2: {"val": [80.0, 200.0], "test": [150.0, 260.0]},
          3: {"val": [70.0, 190.0], "test": [140.0, 250.0]}}
TOTAL_BYTES = 1000


def docs_frame(summaries):
    rows = []
    for s in summaries.values():
        for split in ("val", "test"):
            for i, (n, b) in enumerate(zip(s[split]["doc_nats"], s[split]["doc_bytes"],
                                           strict=True)):
                rows.append({"arm": s["arm"], "seed": s["seed"], "split": split, "doc": i,
                             "doc_id": IDS[split][i], "nats": n,
                             "charge": s[split]["doc_charge_nats"][i], "bytes": b})
    return pd.DataFrame(rows)


def test_one_copy_per_stream_and_exact_bpb():
    good = {"val": [50.0, 150.0], "test": [100.0, 200.0]}
    sums = {f"a/seed{k}": summary("a", k, "key1", good, ORDERS) for k in (0, 1)}
    sums["b/seed0"] = summary("b", 0, "key1", good, ORDERS)
    sums["c/seed0"] = summary("c", 0, "key2", good, {2: ORDERS[2]}, charge=5.0, fraction=0.5)
    bdocs, arms = baseline_docs(sums)
    assert arms == {"key1@1": ["a", "b"], "key2@0.5": ["c"]}
    assert len(bdocs) == 2 * 4 + 1 * 4  # orders x held-out documents, once per stream
    table = ngram_table(bdocs, arms, {"key1@1": "tok1"})
    t1 = table[(table["stream"] == "key1@1")].set_index("order")
    assert t1.loc[2, "bpb"] == pytest.approx(690.0 / (LN2 * TOTAL_BYTES), abs=1e-12)
    assert t1.loc[3, "bpb"] == pytest.approx(650.0 / (LN2 * TOTAL_BYTES), abs=1e-12)
    t2 = table[table["stream"] == "key2@0.5"].iloc[0]
    # The arm's lossless charges are charged to the n-gram too (the same text to code).
    assert t2["bpb"] == pytest.approx((690.0 + 20.0) / (LN2 * TOTAL_BYTES), abs=1e-12)
    assert best_orders(table) == {"key1@1": 3, "key2@0.5": 2}
    assert t1.loc[2, "lo"] < t1.loc[2, "bpb"] < t1.loc[2, "hi"]


def test_arms_against_the_best_ngram():
    good = {"val": [50.0, 150.0], "test": [100.0, 200.0]}  # 500 nats: beats order 3's 650
    bad = {"val": [90.0, 230.0], "test": [170.0, 290.0]}   # 780 nats: worse than 650
    sums = {f"good/seed{k}": summary("good", k, "key1", {
        s: [x + k for x in v] for s, v in good.items()}, ORDERS) for k in (0, 1, 2)}
    sums.update({f"bad/seed{k}": summary("bad", k, "key1", {
        s: [x + 2 * k for x in v] for s, v in bad.items()}, ORDERS) for k in (0, 1, 2)})
    bdocs, arms = baseline_docs(sums)
    table = ngram_table(bdocs, arms, {})
    vs = versus_ngram(docs_frame(sums), bdocs, arms, table).set_index("arm")
    ng = 650.0 / (LN2 * TOTAL_BYTES)
    assert vs.loc["good", "order"] == 3
    assert vs.loc["good", "diff"] == pytest.approx((500.0 + 4) / (LN2 * TOTAL_BYTES) - ng)
    assert vs.loc["good", "outcome"] == BEATS and vs.loc["good", "hi"] < 0
    assert vs.loc["bad", "diff"] == pytest.approx((780.0 + 8) / (LN2 * TOTAL_BYTES) - ng)
    assert vs.loc["bad", "outcome"] == BELOW
    assert (vs["n_seeds"] == 3).all() and (vs["n_docs"] == 4).all()


def test_damaged_baseline_is_refused():
    s = summary("a", 0, "key1", {"val": [1.0, 2.0], "test": [1.0, 2.0]}, ORDERS)
    s["baselines"]["ngram"]["orders"]["2"]["val"]["doc_nats"] = [1.0]
    with pytest.raises(AnalysisError, match="damaged"):
        baseline_docs({"a/seed0": s})


def test_records_without_baselines_give_no_rows():
    s = summary("a", 0, "key1", {"val": [1.0, 2.0], "test": [1.0, 2.0]}, ORDERS)
    del s["baselines"]
    bdocs, arms = baseline_docs({"a/seed0": s})
    assert bdocs.empty and arms == {}
    assert stream_key(s) == "key1@1"


def test_regime_table_means_over_seeds():
    runs = pd.DataFrame({
        "arm": ["a", "a", "b"], "status": ["completed"] * 3,
        "regime_tokens_per_nonembedding_param": [1.0, 3.0, 10.0],
        "regime_tokens_per_param": [0.5, 1.5, 5.0], "regime_epochs": [1.0, 1.0, 6.0],
        "regime_embedding_share": [0.5, 0.5, 0.2], "regime_row_occurrences_median": [4, 6, 9],
        "regime_row_occurrences_p10": [0, 0, 1], "regime_row_occurrences_mean": [10, 10, 40],
        "regime_rows_never_seen": [0.2, 0.2, 0.0], "regime_spelled_word_rate": [0.1, 0.1, 0.0],
        "regime_beyond_fresh_epochs": [False, False, True]})
    t = regime_table(runs, ["a", "b"]).set_index("arm")
    assert t.loc["a", "tokens_per_nonembedding_param"] == 2.0
    assert t.loc["a", "row_occurrences_median"] == 5.0 and t.loc["a", "n_seeds"] == 2
    assert not t.loc["a", "beyond_fresh_epochs"] and t.loc["b", "beyond_fresh_epochs"]
    assert np.isclose(t.loc["b", "embedding_share"], 0.2)
