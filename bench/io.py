"""I/O throughput: read, ingest and write with a select-everything recipe vs raw
pyarrow.parquet read + write of the same files (median of runs).

datadiet runs twice: in one process (synchronous scheduler, like the baseline) and on the
default LocalCluster (one worker process per core, started before timing). Besides wall
time it reports the CPU seconds each copy used in all its processes, which other work on a
shared machine does not inflate (the load average shows how shared it was).

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


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_seconds(executor=None) -> float:
    """CPU seconds used so far by this process and, for a Dask executor, its workers."""
    own = _cpu_now()
    client = getattr(executor, "client", None)
    return own + (sum(client.run(_cpu_now).values()) if client is not None else 0.0)


def timed(fn, cpu: list, executor=None) -> float:
    """Wall seconds of ``fn()``; appends the CPU seconds it used (all processes) to ``cpu``."""
    cpu0, start = cpu_seconds(executor), time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    cpu.append(cpu_seconds(executor) - cpu0)
    return wall


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
        cpu: dict[str, list] = {"raw": [], "one": [], "many": []}
        load = [os.getloadavg()[0]]
        try:
            for i in range(repeats):
                raw.append(timed(lambda i=i: raw_copy(work / "in", work / f"raw{i}"), cpu["raw"]))
                one.append(timed(lambda i=i: datadiet_copy(work / "in", work / f"one{i}", sync), cpu["one"]))
                many.append(timed(lambda i=i: datadiet_copy(work / "in", work / f"many{i}", cluster), cpu["many"],
                                  cluster))
            load.append(os.getloadavg()[0])
        finally:
            cluster.close()
        manifest = datadiet_copy(work / "in", work / "one0", sync)  # rerun: all sidecars reused
        assert manifest["counts"]["input_rows"] == info["rows"]
        raw_t, one_t, many_t = (statistics.median(x) for x in (raw, one, many))
        raw_c, one_c, many_c = (statistics.median(cpu[k]) for k in ("raw", "one", "many"))
        emit("io",
             figures={"rows": info["rows"], "text_MB": round(mb, 1),
                      "datadiet_1_process_MB_per_s": round(mb / one_t, 1),
                      f"datadiet_{workers}_workers_MB_per_s": round(mb / many_t, 1),
                      "cluster_startup_s": round(startup, 2),
                      "ratio_1_process": round(raw_t / one_t, 3),
                      # CPU seconds of all processes (driver and workers): work done, whatever
                      # else shares the machine; the load average says how busy it was
                      "datadiet_1_process_cpu_s": round(one_c, 3), f"datadiet_{workers}_workers_cpu_s": round(many_c, 3),
                      "cpu_ratio_1_process": round(raw_c / one_c, 3),
                      f"cpu_ratio_{workers}_workers": round(raw_c / many_c, 3),
                      "load_average_1min": [round(x, 2) for x in load]},
             baseline={"raw_pyarrow_1_process_MB_per_s": round(mb / raw_t, 1), "raw_s": round(raw_t, 3),
                       "raw_cpu_s": round(raw_c, 3)},
             ratio=round(raw_t / many_t, 3),
             goal=f">= 0.8 x raw pyarrow read+write throughput (ratio: default LocalCluster of {workers} "
                  "workers; ratio_1_process: synchronous scheduler)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
