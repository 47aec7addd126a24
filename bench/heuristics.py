"""Throughput of the cheap text scorers (length, compression, repetition, charstats) on one core.

Documents are ~1 KB pieces cut from wiki_en, books_pg, reviews_movie, instruct and
code_python (short texts are joined, long ones cut at line ends), interleaved so every
batch mixes domains. Each scorer runs over Arrow record batches in one process pinned to
one CPU; the baseline is a plain per-document Python loop computing the same features
(``bench.heuristics_reference``), timed on a subset in the same run. A second baseline is
DataTrove's ``GopherRepetitionFilter`` + ``GopherQualityFilter`` (the ``bench`` extra), run
on every document of a subset (after a warm-up that loads its word tokenizer); they stop at
a document's first failing rule, so they compute at most what the four scorers compute.
Times are CPU seconds of this process (``time.process_time``), which is pinned to one
core, so docs/s is per core and other load on a shared machine does not count. Median of 3.

In the combined run the four scorers see each batch one after the other, as in the score
stage, so they share one whitespace tokenisation (``datadiet.scorers._tokens``).

    .venv/bin/python -m bench.heuristics [--quick] [--docs N] [--batch-size B]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench import heuristics_reference as reference  # noqa: E402
from bench.common import corpora_dir, emit  # noqa: E402
from bench.common import median_time as common_median_time  # noqa: E402
from datadiet.scorers import get_scorer  # noqa: E402
from datadiet.scorers._tokens import forget  # noqa: E402

CORPORA = ("wiki_en", "books_pg", "reviews_movie", "instruct", "code_python")
SCORERS = ("length", "compression", "repetition", "charstats")
DOC_CHARS = 1000
NAIVE = {
    "length": lambda text, n_tokens: reference.length(text, n_tokens),
    "compression": lambda text, n_tokens: reference.compression(text),
    "repetition": lambda text, n_tokens: reference.repetition(text),
    "charstats": lambda text, n_tokens: reference.charstats(text),
}


def median_time(fn, repeats: int = 3) -> tuple[float, object]:
    """Median CPU seconds of ``fn()`` (this process is pinned to one core), and the last result."""
    return common_median_time(fn, repeats, clock=time.process_time)


def cut_documents(texts, limit: int) -> list[str]:
    """~DOC_CHARS-character documents: lines are gathered until the size is reached."""
    docs, current, size = [], [], 0
    for text in texts:
        for line in text.split("\n") + [""]:
            current.append(line)
            size += len(line) + 1
            if size >= DOC_CHARS:
                docs.append("\n".join(current)[: 2 * DOC_CHARS])
                current, size = [], 0
                if len(docs) >= limit:
                    return docs
    return docs


def load_documents(n_docs: int) -> list[str]:
    per_corpus = -(-n_docs // len(CORPORA))
    root = corpora_dir()
    pools = []
    for name in CORPORA:
        texts = pq.read_table(root / name / "train.parquet", columns=["text"]).column("text").to_pylist()
        pools.append(cut_documents(itertools.cycle(texts), per_corpus))
    mixed = [doc for group in itertools.zip_longest(*pools) for doc in group if doc is not None]
    return mixed[:n_docs]


def make_batches(docs: list[str], batch_size: int) -> list[pa.RecordBatch]:
    batches = []
    for start in range(0, len(docs), batch_size):
        chunk = docs[start : start + batch_size]
        batches.append(
            pa.record_batch(
                {
                    "doc_id": pa.array([f"doc-{start + i}" for i in range(len(chunk))]),
                    "text": pa.array(chunk, pa.string()),
                    "n_tokens": pa.array([len(t) // 4 for t in chunk], pa.int64()),
                }
            )
        )
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 documents, 400 for the baseline")
    parser.add_argument("--docs", type=int, default=None, help="documents to score (default 20,000)")
    parser.add_argument("--naive-docs", type=int, default=None, help="documents for the baseline (default 2,000)")
    parser.add_argument("--datatrove-docs", type=int, default=None, help="documents for DataTrove (default 500)")
    parser.add_argument("--batch-size", type=int, default=2048)
    args = parser.parse_args()
    n_docs = args.docs or (4000 if args.quick else 20000)
    n_naive = min(n_docs, args.naive_docs or (400 if args.quick else 2000))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    docs = load_documents(n_docs)
    batches = make_batches(docs, args.batch_size)
    naive_docs = docs[:n_naive]
    naive_tokens = [len(t) // 4 for t in naive_docs]
    mean_chars = sum(map(len, docs)) / len(docs)
    print(f"{len(docs)} documents, mean {mean_chars:.0f} chars, batches of {args.batch_size}; baseline on {n_naive}")

    scorers = {name: get_scorer(name)() for name in SCORERS}
    for scorer in scorers.values():
        scorer.setup()
        scorer.score_batch(batches[0])  # warm caches (character tables) outside the timing

    figures, baseline, ratios = {}, {}, {}
    for name, scorer in scorers.items():
        seconds, _ = median_time(lambda s=scorer: [(forget(), s.score_batch(b)) for b in batches])
        naive = NAIVE[name]
        naive_seconds, _ = median_time(lambda f=naive: [f(t, k) for t, k in zip(naive_docs, naive_tokens)])
        figures[f"{name}_docs_per_s"] = round(len(docs) / seconds)
        baseline[f"{name}_naive_docs_per_s"] = round(n_naive / naive_seconds)
        ratios[name] = round(figures[f"{name}_docs_per_s"] / baseline[f"{name}_naive_docs_per_s"], 2)
        print(f"{name:12s} {figures[f'{name}_docs_per_s']:>9,} docs/s   naive "
              f"{baseline[f'{name}_naive_docs_per_s']:>7,} docs/s   ratio {ratios[name]:.1f}x")

    def combined():
        for batch in batches:
            forget()  # shared within a batch only
            for scorer in scorers.values():
                scorer.score_batch(batch)

    seconds, _ = median_time(combined)
    # version 1's codec (zlib level 6) in the same run, alone and in the combination
    zlib6 = get_scorer("compression")(codec="zlib", level=6)
    zlib6_seconds, _ = median_time(lambda: [(forget(), zlib6.score_batch(b)) for b in batches])
    v1 = [scorers["length"], zlib6, scorers["repetition"], scorers["charstats"]]
    v1_seconds, _ = median_time(lambda: [(forget(), [s.score_batch(b) for s in v1]) for b in batches])
    baseline["compression_zlib6_docs_per_s"] = round(len(docs) / zlib6_seconds)
    baseline["combined_with_zlib6_docs_per_s"] = round(len(docs) / v1_seconds)
    ratios["compression_vs_zlib6"] = round(zlib6_seconds / (len(docs) / figures["compression_docs_per_s"]), 2)
    ratios["combined_vs_zlib6_combination"] = round(v1_seconds / seconds, 2)
    print(f"{'zlib-6':12s} {baseline['compression_zlib6_docs_per_s']:>9,} docs/s alone, "
          f"{baseline['combined_with_zlib6_docs_per_s']:,} docs/s combined (version 1's codec)")
    naive_seconds = sum(n_naive / baseline[f"{name}_naive_docs_per_s"] for name in SCORERS)
    figures["docs_per_s_per_core"] = round(len(docs) / seconds)
    figures["mean_doc_chars"] = round(mean_chars)
    figures["n_docs"] = len(docs)
    baseline["combined_naive_docs_per_s"] = round(n_naive / naive_seconds)
    ratios["combined"] = round(figures["docs_per_s_per_core"] / baseline["combined_naive_docs_per_s"], 2)
    print(f"{'combined':12s} {figures['docs_per_s_per_core']:>9,} docs/s   naive "
          f"{baseline['combined_naive_docs_per_s']:>7,} docs/s   ratio {ratios['combined']:.1f}x")
    datatrove_rate = time_datatrove(docs[: args.datatrove_docs or (100 if args.quick else 500)])
    if datatrove_rate is not None:
        baseline["datatrove_gopher_docs_per_s"] = round(datatrove_rate)
        ratios["combined_vs_datatrove"] = round(figures["docs_per_s_per_core"] / datatrove_rate, 1)
        print(f"{'datatrove':12s} {round(datatrove_rate):>9,} docs/s   (GopherRepetitionFilter + GopherQualityFilter)   "
              f"combined is {ratios['combined_vs_datatrove']:.0f}x")
    emit("heuristics", figures, baseline, ratios, "combined >= 20000 docs/s per core on ~1KB docs")


def time_datatrove(docs: list[str]) -> float | None:
    """docs/s of DataTrove's Gopher repetition + quality filters, or None (said) without datatrove."""
    try:
        from datatrove.data import Document
        from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    except ImportError:
        print("datatrove baseline SKIPPED: pip install -e '.[bench]'")
        return None
    repetition, quality = GopherRepetitionFilter(), GopherQualityFilter()
    documents = [Document(text=t, id=str(i)) for i, t in enumerate(docs)]

    def run():
        return [(repetition.filter(d), quality.filter(d)) for d in documents]

    run()  # loads the word tokenizer
    seconds, _ = median_time(run)
    return len(documents) / seconds


if __name__ == "__main__":
    main()
