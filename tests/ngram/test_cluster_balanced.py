"""cluster_balanced quotas (water-filling, proportional) and within-cluster ranking."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.select.base import Budget
from datadiet.select.cluster_balanced import ClusterBalanced, proportional, water_fill
from datadiet.stages.rank import select_in_memory


@pytest.mark.parametrize("sizes,limit", [([2, 10, 10], 12), ([1, 1, 50, 7, 30], 40), ([5, 5], 100), ([3, 9, 4], 7)])
def test_water_fill(sizes, limit):
    sizes = np.array(sizes)
    q = water_fill(sizes, limit)
    assert q.sum() <= limit and np.all(q <= sizes)
    assert q.sum() == min(limit, sizes.sum())  # nothing left on the table
    full = q == sizes
    # clusters not fully taken share equally (within one unit) and get at least every full one
    if (~full).any():
        assert q[~full].max() - q[~full].min() <= 1
        assert not full.any() or q[full].max() <= q[~full].min() + 1


def test_proportional():
    q = proportional(np.array([10, 30, 60]), 50)
    assert q.tolist() == [5, 15, 30]
    assert proportional(np.array([3, 3, 3]), 4).sum() <= 4


def narrow(n=600, seed=0):
    rng = np.random.default_rng(seed)
    cluster = rng.choice(4, size=n, p=[0.05, 0.15, 0.3, 0.5])
    return pa.table({
        "doc_id": [f"d{i:05d}" for i in range(n)],
        "n_tokens": pa.array(rng.integers(1, 50, n), pa.int64()),
        "source": ["s"] * n,
        "kmeans.cluster": pa.array(cluster, pa.int64()),
        "quality": pa.array(rng.normal(size=n), pa.float32()),
    })


def sizes(table, weight=None):
    c = table.column("kmeans.cluster").to_numpy()
    w = np.ones(len(c)) if weight is None else table.column(weight).to_numpy()
    return {int(k): int(w[c == k].sum()) for k in np.unique(c)}


def quotas_for(sel, table, budget):
    unit = budget.unit
    available = {str(k): v for k, v in sizes(table, "n_tokens" if unit == "tokens" else None).items()}
    limit = budget.limit(table.num_rows, int(table.column("n_tokens").to_numpy().sum()))
    return {int(k): q for k, q in sel.group_quotas(available, limit).items()}


@pytest.mark.parametrize("mode", ["equal", "proportional"])
def test_documents_budget(mode):
    table = narrow()
    sel = ClusterBalanced(score="quality", mode=mode)
    quotas = quotas_for(sel, table, Budget(documents=200))
    assert sum(quotas.values()) <= 200
    keep = select_in_memory(sel, table, Budget(documents=200))
    c = table.column("kmeans.cluster").to_numpy()
    q = table.column("quality").to_numpy()
    for k, quota in quotas.items():
        assert int(keep[c == k].sum()) == quota
        if 0 < quota < int((c == k).sum()):  # the best rows of the cluster by score
            assert q[(c == k) & keep].min() >= q[(c == k) & ~keep].max()
    if mode == "equal":
        assert int(keep[c == 0].sum()) == int((c == 0).sum())  # a small cluster keeps everything


def test_tokens_budget_never_exceeded_and_order_low():
    table = narrow(seed=1)
    sel = ClusterBalanced(score="quality", keep="low")
    quotas = quotas_for(sel, table, Budget(tokens=3000))
    assert sum(quotas.values()) <= 3000
    keep = select_in_memory(sel, table, Budget(tokens=3000))
    c, t = table.column("kmeans.cluster").to_numpy(), table.column("n_tokens").to_numpy()
    q = table.column("quality").to_numpy()
    for k, quota in quotas.items():
        assert t[(c == k) & keep].sum() <= quota
        rows = np.flatnonzero(c == k)
        ranked = rows[np.argsort(q[rows], kind="stable")]
        taken = ranked[np.cumsum(t[ranked]) <= quota]  # the prefix in score order
        assert set(np.flatnonzero((c == k) & keep).tolist()) == set(taken.tolist())
    assert t[keep].sum() <= 3000


def test_decide_independent_of_row_order_and_random_without_score():
    table = narrow(seed=2)
    sel = ClusterBalanced(score=None, seed=4)
    budget = Budget(fraction=0.25)
    keep = select_in_memory(sel, table, budget)
    perm = np.random.default_rng(0).permutation(table.num_rows)
    np.testing.assert_array_equal(select_in_memory(sel, table.take(pa.array(perm)), budget), keep[perm])
    other = select_in_memory(ClusterBalanced(score=None, seed=5), table, budget)
    assert other.sum() == keep.sum() and not np.array_equal(other, keep)
