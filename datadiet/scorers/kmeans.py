"""k-means over document embeddings with faiss: cluster id, distance to centroid, size."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .base import NULL_REASON, FitContext, Scorer
from .embedding import embedding_matrix


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


@register("scorer", "kmeans")
class KMeansScorer(Scorer):
    """Clusters the ``embedding_column`` vectors with faiss k-means trained on a sample of
    ``sample_rows`` pool rows (chosen by the fit context's seeded doc_id hash, so the
    sample and the centroids do not depend on sharding), then assigns every row.

    Outputs ``cluster`` (int64), ``distance`` (float32 cosine distance ``1 - cos`` to its
    centroid: the prototypicality of Sorscher et al., small = prototypical) and
    ``cluster_size`` (int64: how many rows of the *fit sample* fell in that cluster, a
    proxy for its share of the corpus; a selector's quotas see the true global sizes).
    ``spherical`` (default) clusters by cosine on L2-normalised vectors; otherwise by L2.
    ``nredo`` runs k-means that many times from different seeded starts and keeps the best.
    Assignment is per row, so it does not depend on how rows are batched.

    Example::

        KMeansScorer(embedding_column="embedding", n_clusters=1000, sample_rows=200_000)
    """

    requires_fit: ClassVar[bool] = True
    view_columns: ClassVar[tuple[str, ...]] = ()
    _constraints = {
        "n_clusters": Interval(int, 1, None),
        "sample_rows": Interval(int, 1, None),
        "niter": Interval(int, 1, None),
        "nredo": Interval(int, 1, None),
    }

    def __init__(
        self,
        embedding_column: str = "embedding",
        n_clusters: int = 100,
        sample_rows: int = 100_000,
        niter: int = 20,
        seed: int = 0,
        spherical: bool = True,
        nredo: int = 1,
    ):
        self.embedding_column = embedding_column
        self.n_clusters = n_clusters
        self.sample_rows = sample_rows
        self.niter = niter
        self.seed = seed
        self.spherical = spherical
        self.nredo = nredo

    def required_inputs(self) -> tuple[str, ...]:
        return (self.embedding_column,)

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"cluster": pa.int64(), "distance": pa.float32(), "cluster_size": pa.int64()}

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(_unit_rows(x) if self.spherical else x, dtype=np.float32)

    def fit(self, context: FitContext) -> KMeansScorer:
        import faiss

        self.validate_params()
        sample = context.sample(self.sample_rows, columns=[self.embedding_column])
        if self.embedding_column not in sample.column_names:
            raise ConfigError(f"kmeans: the fit sample has no column {self.embedding_column!r}")
        x, valid = embedding_matrix(sample.column(self.embedding_column), self.embedding_column)
        x = self._prepare(x[valid])
        if self.n_clusters > len(x):
            raise ConfigError(
                f"kmeans: n_clusters={self.n_clusters} is more than the {len(x)} sampled embeddings "
                f"(sample_rows={self.sample_rows}); lower n_clusters or raise sample_rows"
            )
        km = faiss.Kmeans(
            x.shape[1],
            self.n_clusters,
            niter=self.niter,
            nredo=self.nredo,
            seed=self.seed,
            spherical=self.spherical,
            verbose=False,
            min_points_per_centroid=1,
            max_points_per_centroid=max(256, -(-len(x) // self.n_clusters)),
        )
        km.train(x)
        self.centroids_ = np.asarray(km.centroids, dtype=np.float32).copy()
        self.inertia_ = float(km.obj[-1]) if len(km.obj) else 0.0
        self.sample_size_ = int(len(x))
        self._index = None
        clusters, _ = self._assign(x)
        self.sample_cluster_sizes_ = np.bincount(clusters, minlength=self.n_clusters).astype(np.int64)
        return self

    def setup(self) -> None:
        import faiss

        centroids = getattr(self, "centroids_", None)
        if centroids is None:
            raise ConfigError("kmeans: the scorer is not fitted; call fit() or load_state() first")
        if getattr(self, "_index", None) is not None:
            return
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        index = faiss.IndexFlatIP(centroids.shape[1]) if self.spherical else faiss.IndexFlatL2(centroids.shape[1])
        index.add(centroids)
        self._index = index
        self._unit_centroids = _unit_rows(centroids.astype(np.float64))

    def _assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cluster, cosine distance) of prepared rows ``x``."""
        self.setup()
        d = self.centroids_.shape[1]
        if x.shape[1] != d:
            raise ConfigError(
                f"kmeans: column {self.embedding_column!r} holds {x.shape[1]}-dimensional embeddings but the "
                f"saved centroids are {d}-dimensional"
            )
        if len(x) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        _, labels = self._index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
        labels = labels[:, 0].astype(np.int64)
        cos = np.einsum("ij,ij->i", _unit_rows(x.astype(np.float64)), self._unit_centroids[labels])
        return labels, (1.0 - cos).astype(np.float32)

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        x, valid = embedding_matrix(batch.column(self.embedding_column), self.embedding_column)
        n = batch.num_rows
        cluster = np.zeros(n, dtype=np.int64)
        distance = np.zeros(n, dtype=np.float32)
        if x.shape[1] == 0 and not valid.any():
            x = np.zeros((n, self.centroids_.shape[1]), dtype=np.float32)
        labels, dist = self._assign(self._prepare(x[valid]))
        cluster[valid], distance[valid] = labels, dist
        sizes = np.asarray(self.sample_cluster_sizes_, dtype=np.int64)[cluster]
        null = ~valid
        return {
            "cluster": pa.array(cluster, mask=null),
            "distance": pa.array(distance, mask=null),
            "cluster_size": pa.array(sizes, mask=null),
            NULL_REASON: pa.array(np.where(valid, None, "no embedding").tolist(), type=pa.string()),
        }
