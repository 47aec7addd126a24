"""Fitted normalisation scorers: percentile (global mid-rank percentile and score bins) and
fusion (weighted rank or z-score fusion), fitted on a pool sample, independent of batching."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import rankdata

import datadiet
from datadiet.errors import ConfigError
from datadiet.scorers.base import InMemoryFitContext
from datadiet.scorers.fusion import Fusion
from datadiet.scorers.percentile import Percentile


def _pool(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n).round(2)  # ties
    b = rng.exponential(size=n)
    a_col = pa.array(a, mask=np.arange(n) % 97 == 5)
    return pa.table({"doc_id": [f"d{i}" for i in range(n)], "n_tokens": pa.array(np.full(n, 10), pa.int64()),
                     "a": a_col, "b": b})


def _by_batches(scorer, table, size):
    parts = [scorer.score_batch(rb) for rb in table.to_batches(max_chunksize=size)]
    return {k: pa.concat_arrays([p[k] for p in parts]) for k in parts[0]}


def test_percentile_is_the_mid_rank_among_the_sample_and_batching_free(tmp_path):
    table = _pool()
    sc = Percentile(score="a", sample_rows=10_000, bins=4).fit(InMemoryFitContext(table))
    out = sc.score_batch(table.to_batches()[0])
    a = table.column("a").to_numpy(zero_copy_only=False)
    ok = ~np.isnan(a)
    expected = (rankdata(a[ok]) - 0.5) / ok.sum()
    got = out["score"].to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(got[ok], expected, atol=1e-6)
    assert out["score"].null_count == (~ok).sum() and out["null_reason"].null_count == ok.sum()
    bins = out["bin"].to_numpy(zero_copy_only=False)[ok]
    assert set(bins.tolist()) == {0, 1, 2, 3}
    assert (np.diff(bins[np.argsort(a[ok])]) >= 0).all()  # bins follow the score
    again = _by_batches(sc, table, 37)
    assert again["score"].equals(out["score"]) and again["bin"].equals(out["bin"])
    sc.save_state(tmp_path)
    loaded = Percentile(score="a", sample_rows=10_000, bins=4).load_state(tmp_path)
    assert loaded.score_batch(table.to_batches()[0])["score"].equals(out["score"])


def test_percentile_bins_span_the_requested_quantiles():
    table = _pool()
    sc = Percentile(score="b", sample_rows=10_000, bins=5, bin_high=0.9).fit(InMemoryFitContext(table))
    out = sc.score_batch(table.to_batches()[0])
    b = table.column("b").to_numpy()
    top = b > np.quantile(b, 0.9)
    assert (out["bin"].to_numpy()[top] == 4).all()
    with pytest.raises(ConfigError, match="bin_low"):
        Percentile(score="b", bin_low=0.5, bin_high=0.5).validate_params()


def test_rank_fusion_is_the_weighted_mean_of_directed_percentiles():
    table = _pool()
    table = table.set_column(2, "a", pa.array(np.nan_to_num(table.column("a").to_numpy(zero_copy_only=False))))
    sc = Fusion(scores={"a": {"weight": 2, "keep": "low"}, "b": 1}, sample_rows=10_000)
    sc.fit(InMemoryFitContext(table))
    got = sc.score_batch(table.to_batches()[0])["score"].to_numpy()
    n = table.num_rows
    pa_ = (rankdata(table.column("a").to_numpy()) - 0.5) / n
    pb = (rankdata(table.column("b").to_numpy()) - 0.5) / n
    np.testing.assert_allclose(got, (2 * (1 - pa_) + pb) / 3, atol=1e-6)


def test_zscore_fusion_nulls_and_state(tmp_path):
    table = _pool()
    sc = Fusion(scores={"a": {"weight": 1}, "b": {"weight": 3, "keep": "low"}}, method="zscore", sample_rows=10_000)
    sc.fit(InMemoryFitContext(table))
    out = sc.score_batch(table.to_batches()[0])
    a = table.column("a").to_numpy(zero_copy_only=False)
    b = table.column("b").to_numpy()
    ok = ~np.isnan(a)
    za = (a - a[ok].mean()) / a[ok].std()
    zb = (b - b.mean()) / b.std()
    got = out["score"].to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(got[ok], ((za - 3 * zb) / 4)[ok], rtol=1e-5, atol=1e-5)
    assert out["score"].null_count == (~ok).sum()
    sc.save_state(tmp_path)
    again = Fusion(**sc.get_params()).load_state(tmp_path)
    assert _by_batches(again, table, 50)["score"].equals(out["score"])


@pytest.mark.parametrize("scores,match", [
    ({}, "scores"), ({"a": -1}, "weight >= 0"), ({"a": {"weight": 1, "keep": "up"}}, "keep"),
    ({"a": 0}, "positive weight"), ({"a": {"wieght": 1}}, "scores"),
])
def test_fusion_bad_scores_are_config_errors(scores, match):
    with pytest.raises(ConfigError, match=match):
        Fusion.from_config({"scores": scores}, where="scorers[2]")


def test_a_fusion_weight_for_a_score_not_computed_fails_at_plan(tmp_path):
    table = pa.table({"id": ["a", "b"], "text": ["one two", "three four"]})
    pipe = datadiet.Pipeline(
        source=datadiet.Source.from_data(table, text_column="text", id_column="id"),
        scorers=[datadiet.scorers.get_scorer("compression")(),
                 Fusion(scores={"compression.ratio": 1, "loss": {"weight": 1, "keep": "low"}})],
        select=[datadiet.select.get_selector("top_k")(score="fusion")],
        budget=datadiet.Budget(documents=1), output=tmp_path / "out", scheduler="synchronous")
    with pytest.raises(ConfigError, match="'loss'"):
        pipe.validate()
    assert not (tmp_path / "out").exists()
