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


def median_time(fn, repeats: int = 3) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def emit(name: str, figures: dict, baseline: dict, ratio: float | dict, goal: str) -> dict:
    """Print the benchmark's one JSON line and write it to bench/results/<name>.json."""
    record = {"name": name, "figures": figures, "baseline": baseline, "ratio": ratio, "goal": goal}
    line = json.dumps(record, sort_keys=True)
    print(line, flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(line + "\n")
    return record
