"""band, ccs, auto and weighted_sample on score tables, through select_in_memory (the ranker
engine's single-process reference) and their own keys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.select.auto import Auto
from datadiet.select.band import Band
from datadiet.select.base import Budget, float_rank_key
from datadiet.select.ccs import CCS
from datadiet.select.cluster_balanced import water_fill
from datadiet.select.weighted_sample import WeightedSample
from datadiet.stages.rank import select_in_memory


def _table(n=1000, seed=0, **cols):
    rng = np.random.default_rng(seed)
    base = {"doc_id": [f"doc-{i}" for i in range(n)],
            "n_tokens": pa.array(rng.integers(1, 50, n), pa.int64()),
            "n_bytes": pa.array(rng.integers(5, 300, n), pa.int64()),
            "source": rng.choice(["web", "code", "books"], n).tolist(),
            "score": rng.normal(size=n)}
    base.update(cols)
    return pa.table(base)


def test_band_keeps_the_percentile_band_and_the_value_range():
    p = np.linspace(0, 1, 11)
    t = pa.table({"doc_id": [str(i) for i in range(11)], "percentile": pa.array(p, mask=np.arange(11) == 3),
                  "x": np.arange(11.0)})
    keep, why = Band(low=0.2, high=0.8).keep(t)
    assert np.flatnonzero(keep).tolist() == [2, 4, 5, 6, 7, 8]
    assert why[0] == "band: percentile < 0.2" and why[10] == "band: percentile > 0.8"
    assert why[3] == "band: percentile null"
    keep, _ = Band(score="x", min=4, max=6, low=0.2).keep(t)
    assert np.flatnonzero(keep).tolist() == [4, 5, 6]
    assert Band(low=0.2).columns() == ["percentile"] and Band(score="x", max=1).columns() == ["x"]


@pytest.mark.parametrize("config,match", [
    ({"score": "x", "min": 50, "max": 10}, "'min' parameter of Band \\(50\\) is above 'max'"),
    ({"low": 0.9, "high": 0.1}, "'low' parameter of Band \\(0.9\\) is above 'high'"),
    ({"low": 1.5}, "'low' parameter of Band must be a float >= 0 and <= 1"),
    ({}, "needs a bound"),
    ({"max": 3}, "set 'score'"),
])
def test_band_bad_bounds_are_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        Band.from_config(config, where="select[0]")


def test_ccs_prunes_the_hardest_and_water_fills_bins():
    n = 3000
    rng = np.random.default_rng(1)
    p = (np.argsort(np.argsort(rng.random(n))) + 0.5) / n
    bins = np.minimum((p / 0.9 * 5).astype(np.int64), 4)
    bins[p < 0.05] = 0
    t = _table(n, percentile=p, **{"percentile.bin": bins})
    sel = CCS(beta=0.1, hard="high")
    budget = Budget(documents=600)
    keep = select_in_memory(sel, t, budget, seed=3)
    assert keep.sum() == 600
    assert not keep[p > 0.9].any()  # the hardest 10% is never selected
    available = np.bincount(bins[p <= 0.9], minlength=5)
    np.testing.assert_array_equal(np.bincount(bins[keep], minlength=5), water_fill(available, 600))
    assert (select_in_memory(sel, t, budget, seed=3) == keep).all()
    assert not (select_in_memory(sel, t, budget, seed=4) == keep).all()
    low = select_in_memory(CCS(beta=0.2, hard="low"), t, budget, seed=3)
    assert not low[p < 0.2].any() and low.sum() == 600


def test_ccs_small_bins_hand_their_share_to_the_others():
    p = np.r_[np.full(10, 0.1), np.full(500, 0.5), np.full(500, 0.7)]
    bins = np.r_[np.zeros(10), np.ones(500), np.full(500, 2)].astype(np.int64)
    t = _table(len(p), percentile=p, **{"percentile.bin": bins})
    keep = select_in_memory(CCS(beta=0.0), t, Budget(documents=300))
    assert np.bincount(bins[keep]).tolist() == [10, 145, 145]


def test_auto_switches_order_with_the_budget_share():
    t = _table(1000)
    score = t.column("score").to_numpy()
    small, large = Auto(score="score", switch=0.5), Auto(score="score", switch=0.5)
    with pytest.raises(ConfigError, match="configure"):
        small.key(t, 0)
    assert small.configure(100, 1000) == {"order": "easy_first", "share": 0.1, "switch": 0.5, "limit": 100,
                                          "available": 1000}
    assert large.configure(600, 1000)["order"] == "hard_first"
    easy = select_in_memory(small, t, Budget(documents=100))
    hard = select_in_memory(large, t, Budget(documents=600))
    assert score[easy].max() < score[~easy].min()  # the 100 easiest (lowest) rows
    assert score[hard].min() > score[~hard].max()  # the 600 hardest
    low_is_hard = Auto(score="score", hard="low")
    low_is_hard.configure(100, 1000)
    picked = select_in_memory(low_is_hard, t, Budget(documents=100))
    assert score[picked].min() > score[~picked].max()
    assert Auto(score="score", switch=0.05).configure(100, 1000)["order"] == "hard_first"
    with pytest.raises(ConfigError, match="switch"):
        Auto.from_config({"score": "score", "switch": 0})


def test_auto_pickles_its_choice():
    import pickle

    sel = Auto(score="score")
    sel.configure(1, 10)
    assert pickle.loads(pickle.dumps(sel)).choice_["order"] == "easy_first"
    assert sel.to_config() == {"type": "auto", "score": "score"}


def test_weighted_sample_draws_in_proportion_to_the_weights():
    n = 200
    w = np.r_[np.full(100, 1.0), np.full(99, 4.0), 0.0]
    t = _table(n, score=w)
    hits = np.zeros(n)
    for seed in range(200):
        hits += select_in_memory(WeightedSample(weight="score"), t, Budget(documents=20), seed=seed)
    assert hits[-1] == 0  # a zero weight is never drawn
    light, heavy = hits[:100].mean() / 200, hits[100:199].mean() / 200
    assert 2.5 < heavy / light < 5.5  # inclusion odds follow the weights (not exactly 4: without replacement)
    logged = select_in_memory(WeightedSample(weight="score", log=True), _table(n, score=np.log(w + 1e-300)),
                              Budget(documents=20), seed=7)
    assert (logged == select_in_memory(WeightedSample(weight="score"), t, Budget(documents=20), seed=7)).all()


def test_weighted_sample_is_per_row_and_top_k_at_temperature_zero():
    t = _table(500, score=np.random.default_rng(2).random(500) + 0.1)
    sel = WeightedSample(weight="score")
    keys, valid = sel.key(t, 5)
    parts = [sel.key(t.slice(i, 100), 5)[0] for i in range(0, 500, 100)]
    np.testing.assert_array_equal(keys, np.concatenate(parts))  # independent of sharding
    greedy = select_in_memory(WeightedSample(weight="score", temperature=0), t, Budget(documents=50))
    top = float_rank_key(t.column("score"), t.column("doc_id"), 0, descending=True)[0]
    assert set(np.flatnonzero(greedy)) == set(np.argsort(~top)[:50])
    assert sel.score_column() == "score"


@pytest.mark.parametrize("documents,order", [(6, "easy_first"), (30, "hard_first")])
def test_auto_in_a_pipeline_writes_its_choice_to_the_manifest(tmp_path, documents, order):
    import pyarrow.parquet as pq

    import datadiet

    rng = np.random.default_rng(0)
    texts = [" ".join(["word"] * int(n)) for n in rng.integers(1, 60, 40)]
    table = pa.table({"id": [f"r{i}" for i in range(40)], "text": texts})
    result = datadiet.Pipeline(
        source=datadiet.Source.from_data(table, text_column="text", id_column="id"),
        scorers=[datadiet.scorers.get_scorer("length")()], select=[Auto(score="length.words", switch=0.5)],
        budget=Budget(documents=documents), output=tmp_path / "out", scheduler="synchronous", progress=False).run()
    regime = result.manifest["budget"]["regime"]
    assert regime["order"] == order and regime["share"] == pytest.approx(documents / 40)
    kept = {len(t.split()) for t in pq.read_table(result.data_dir).column("text").to_pylist()}
    words = sorted(len(t.split()) for t in texts)
    assert max(kept) <= words[documents - 1] if order == "easy_first" else min(kept) >= words[-documents]
