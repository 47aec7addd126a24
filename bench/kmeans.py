"""k-means: datadiet's ``kmeans`` scorer (faiss) vs scikit-learn ``MiniBatchKMeans``, same
embeddings, same k, same number of threads, in one run.

Embeddings: every row of ../shared/corpora (about 50k documents) as hashed word-bigram
TF-IDF, randomly projected to 256 dimensions and L2-normalised (real text structure,
computed once, not timed). Timed for each side: training on all rows, then assigning
every row. Reported: the speed ratio and the inertia ratio (sum of squared L2 distances
of the rows to their assigned centroid, computed the same way for both; < 1 means
faiss found tighter clusters). faiss runs with ``spherical=False`` so both minimise the
same objective; the spherical (cosine) default's time is reported too.

    .venv/bin/python -m bench.kmeans [--quick] [--threads N]
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit, median_time


def embeddings(quick: bool, dim: int = 256) -> np.ndarray:
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.random_projection import SparseRandomProjection

    texts = []
    for path in sorted(corpora_dir().glob("*/*.parquet")):
        texts += [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]
    if quick:
        texts = [texts[i] for i in np.random.default_rng(0).choice(len(texts), 8000, replace=False)]
    counts = HashingVectorizer(ngram_range=(1, 2), n_features=1 << 20, alternate_sign=False, norm=None).transform(texts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    x = SparseRandomProjection(n_components=dim, random_state=0).fit_transform(tfidf)
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def inertia(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    return float(np.sum((x.astype(np.float64) - centroids[labels].astype(np.float64)) ** 2))


def run_datadiet(x: np.ndarray, k: int, niter: int, spherical: bool):
    from datadiet.scorers.base import InMemoryFitContext
    from datadiet.scorers.kmeans import KMeansScorer

    column = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), x.shape[1])
    table = pa.table({"doc_id": pa.array([f"{i:08d}" for i in range(len(x))]), "embedding": column})
    scorer = KMeansScorer(n_clusters=k, sample_rows=len(x), niter=niter, seed=0, spherical=spherical)
    scorer.fit(InMemoryFitContext(pool=table))
    labels = np.concatenate(
        [scorer.score_batch(b)["cluster"].to_numpy() for b in table.to_batches(max_chunksize=8192)]
    )
    return scorer.centroids_, labels


def run_sklearn(x: np.ndarray, k: int, niter: int):
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=k, batch_size=4096, max_iter=niter, n_init=1, random_state=0)
    km.fit(x)
    return km.cluster_centers_.astype(np.float32), km.predict(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8,000 rows and k=64")
    parser.add_argument("--threads", type=int, default=1, help="threads for both (faiss OpenMP, sklearn)")
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--niter", type=int, default=20)
    args = parser.parse_args()
    k = args.k or (64 if args.quick else 256)

    import faiss
    from threadpoolctl import threadpool_limits

    x = embeddings(args.quick)
    faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        faiss_s, (c_f, l_f) = median_time(lambda: run_datadiet(x, k, args.niter, spherical=False), repeats=3)
        spherical_s, _ = median_time(lambda: run_datadiet(x, k, args.niter, spherical=True), repeats=1)
        sk_s, (c_s, l_s) = median_time(lambda: run_sklearn(x, k, args.niter), repeats=3)
    inertia_f, inertia_s = inertia(x, c_f, l_f), inertia(x, c_s, l_s)
    emit(
        "kmeans",
        figures={
            "rows": int(len(x)),
            "dim": int(x.shape[1]),
            "k": k,
            "niter": args.niter,
            "threads": args.threads,
            "datadiet_faiss_s": round(faiss_s, 3),
            "datadiet_faiss_spherical_s": round(spherical_s, 3),
            "datadiet_inertia": round(inertia_f, 3),
            "quick": args.quick,
        },
        baseline={
            "implementation": "scikit-learn MiniBatchKMeans(batch_size=4096, n_init=1) fit + predict",
            "seconds": round(sk_s, 3),
            "inertia": round(inertia_s, 3),
        },
        ratio={"speed": round(sk_s / faiss_s, 2), "inertia": round(inertia_f / inertia_s, 4)},
        goal="speed ratio > 1 and inertia ratio <= 1 (faiss at least as tight)",
    )


if __name__ == "__main__":
    main()
