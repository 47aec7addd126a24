"""Exact dedup throughput: datadiet's ``exact_hash`` scorer + ``exact_dedup`` selector vs a
naive Python baseline (a dict from normalised text to the first doc_id), one core, in one
run, on every row of ../shared/corpora (about 50k documents, 52 MB of text).

Both normalise the same way (NFKC, lower case, whitespace runs to one space, stripped) and
keep the smallest doc_id per group. Reported: documents per second per core for each, their
ratio, and whether both found the same duplicates. Peak RSS through the whole pipeline (1x vs
10x corpus) is measured by the pipeline benchmarks, not here.

    .venv/bin/python -m bench.dedup [--quick]
"""

from __future__ import annotations

import argparse
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit, median_time


def load(quick: bool) -> pa.Table:
    parts = []
    for path in sorted(corpora_dir().glob("*/*.parquet")):
        t = pq.read_table(path, columns=["id", "text"])
        parts.append(pa.table({"doc_id": t.column("id"), "text": t.column("text")}))
    table = pa.concat_tables(parts).combine_chunks()
    if quick:
        table = table.take(pa.array(np.sort(np.random.default_rng(0).choice(table.num_rows, 5000, replace=False))))
    n_tokens = pa.array([len(t.split()) if t else 0 for t in table.column("text").to_pylist()], pa.int64())
    return table.append_column("n_tokens", n_tokens).append_column("source", pa.array(["bench"] * table.num_rows))


def naive(table: pa.Table) -> set[str]:
    """doc_ids dropped as exact duplicates by a plain dict of normalised texts."""
    first: dict[str, str] = {}
    dropped = set()
    rows = sorted(zip(table.column("doc_id").to_pylist(), table.column("text").to_pylist()))
    for doc_id, text in rows:
        if text is None:
            continue
        key = " ".join(unicodedata.normalize("NFKC", text).lower().split())
        if key in first:
            dropped.add(doc_id)
        else:
            first[key] = doc_id
    return dropped


def datadiet(table: pa.Table) -> set[str]:
    from datadiet.scorers.exact_hash import ExactHash
    from datadiet.select.exact_dedup import ExactDedup

    scorer = ExactHash()
    scorer.setup()
    hashes = [scorer.score_batch(b)["score"] for b in table.to_batches(max_chunksize=8192)]
    narrow = table.select(["doc_id", "n_tokens", "source"]).append_column("exact_hash", pa.chunked_array(hashes))
    out = ExactDedup().decide(narrow)
    return set(np.asarray(narrow.column("doc_id").to_pylist(), dtype=object)[~np.asarray(out["keep"])].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows")
    args = parser.parse_args()
    table = load(args.quick)
    ours_s, ours = median_time(lambda: datadiet(table), repeats=3)
    base_s, base = median_time(lambda: naive(table), repeats=3)
    n = table.num_rows
    text_mb = pa.compute.sum(pa.compute.binary_length(table.column("text"))).as_py() / 1e6
    emit(
        "dedup",
        figures={
            "rows": n,
            "text_mb": round(text_mb, 2),
            "datadiet_docs_per_s_per_core": round(n / ours_s, 1),
            "datadiet_mb_per_s_per_core": round(text_mb / ours_s, 2),
            "duplicates_found": len(ours),
            "same_duplicates_as_baseline": ours == base,
            "duplicates_only_in_datadiet": len(ours - base),
            "duplicates_only_in_baseline": len(base - ours),
            "quick": args.quick,
        },
        baseline={"implementation": "Python dict of normalised texts", "docs_per_s_per_core": round(n / base_s, 1)},
        ratio=round(base_s / ours_s, 2),
        goal="documents/s per core above the naive baseline (peak-RSS growth <= 1.2x from 1x to 10x: pipeline bench)",
    )


if __name__ == "__main__":
    main()
