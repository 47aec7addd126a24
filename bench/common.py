"""Shared helpers for benchmarks: corpora location, timing, peak RSS, the JSON result line."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def corpora_dir() -> Path:
    """``$DATADIET_CORPORA`` or ../shared/corpora next to the repository."""
    default = Path(__file__).resolve().parents[2] / "shared" / "corpora"
    path = Path(os.environ.get("DATADIET_CORPORA", default))
    if not path.is_dir():
        sys.exit(f"corpora not found at {path}; set DATADIET_CORPORA")
    return path


def median_time(fn, repeats: int = 3, clock=time.perf_counter) -> tuple[float, object]:
    """Median time of ``fn()`` over ``repeats`` runs (wall time, or ``clock``, e.g.
    ``time.process_time`` for CPU seconds), and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = clock()
        result = fn()
        times.append(clock() - start)
    return statistics.median(times), result


def emit(name: str, figures: dict, baseline: dict, ratio: float | dict, goal: str) -> dict:
    """Print the benchmark's one JSON line and write it to bench/results/<name>.json."""
    record = {"name": name, "figures": figures, "baseline": baseline, "ratio": ratio, "goal": goal}
    line = json.dumps(record, sort_keys=True)
    print(line, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(line + "\n")
    return record


CORPUS_FILES = ("wiki_en/train.parquet", "books_pg/train.parquet", "code_python/train.parquet",
                "instruct/train.parquet", "speeches_pd/train.parquet", "reviews_movie/train.parquet",
                "quality_noisy/fortunes.parquet", "quality_noisy/sms_spam.parquet")


def corpora_table():
    """The shared corpora as one table (id, text, source), in a fixed order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = corpora_dir()
    parts = [pq.read_table(root / name, columns=["id", "text", "source"]) for name in CORPUS_FILES]
    return pa.concat_tables([p.cast(parts[0].schema) for p in parts])


def write_mixture(dst: Path, copies: int = 1, n_files: int = 8, row_group_size: int = 1024) -> dict:
    """Writes the corpora ``copies`` times (ids made unique) as ``n_files`` Parquet shards;
    returns rows, text bytes and file bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = corpora_table()
    dst.mkdir(parents=True, exist_ok=True)
    total_rows = base.num_rows * copies
    per_file = -(-total_rows // n_files)
    written, buffer, file_index = 0, [], 0

    def flush(tables):
        nonlocal file_index
        pq.write_table(pa.concat_tables(tables), dst / f"part-{file_index:05d}.parquet",
                       row_group_size=row_group_size, compression="zstd")
        file_index += 1

    pending = 0
    for c in range(copies):
        copy = base if c == 0 else base.set_column(0, "id", pc.binary_join_element_wise(base.column("id"), str(c), ":"))
        start = 0
        while start < copy.num_rows:
            take = min(per_file - pending, copy.num_rows - start)
            buffer.append(copy.slice(start, take))
            pending += take
            start += take
            written += take
            if pending == per_file:
                flush(buffer)
                buffer, pending = [], 0
    if buffer:
        flush(buffer)
    text_bytes = int(pc.sum(pc.binary_length(base.column("text"))).as_py()) * copies
    file_bytes = sum(p.stat().st_size for p in dst.glob("*.parquet"))
    return {"rows": total_rows, "text_bytes": text_bytes, "file_bytes": file_bytes}
