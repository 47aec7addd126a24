"""Near-duplicate removal: datadiet's ``minhash`` + ``near_dedup`` vs DataTrove's MinHash
pipeline (its 4 stages on a LocalPipelineExecutor) vs ``datasketch`` MinHash + MinHashLSH,
in one run, on the same documents with the same parameters: 5-word shingles, 32 bands x 8
rows = 256 permutations, threshold 0.8 (datadiet verifies candidate pairs by the exact
Jaccard of their shingle sets; the peers take every LSH candidate, as they are used). With
32 x 8 a pair of similarity 0.8 is a candidate with probability 1 - (1 - 0.8**8)**32 = 0.997
(0.95 at 0.74), so recall at the threshold is bounded by 0.997.

Documents from ../shared/corpora: every row of books_pg and quality_noisy/pg_boilerplate
(Project Gutenberg chunks; licence headers repeat across books) and a seeded 2,500 of
dedup_gpteacher_toolformer (tool-use prompts sharing long templates, with the author's own
near-duplicates). Each tool runs in one process on one core, end to end from Parquet files
to its decisions (datadiet and DataTrove also write the kept rows). Median of 3 runs, the tools taking turns.

Quality, against exact Jaccard of the same shingles (lower case, words split on whitespace
and ASCII punctuation), overall and per part (gutenberg, toolformer):

- ``precision``: share of removed rows with exact Jaccard >= 0.8 to some other row of their
  cluster (``precision_within_0.05``: >= 0.75); ``keeper_pair_precision``: share of
  (removed row, the row it is a duplicate of) pairs >= 0.8, which transitive clusters lower;
- ``recall``: share of the true pairs (exact Jaccard >= 0.8) of a seeded sample of 2,000
  documents against the whole corpus that the tool put in one cluster.

Peak RSS of a datadiet run (a subprocess, fixed shard size) at 1x and 10x the corpus.

    .venv/bin/python -m bench.near_dedup [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit

FILES = ("books_pg/train.parquet", "quality_noisy/pg_boilerplate.parquet", "dedup_gpteacher_toolformer/train.parquet")
SUBSETS = ("gutenberg", "gutenberg", "toolformer")
FULL, QUICK = (2465, 107, 2500), (600, 107, 800)  # rows taken from each file
SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
NGRAM, BANDS, ROWS, THRESHOLD = 5, 32, 8, 0.8
ROWS_PER_SHARD = 2048
_SEPARATORS = re.compile(r"[\s!-/:-@\[-`{-~]+")


def load(quick: bool) -> pa.Table:
    """id, text, source and ``part`` (gutenberg or toolformer) of the benchmark documents:
    every Gutenberg row and a seeded sample of the toolformer rows."""
    parts = []
    for i, name in enumerate(FILES):
        table = pq.read_table(corpora_dir() / name, columns=["id", "text", "source"]).cast(SCHEMA)
        table = table.filter(pc.invert(pc.is_null(table.column("text"))))
        keep = (QUICK if quick else FULL)[i]
        if keep < table.num_rows:
            table = table.take(pa.array(np.sort(np.random.default_rng(i).choice(table.num_rows, keep, replace=False))))
        parts.append(table.append_column("part", pa.array([SUBSETS[i]] * table.num_rows)))
    return pa.concat_tables(parts).combine_chunks()


def write(table: pa.Table, dst: Path, copies: int = 1) -> Path:
    dst.mkdir(parents=True)
    for c in range(copies):
        copy = table if c == 0 else table.set_column(0, "id", pc.binary_join_element_wise(table.column("id"), str(c), ":"))
        pq.write_table(copy.drop_columns(["part"]), dst / f"part-{c:05d}.parquet", row_group_size=1024)
    return dst


def shingle_set(text: str) -> set:
    words = [w for w in _SEPARATORS.split(text.lower()) if w]
    if len(words) < NGRAM:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# -- the three tools: each returns {removed row index: row index it duplicates} and a cluster per row ------


def datadiet_recipe(src: Path, out: Path) -> dict:
    return {"source": {"paths": str(src / "*.parquet"), "id_column": "id", "source_column": "source",
                       "rows_per_shard": ROWS_PER_SHARD},
            "scorers": [{"type": "minhash", "shingle_size": NGRAM, "num_perm": BANDS * ROWS, "bands": BANDS}],
            "select": [{"type": "near_dedup", "threshold": THRESHOLD}],
            "output": {"path": str(out), "target_file_bytes": 16 << 20},
            "execution": {"scheduler": "synchronous", "progress": False}}


RUNNER = """
import json, sys, time
import datadiet
from datadiet.peak_memory import peak_rss_mb
start = time.perf_counter()
result = datadiet.Pipeline.from_config(json.loads(sys.argv[1])).run()
print(json.dumps({"maxrss_mb": peak_rss_mb(),
                  "seconds": time.perf_counter() - start, "rows": result.manifest["counts"]["input_rows"],
                  "rejected": result.manifest["counts"]["rejected_rows"]}))
"""


def run_datadiet(src: Path, out: Path, index: dict[str, int]):
    import datadiet

    datadiet.Pipeline.from_config(datadiet_recipe(src, out)).run()
    rejected = pa.concat_tables([pq.read_table(p) for p in sorted((out / "rejected").glob("*.parquet"))])
    removed = {index[d]: index[k] for d, k, why in zip(rejected.column("doc_id").to_pylist(),
                                                       rejected.column("duplicate_of").to_pylist(),
                                                       rejected.column("reason").to_pylist())
               if why == "near_duplicate"}
    return removed


def run_datatrove(src: Path, work: Path, index: dict[str, int]):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.hashing import HashConfig

    # xxhash 4 refuses str input in DataTrove's xxhash helper; sha1 is its other hash
    config = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))

    def reader():
        return ParquetReader(str(src), glob_pattern="*.parquet", text_key="text", id_key="id")

    stages = [
        ([reader(), MinhashDedupSignature(str(work / "sigs"), config=config)], 1),
        ([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)], BANDS),
        ([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config, save_cluster_id=True)], 1),
        ([reader(), MinhashDedupFilter(str(work / "remove"), load_cluster_ids=True,
                                       exclusion_writer=ParquetWriter(str(work / "removed"))),
          ParquetWriter(str(work / "output"))], 1),
    ]
    for k, (pipeline, tasks) in enumerate(stages):
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / f"logs{k}"),
                                  skip_completed=False).run()

    def rows(folder: Path) -> list[tuple[int, int]]:
        files = sorted(folder.rglob("*.parquet")) if folder.exists() else []
        out = []
        for f in files:
            t = pq.read_table(f, columns=["id", "metadata"])
            cluster = pc.struct_field(t.column("metadata"), "minhash_cluster_id").to_pylist()
            out += [(index[d], c) for d, c in zip(t.column("id").to_pylist(), cluster)]
        return out

    kept = {c: i for i, c in rows(work / "output") if c != -1}
    return {i: kept[c] for i, c in rows(work / "removed")}


def run_datasketch(texts: list[str], order: list[int]):
    """The usual datasketch loop: rows in doc_id order, each queried against the kept ones
    and inserted when nothing matches."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=BANDS * ROWS, params=(BANDS, ROWS))
    removed = {}
    for i in order:
        m = MinHash(num_perm=BANDS * ROWS, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingle_set(texts[i])])
        found = lsh.query(m)
        if found:
            removed[i] = min(found)
        else:
            lsh.insert(i, m)
    return removed


# -- quality --------------------------------------------------------------------------------


def shingle_matrix(sets: list[set]):
    """Rows x shingles 0/1 sparse matrix and the set sizes."""
    from scipy import sparse

    vocab: dict = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for sh in s:
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sets), len(vocab)))
    return x, np.asarray(x.sum(axis=1)).ravel()


def true_pairs(x, size: np.ndarray, sample: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (sample row, any row) with exact Jaccard >= THRESHOLD."""
    inter = (x[sample] @ x.T).tocoo()
    a, b = sample[inter.row], inter.col
    j = inter.data / (size[a] + size[b] - inter.data)
    ok = (j >= THRESHOLD) & (a != b)
    return {(min(p, q), max(p, q)) for p, q in zip(a[ok].tolist(), b[ok].tolist())}


def quality(removed: dict[int, int], x, size: np.ndarray, truth: set) -> dict:
    """Removal precision (a removed row has exact Jaccard >= THRESHOLD with some row of its
    cluster; also within 0.05 of it), keeper-pair precision (removed row vs the row it is a
    duplicate of) and recall of the true pairs (both rows in one cluster)."""
    parent = dict(removed)

    def root(i):
        while i in parent:
            i = parent[i]
        return i

    clusters: dict[int, list[int]] = {}
    for r in sorted(removed):
        clusters.setdefault(root(r), []).append(r)
    best, keeper = [], []
    for k, members in clusters.items():
        rows = np.array([k] + members)
        inter = (x[rows] @ x[rows].T).toarray()
        j = inter / (size[rows][:, None] + size[rows][None, :] - inter)
        np.fill_diagonal(j, 0)
        best += j[1:].max(axis=1).tolist()
        keeper += [float(j[1 + i, rows.tolist().index(removed[m])]) for i, m in enumerate(members)]
    best, keeper = np.array(best), np.array(keeper)
    found = [root(a) == root(b) for a, b in truth]
    share = lambda mask: round(float(np.mean(mask)), 4) if len(mask) else 1.0  # noqa: E731
    return {"removed": len(removed), "precision": share(best >= THRESHOLD), "recall": share(found),
            "precision_within_0.05": share(best >= THRESHOLD - 0.05), "keeper_pair_precision": share(keeper >= THRESHOLD),
            "clusters": len(clusters), "largest_cluster": max((len(m) + 1 for m in clusters.values()), default=0)}


def timed(tools: dict, repeats: int) -> dict:
    """{name: (median seconds, last result)}; the tools take turns, so load that comes and
    goes on a shared machine falls on all of them."""
    times: dict = {name: [] for name in tools}
    results: dict = {}
    for _ in range(repeats):
        for name, fn in tools.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (float(np.median(times[name])), results[name]) for name in tools}


def peak_rss(src: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(datadiet_recipe(src, out))],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,507 documents, 1 repeat, 3x for memory")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    big = 3 if args.quick else 10
    logging.disable(logging.WARNING)
    from datatrove.utils.logging import logger as dt_logger

    dt_logger.remove()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    table = load(args.quick)
    n = table.num_rows
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    index = {d: i for i, d in enumerate(ids)}
    order = sorted(range(n), key=ids.__getitem__)
    work = Path(tempfile.mkdtemp(prefix="datadiet-bench-neardedup-"))
    try:
        src = write(table, work / "x1")

        def ours():
            shutil.rmtree(work / "dd", ignore_errors=True)
            return run_datadiet(src, work / "dd", index)

        def trove():
            shutil.rmtree(work / "dt", ignore_errors=True)
            return run_datatrove(src, work / "dt", index)

        runs = timed({"datadiet": ours, "datatrove": trove, "datasketch": lambda: run_datasketch(texts, order)},
                     repeats)
        (ours_s, ours_removed), (trove_s, trove_removed), (sketch_s, sketch_removed) = runs.values()

        x, size = shingle_matrix([shingle_set(t) for t in texts])
        sample = np.array(sorted(random.Random(0).sample(range(n), min(2000, n))))
        truth = true_pairs(x, size, sample)
        part = np.array(table.column("part").to_pylist())
        q = {}
        for name, removed in (("datadiet", ours_removed), ("datatrove", trove_removed),
                              ("datasketch", sketch_removed)):
            q[name] = quality(removed, x, size, truth)
            for subset in sorted(set(SUBSETS)):
                inside = {r: k for r, k in removed.items() if part[r] == subset and part[k] == subset}
                pairs = {(a, b) for a, b in truth if part[a] == subset and part[b] == subset}
                q[name][subset] = quality(inside, x, size, pairs)

        small = peak_rss(src, work / "rss1")
        large_src = write(table, work / f"x{big}", copies=big)
        large = peak_rss(large_src, work / f"rss{big}")
        assert small["rows"] == n and large["rows"] == big * n
        emit(
            "near_dedup",
            figures={
                "docs": n, "text_mb": round(sum(map(len, texts)) / 1e6, 2), "true_pairs_in_sample": len(truth),
                "datadiet_docs_per_s_per_core": round(n / ours_s, 1),
                "datadiet": q["datadiet"],
                "peak_rss_mb_1x": round(small["maxrss_mb"], 1), f"peak_rss_mb_{big}x": round(large["maxrss_mb"], 1),
                "peak_rss_growth": round(large["maxrss_mb"] / small["maxrss_mb"], 3),
                f"seconds_{big}x": round(large["seconds"], 1), f"removed_{big}x": large["rejected"],
                "params": {"shingle_words": NGRAM, "bands": BANDS, "rows": ROWS, "threshold": THRESHOLD},
                "repeats": repeats, "quick": args.quick,
            },
            baseline={
                "datatrove": {"docs_per_s_per_core": round(n / trove_s, 1), **q["datatrove"]},
                "datasketch": {"docs_per_s_per_core": round(n / sketch_s, 1), **q["datasketch"]},
            },
            ratio={"vs_datatrove": round(trove_s / ours_s, 2), "vs_datasketch": round(sketch_s / ours_s, 2)},
            goal="docs/s per core >= 5x DataTrove; precision and recall >= 0.95; peak RSS 10x/1x <= 1.2",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
