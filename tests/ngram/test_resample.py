"""dsir_resample (Gumbel top-k) and dsir_mixture (per-target quotas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.select.base import Budget
from datadiet.select.dsir_resample import DSIRMixture, DSIRResample
from datadiet.stages.rank import select_in_memory


def narrow(log_w, ids=None, **extra) -> pa.Table:
    n = len(log_w)
    data = {
        "doc_id": pa.array(ids or [f"d{i:06d}" for i in range(n)], pa.string()),
        "n_tokens": pa.array(np.full(n, 10), pa.int64()),
        "source": pa.array(["s"] * n),
        "dsir": pa.array(log_w, pa.float32()),
    }
    data.update(extra)
    return pa.table(data)


def top(keys, valid, k):
    keys = np.where(valid, keys, 0)
    return set(np.argsort(-keys.astype(np.float64), kind="stable")[:k].tolist())


def test_keys_independent_of_order_and_chunks():
    rng = np.random.default_rng(1)
    table = narrow(rng.normal(0, 3, 1000).tolist())
    sel = DSIRResample()
    keys, valid = sel.key(table, seed=7)
    bounds = [0, 137, 500, 501, 868, 1000]
    parts = [sel.key(table.slice(a, b - a), seed=7) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), keys)
    perm = rng.permutation(1000)
    keys_perm, _ = sel.key(table.take(pa.array(perm)), seed=7)
    np.testing.assert_array_equal(keys_perm, keys[perm])
    assert keys.dtype == np.uint64 and valid.all()
    other, _ = sel.key(table, seed=8)
    assert top(other, valid, 100) != top(keys, valid, 100)


def test_sampling_frequencies_follow_weights():
    weights = np.array([1.0, 2.0, 7.0])
    table = narrow(np.log(weights).tolist())
    wins = np.zeros(3)
    for seed in range(3000):
        keys, _ = DSIRResample().key(table, seed=seed)
        wins[int(np.argmax(keys))] += 1
    np.testing.assert_allclose(wins / wins.sum(), weights / weights.sum(), atol=0.03)


def test_temperature_zero_is_top_k_and_high_temperature_flattens():
    log_w = np.linspace(-50, 50, 200)
    table = narrow(log_w.tolist())
    keys, valid = DSIRResample(temperature=0.0).key(table, seed=0)
    assert top(keys, valid, 20) == set(range(180, 200))
    keys_hot, valid = DSIRResample(temperature=1000.0).key(table, seed=0)
    assert len(top(keys_hot, valid, 20) & set(range(180, 200))) < 10
    with pytest.raises(ConfigError, match="temperature"):
        DSIRResample(temperature=-1.0).validate_params()


def test_null_weight_is_invalid():
    table = narrow([1.0, None, 2.0])
    _, valid = DSIRResample().key(table, seed=0)
    assert valid.tolist() == [True, False, True]


def test_mixture_quotas_and_decisions():
    rng = np.random.default_rng(3)
    n = 3000
    w_a, w_b = rng.normal(0, 2, n), rng.normal(0, 2, n)
    assigned = np.where(w_a >= w_b, "w_a", "w_b")
    sel = DSIRMixture(targets={"w_a": 0.75, "w_b": 0.25}, seed=5)
    sel.validate_params()
    table = narrow(
        w_a.tolist(), w_a=pa.array(w_a), w_b=pa.array(w_b), dsir_target=pa.array(assigned.tolist())
    )
    rows = {g: int((assigned == g).sum()) for g in ("w_a", "w_b")}
    assert sel.group_quotas(rows, 800) == {"w_a": 600, "w_b": 200}
    keep = select_in_memory(sel, table, Budget(documents=800))
    assert int((keep & (assigned == "w_a")).sum()) == 600 and int((keep & (assigned == "w_b")).sum()) == 200
    # the kept rows of a target are biased toward that target's high weights
    assert w_a[keep & (assigned == "w_a")].mean() > w_a[assigned == "w_a"].mean() + 0.5
    # deciding on a shuffled table gives the same decision per row
    perm = rng.permutation(n)
    again = select_in_memory(sel, table.take(pa.array(perm)), Budget(documents=800))
    np.testing.assert_array_equal(again, keep[perm])
    kept_tokens = select_in_memory(sel, table, Budget(tokens=4000))
    assert int(kept_tokens.sum()) * 10 <= 4000


def test_mixture_needs_targets():
    with pytest.raises(ConfigError, match="missing required key 'targets'"):
        DSIRMixture.from_config({})
    with pytest.raises(ConfigError, match="targets"):
        DSIRMixture(targets={}).validate_params()
    with pytest.raises(ConfigError, match="targets"):
        DSIRMixture(targets={"a": -1.0}).validate_params()
