"""Selector building blocks: rank keys order like the scores, threshold rules and nulls."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.select.base import Budget, float_rank_key
from datadiet.select.threshold import Threshold


def test_rank_keys_follow_scores_including_negatives_and_ties():
    scores = pa.array([3.5, -1.0, 0.0, -0.0, 2.0, -7.25, 2.0, None, float("nan")], pa.float32())
    ids = pa.array([f"d{i}" for i in range(len(scores))])
    keys, valid = float_rank_key(scores, ids, seed=0, descending=True)
    assert valid.tolist() == [True] * 7 + [False, False]
    order = np.argsort(-keys[:7].astype(np.float64), kind="stable")
    ranked = [scores[i].as_py() for i in order]
    assert ranked == sorted(ranked, reverse=True)
    low, _ = float_rank_key(scores, ids, seed=0, descending=False)
    assert np.argmax(low[:7]) == 5  # -7.25 ranks first when keeping low scores
    # ties (the two 2.0) are broken by doc_id hash, and the seed changes the tie order
    flips = {bool(float_rank_key(scores, ids, seed=s, descending=True)[0][4] >
                  float_rank_key(scores, ids, seed=s, descending=True)[0][6]) for s in range(16)}
    assert flips == {True, False}


def test_threshold_rules_reasons_and_nulls():
    table = pa.table({"doc_id": ["a", "b", "c", "d"], "x": pa.array([0.1, 0.5, None, 0.9]),
                      "y": pa.array([1.0, 10.0, 1.0, 1.0])})
    keep, why = Threshold(rules={"x": {"min": 0.2, "max": 0.8}, "y": {"max": 5}}).keep(table)
    assert keep.tolist() == [False, False, False, False]
    assert why == ["threshold: x < 0.2", "threshold: y > 5", "threshold: x null", "threshold: x > 0.8"]
    keep, why = Threshold(rules={"x": {"max": 0.8}}, keep_null=True).keep(table)
    assert keep.tolist() == [True, True, True, False]


@pytest.mark.parametrize("budget,total_docs,total_tokens,expected", [
    (Budget(documents=5), 100, 1000, 5),
    (Budget(tokens=700), 100, 1000, 700),
    (Budget(fraction=0.25), 100, 1000, 25),
    (Budget(fraction=0.25, fraction_of="tokens"), 100, 1000, 250),
    (Budget(flops=6e9, model_params=1e6), 100, 1000, 1000),
])
def test_budget_limits(budget, total_docs, total_tokens, expected):
    budget.validate_params()
    assert budget.limit(total_docs, total_tokens) == expected
