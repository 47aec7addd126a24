"""I/O throughput: read, ingest and write with a select-everything recipe vs raw
pyarrow.parquet read + write of the same files (median of runs).

datadiet runs twice: in one process (synchronous scheduler, like the baseline) and on the
default LocalCluster (one worker process per core, started before timing).

    python -m bench.io [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import datadiet
from bench.common import emit, write_mixture

# output files of 32 MB of text, so the write stage has several files to spread over workers
TARGET_FILE_BYTES = 32 << 20


def raw_copy(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.parquet")):
        pq.write_table(pq.read_table(path), dst / path.name, compression="zstd", compression_level=3)


def datadiet_copy(src: Path, dst: Path, executor) -> dict:
    pipe = datadiet.Pipeline(
        source=datadiet.Source(paths=str(src / "*.parquet"), id_column="id", source_column="source"),
        output=dst, progress=False, target_file_bytes=TARGET_FILE_BYTES)
    return pipe.run(executor).manifest


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    work = Path(tempfile.mkdtemp(prefix="datadiet-bench-io-"))
    try:
        info = write_mixture(work / "in", copies=1 if args.quick else 4, n_files=16)
        mb = info["text_bytes"] / 1e6
        sync = datadiet.SynchronousExecutor(progress=False)
        workers = os.cpu_count() or 1
        t0 = time.perf_counter()
        cluster = datadiet.DaskExecutor(n_workers=workers, progress=False)
        startup = time.perf_counter() - t0
        raw, one, many = [], [], []
        try:
            for i in range(repeats):
                raw.append(timed(lambda i=i: raw_copy(work / "in", work / f"raw{i}")))
                one.append(timed(lambda i=i: datadiet_copy(work / "in", work / f"one{i}", sync)))
                many.append(timed(lambda i=i: datadiet_copy(work / "in", work / f"many{i}", cluster)))
        finally:
            cluster.close()
        manifest = datadiet_copy(work / "in", work / "one0", sync)  # rerun: all sidecars reused
        assert manifest["counts"]["input_rows"] == info["rows"]
        raw_t, one_t, many_t = (statistics.median(x) for x in (raw, one, many))
        emit("io",
             figures={"rows": info["rows"], "text_MB": round(mb, 1),
                      "datadiet_1_process_MB_per_s": round(mb / one_t, 1),
                      f"datadiet_{workers}_workers_MB_per_s": round(mb / many_t, 1),
                      "cluster_startup_s": round(startup, 2),
                      "ratio_1_process": round(raw_t / one_t, 3)},
             baseline={"raw_pyarrow_1_process_MB_per_s": round(mb / raw_t, 1), "raw_s": round(raw_t, 3)},
             ratio=round(raw_t / many_t, 3),
             goal=f">= 0.8 x raw pyarrow read+write throughput (ratio: default LocalCluster of {workers} "
                  "workers; ratio_1_process: synchronous scheduler)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
