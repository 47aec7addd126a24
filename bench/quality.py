"""Quality classifier vs DSIR: finding a held-out target domain in a mixed pool, on one core.

For each target domain (wiki_en, books_pg, reviews_movie of ../shared/corpora) the domain's
documents are split in two by a hash of the document (article, book or review): one half
is the target set, the other half is held out and hidden in a pool with 9x as many rows
drawn (seeded) from every other corpus, so the held-out rows are 10% of the pool. Both
``quality_classifier`` and ``dsir`` (2-gram, 10,000 buckets, the pool as raw sample) are
fitted on the target half against the pool and score the pool; reported are the top-10%
precision (share of held-out target rows among the pool's top 10%; 1.0 is perfect,
0.1 is chance) and fit + scoring docs/s on one core. Median of 3 timings.

    .venv/bin/python -m bench.quality [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import corpora_dir, corpora_table, emit, median_time  # noqa: E402
from datadiet.hashing import hash_strings  # noqa: E402
from datadiet.scorers.base import InMemoryFitContext  # noqa: E402
from datadiet.scorers.dsir import DSIRScorer  # noqa: E402
from datadiet.scorers.quality_classifier import QualityClassifierScorer  # noqa: E402

#: target domain file -> (its ``source`` value in the corpora, the column grouping its rows into documents)
DOMAINS = {"wiki_en": ("wiki", "doc"), "books_pg": ("books", "doc"), "reviews_movie": ("reviews", "id")}


def _view(ids, texts) -> pa.Table:
    return pa.table({"doc_id": ids, "text": texts, "n_tokens": pc.utf8_length(texts.cast(pa.string()))})


def make_split(domain: str, others: pa.Table, seed: int = 0, limit: int | None = None):
    """(target half, pool, mask of held-out target rows in the pool)."""
    source, group = DOMAINS[domain]
    table = pq.read_table(corpora_dir() / domain / "train.parquet", columns=["id", "text", group] if group != "id"
                          else ["id", "text"])
    table = table.filter(pc.is_valid(table.column("text")))
    half = (hash_strings(table.column(group).cast(pa.string()), seed=seed) & np.uint64(1)).astype(bool)
    target, held = table.filter(pa.array(half)), table.filter(pa.array(~half))
    if limit:
        target, held = target.slice(0, limit), held.slice(0, limit)
    rest = others.filter(pc.not_equal(others.column("source"), source))
    rest = rest.filter(pc.is_valid(rest.column("text")))
    order = np.argsort(hash_strings(rest.column("id"), seed=seed + 1), kind="stable")[: 9 * held.num_rows]
    rest = rest.take(pa.array(np.sort(order)))
    pool = _view(pa.concat_arrays([held.column("id").combine_chunks(), rest.column("id").combine_chunks()]),
                 pa.concat_arrays([held.column("text").combine_chunks(), rest.column("text").combine_chunks()]))
    is_held = np.r_[np.ones(held.num_rows, bool), np.zeros(rest.num_rows, bool)]
    return _view(target.column("id").combine_chunks(), target.column("text").combine_chunks()), pool, is_held


def top_precision(scores: np.ndarray, is_held: np.ndarray, fraction: float = 0.1) -> float:
    scores = np.where(np.isnan(scores), -np.inf, scores)
    k = max(1, int(len(scores) * fraction))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(is_held[top].mean())


def fit_and_score(make, target: pa.Table, pool: pa.Table) -> tuple[float, float, np.ndarray]:
    """(fit seconds, scoring seconds, scores), medians of 3."""
    fits, scores_s, scores = [], [], None
    for _ in range(3):
        scorer = make()
        fit_s, _ = median_time(lambda s=scorer: s.fit(InMemoryFitContext(pool=pool, target=target, seed=0)), 1)
        s_s, out = median_time(lambda s=scorer: [s.score_batch(b)["score"] for b in pool.to_batches(4096)], 1)
        fits.append(fit_s)
        scores_s.append(s_s)
        scores = np.concatenate([o.to_numpy(zero_copy_only=False) for o in out])
    return statistics.median(fits), statistics.median(scores_s), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="at most 200 target and 200 held-out rows per domain")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)

    others = corpora_table()
    makers = {
        "quality_classifier": lambda: QualityClassifierScorer(),
        "dsir": lambda: DSIRScorer(ngram_order=2, num_buckets=10_000, raw_sample_rows=1 << 30),
    }
    figures, per = {}, {name: {"precision": [], "docs_per_s": [], "fit_s": [], "score_docs_per_s": []} for name in makers}
    for domain in DOMAINS:
        target, pool, is_held = make_split(domain, others, limit=200 if args.quick else None)
        figures[f"{domain}_pool_rows"] = pool.num_rows
        figures[f"{domain}_target_rows"] = target.num_rows
        for name, make in makers.items():
            fit_s, score_s, scores = fit_and_score(make, target, pool)
            precision = top_precision(scores, is_held)
            # docs/s of the whole job: fitting on target + pool, then scoring the pool
            rate = pool.num_rows / (fit_s + score_s)
            figures[f"{domain}_{name}_top10_precision"] = round(precision, 4)
            figures[f"{domain}_{name}_fit_s"] = round(fit_s, 3)
            figures[f"{domain}_{name}_score_docs_per_s"] = round(pool.num_rows / score_s)
            per[name]["precision"].append(precision)
            per[name]["docs_per_s"].append(rate)
            print(f"{domain:14s} {name:18s} top-10% precision {precision:.3f}   fit {fit_s:6.2f} s   "
                  f"score {pool.num_rows / score_s:>8,.0f} docs/s   fit+score {rate:>8,.0f} docs/s", flush=True)
    for name in makers:
        figures[f"{name}_mean_top10_precision"] = round(float(np.mean(per[name]["precision"])), 4)
        figures[f"{name}_fit_plus_score_docs_per_s_per_core"] = round(float(np.median(per[name]["docs_per_s"])))
    figures["quick"] = args.quick
    ratio = {
        "top10_precision": round(figures["quality_classifier_mean_top10_precision"]
                                 / max(figures["dsir_mean_top10_precision"], 1e-9), 3),
        "docs_per_s": round(figures["quality_classifier_fit_plus_score_docs_per_s_per_core"]
                            / max(figures["dsir_fit_plus_score_docs_per_s_per_core"], 1), 3),
    }
    emit("quality", figures,
         baseline={"scorer": "dsir (2-gram, 10,000 buckets) on the same split",
                   "mean_top10_precision": figures["dsir_mean_top10_precision"],
                   "fit_plus_score_docs_per_s_per_core": figures["dsir_fit_plus_score_docs_per_s_per_core"]},
         ratio=ratio, goal="classifier top-10% precision >= DSIR's on a held-out target domain; docs/s reported")


if __name__ == "__main__":
    main()
