"""kmeans scorer: structure recovery, determinism, batching independence, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.scorers.base import InMemoryFitContext
from datadiet.scorers.kmeans import KMeansScorer
from datadiet.select.prototypicality import Prototypicality

from .conftest import make_table


def blobs(n=1200, k=6, d=24, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    labels = rng.integers(k, size=n)
    x = centers[labels] + rng.normal(scale=0.15, size=(n, d))
    return x.astype(np.float32), labels


def table_of(x, dtype=None):
    flat = pa.array(x.reshape(-1), pa.float32()).cast(dtype or pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, x.shape[1])
    return make_table([""] * len(x), embedding=column)


def score_in_chunks(scorer, table, k):
    bounds = np.linspace(0, table.num_rows, k + 1).astype(int)
    parts = [scorer.score_batch(table.slice(a, b - a).combine_chunks().to_batches()[0]) for a, b in zip(bounds, bounds[1:])]
    return {key: np.concatenate([p[key].to_numpy(zero_copy_only=False) for p in parts]) for key in ("cluster", "distance", "cluster_size")}


def test_recovers_clusters_and_distance_is_cosine():
    x, labels = blobs()
    table = table_of(x)
    scorer = KMeansScorer(n_clusters=6, sample_rows=800, seed=3, nredo=5).fit(InMemoryFitContext(pool=table, seed=1))
    out = score_in_chunks(scorer, table, 1)
    # each true blob maps to a single cluster
    for c in range(6):
        assert len(np.unique(out["cluster"][labels == c])) == 1
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cents = scorer.centroids_ / np.linalg.norm(scorer.centroids_, axis=1, keepdims=True)
    np.testing.assert_allclose(out["distance"], 1 - np.sum(unit * cents[out["cluster"]], axis=1), atol=1e-5)
    assert np.all(np.argmax(unit @ cents.T, axis=1) == out["cluster"])
    assert scorer.sample_cluster_sizes_.sum() == 800
    np.testing.assert_array_equal(out["cluster_size"], scorer.sample_cluster_sizes_[out["cluster"]])


def test_deterministic_and_independent_of_chunks(tmp_path):
    x, _ = blobs(n=900, k=8, seed=2)
    x += np.random.default_rng(9).normal(scale=0.5, size=x.shape).astype(np.float32)  # overlapping clusters
    table = table_of(x, pa.float16())
    a = KMeansScorer(n_clusters=8, sample_rows=600, seed=11).fit(InMemoryFitContext(pool=table))
    b = KMeansScorer(n_clusters=8, sample_rows=600, seed=11).fit(InMemoryFitContext(pool=table))
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    two, five = score_in_chunks(a, table, 2), score_in_chunks(b, table, 5)
    for key in two:
        np.testing.assert_array_equal(two[key], five[key])
    other = KMeansScorer(n_clusters=8, sample_rows=600, seed=12).fit(InMemoryFitContext(pool=table))
    assert not np.array_equal(other.centroids_, a.centroids_)
    a.save_state(tmp_path)
    loaded = KMeansScorer(n_clusters=8, sample_rows=600, seed=11).load_state(tmp_path)
    again = score_in_chunks(loaded, table, 3)
    for key in two:
        np.testing.assert_array_equal(again[key], two[key])


def test_null_embedding_gets_reason():
    x, _ = blobs(n=100, k=2)
    scorer = KMeansScorer(n_clusters=2, sample_rows=100).fit(InMemoryFitContext(pool=table_of(x)))
    column = pa.array([x[0].tolist(), None, x[1].tolist()], pa.list_(pa.float32()))
    out = scorer.score_batch(make_table(["", "", ""], embedding=column).to_batches()[0])
    assert out["cluster"].null_count == 1 and out["cluster"][1].as_py() is None
    assert out["null_reason"].to_pylist() == [None, "no embedding", None]


def test_more_clusters_than_sample():
    x, _ = blobs(n=50, k=2)
    with pytest.raises(ConfigError, match=r"n_clusters=64 is more than the 50 sampled embeddings"):
        KMeansScorer(n_clusters=64, sample_rows=1000).fit(InMemoryFitContext(pool=table_of(x)))


def test_wrong_dimension_against_saved_centroids(tmp_path):
    x, _ = blobs(n=100, k=2, d=24)
    KMeansScorer(n_clusters=2, sample_rows=100).fit(InMemoryFitContext(pool=table_of(x))).save_state(tmp_path)
    loaded = KMeansScorer(n_clusters=2).load_state(tmp_path)
    wrong = table_of(np.ones((4, 16), np.float32))
    with pytest.raises(ConfigError, match="16-dimensional.*24-dimensional"):
        loaded.score_batch(wrong.to_batches()[0])


def test_prototypicality_keeps_least_prototypical_first():
    table = pa.table({"doc_id": ["a", "b", "c", "d"], "n_tokens": pa.array([1] * 4, pa.int64()),
                      "source": ["s"] * 4, "kmeans.distance": pa.array([0.3, 0.1, None, 0.7], pa.float32())})
    keys, valid = Prototypicality().key(table, seed=0)
    assert valid.tolist() == [True, True, False, True]
    assert np.argsort(-keys[valid].astype(np.float64)).tolist() == [2, 0, 1]  # d, a, b
    keys, valid = Prototypicality(keep="most").key(table, seed=0)
    assert np.argsort(-keys[valid].astype(np.float64)).tolist() == [1, 0, 2]  # b, a, d


def test_pickles_without_runtime_state():
    import pickle

    x, _ = blobs(n=200, k=3)
    table = table_of(x)
    scorer = KMeansScorer(n_clusters=3, sample_rows=200).fit(InMemoryFitContext(pool=table))
    before = scorer.score_batch(table.to_batches()[0])["cluster"]
    clone = pickle.loads(pickle.dumps(scorer))  # a faiss index is not picklable: it is rebuilt
    assert getattr(clone, "_index", None) is None
    assert clone.score_batch(table.to_batches()[0])["cluster"].equals(before)
