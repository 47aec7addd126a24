"""Selection under a token budget with source caps: the ranker engine on 2 workers vs
pandas sort_values + cumsum + the same caps in one process, on the same score table.

The score table is synthetic and narrow (doc_id, n_tokens, n_bytes, source, score), written
as Parquet shards of 1M rows straight into a run directory's narrow-table slots, and the
engine (``stages.rank.run_ranker``, the budget step of every run) is called on it with a
StepContext, as the pipeline's runner does. Each side runs in its own process, so each peak
RSS is its own; the engine's is the driver's (the workers are separate processes).

    python -m bench.select [--rows 10M,30M] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import emit

SHARD_ROWS = 1_000_000
SOURCES = ["web", "code", "books", "forums"]
CAPS = {"web": 0.4, "code": 0.2}
SHARE = 0.3  # budget: this share of the table's tokens
FP = "benchselect00000"


def generate(root: Path, rows: int) -> dict:
    """Narrow tables of ``rows`` rows in SHARD_ROWS shards; returns total tokens."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from datadiet.rundir import RunDir

    run = RunDir(root)
    total = 0
    for s in range(-(-rows // SHARD_ROWS)):
        lo, hi = s * SHARD_ROWS, min(rows, (s + 1) * SHARD_ROWS)
        rng = np.random.default_rng(s)
        n = hi - lo
        tokens = rng.integers(10, 2000, n)
        ids = pc.binary_join_element_wise("doc-", pc.cast(pa.array(np.arange(lo, hi)), pa.string()), "")
        src = pa.DictionaryArray.from_arrays(pa.array(rng.choice(len(SOURCES), n, p=[0.5, 0.2, 0.2, 0.1]), pa.int32()),
                                             pa.array(SOURCES)).cast(pa.string())
        table = pa.table({"doc_id": ids, "row": pa.array(np.arange(n), pa.int64()),
                          "n_tokens": pa.array(tokens, pa.int64()), "n_bytes": pa.array(tokens * 4, pa.int64()),
                          "source": src, "score": pa.array(rng.normal(size=n).astype(np.float32))})
        path = run.narrow_table(FP, f"shard-{s:05d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, row_group_size=65_536)
        total += int(tokens.sum())
    return {"tokens": total, "shards": -(-rows // SHARD_ROWS)}


ENGINE = """
import json, sys, time
from pathlib import Path
root, tokens, shards, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from datadiet.peak_memory import peak_rss_mb
from datadiet.pipeline.executor import make_executor
from datadiet.rundir import RunDir
from datadiet.select.base import Budget
from datadiet.select.top_k import TopK
from datadiet.stages.engine import StepContext
from datadiet.stages.rank import run_ranker
from datadiet.stages.shard_ref import ShardRef
caps = json.loads(sys.argv[5])
executor = make_executor("local", workers, progress=False)
executor.map(len, [[1]] * workers, desc="warm")  # cluster started before the clock
refs = [ShardRef(i, f"shard-{i:05d}", root, "benchselect00000", {}) for i in range(shards)]
budget = Budget(tokens=int(tokens * 0.3), caps=caps)
ctx = StepContext(executor, RunDir(root), refs, [r.key for r in refs], "bench" + str(shards), 0, {}, budget, None, {})
start = time.perf_counter()
run_ranker(ctx, TopK(score="score", keep="high"), "step-00", None)
seconds = time.perf_counter() - start
executor.close()
b = ctx.info["budget"]
print(json.dumps({"seconds": seconds, "maxrss_mb": peak_rss_mb(),
                  "used": b["used"], "limit": b["limit"], "kept_tokens": ctx.info["kept_tokens"]}))
"""

PANDAS = """
import json, sys, time
from pathlib import Path
import pandas as pd

def peak_rss_mb():  # VmHWM, as datadiet.peak_memory reads it (not imported: it would load datadiet)
    return [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0] / 1024

root, tokens, caps = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
start = time.perf_counter()
files = sorted(root.glob("scores/_ingest/*/*.parquet"))
df = pd.concat([pd.read_parquet(f, columns=["doc_id", "n_tokens", "source", "score"]) for f in files],
               ignore_index=True)
limit = int(tokens * 0.3)
df = df.sort_values(["score", "doc_id"], ascending=[False, True], kind="stable")
src_cum = df.groupby("source", sort=False)["n_tokens"].cumsum()
cap = df["source"].map({s: int(v * limit) for s, v in caps.items()}).fillna(float("inf"))
ok = src_cum <= cap
fill = df["n_tokens"].where(ok, 0).cumsum()
keep = ok & (fill <= limit)
kept = int(df["n_tokens"][keep].sum())
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "maxrss_mb": peak_rss_mb(),
                  "kept_tokens": kept, "limit": limit}))
"""


def _run(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rows(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * mult)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10M,30M", help="comma-separated table sizes (first one: the time goal)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="1M and 2M rows")
    ap.add_argument("--no-pandas-above", default="30M", help="skip the pandas baseline above this size")
    args = ap.parse_args()
    sizes = [10**6, 2 * 10**6] if args.quick else [_rows(r) for r in args.rows.split(",")]
    figures, baseline = {}, {}
    for rows in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="dd-bench-select-"))
        try:
            meta = generate(tmp, rows)
            eng = _run(ENGINE, tmp, meta["tokens"], meta["shards"], args.workers, json.dumps(CAPS))
            assert eng["used"] <= eng["limit"]
            label = f"{rows // 10**6}M" if rows >= 10**6 else str(rows)
            figures[label] = {"engine_s": round(eng["seconds"], 2), "engine_driver_rss_mb": round(eng["maxrss_mb"]),
                              "kept_tokens": eng["kept_tokens"], "limit": eng["limit"]}
            if rows <= _rows(args.no_pandas_above):
                pdr = _run(PANDAS, tmp, meta["tokens"], json.dumps(CAPS))
                baseline[label] = {"pandas_s": round(pdr["seconds"], 2), "pandas_rss_mb": round(pdr["maxrss_mb"]),
                                   "kept_tokens": pdr["kept_tokens"]}
            print(json.dumps({label: {"engine": figures[label], "pandas": baseline.get(label)}}), file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    first, last = list(figures)[0], list(figures)[-1]
    ratio = {"time_vs_pandas_at_" + first: round(figures[first]["engine_s"] / baseline[first]["pandas_s"], 2)
             if first in baseline else None,
             f"driver_rss_{last}_over_{first}": round(figures[last]["engine_driver_rss_mb"]
                                                      / figures[first]["engine_driver_rss_mb"], 3)}
    for label in figures:
        if label in baseline:
            ratio[f"rss_engine_driver_over_pandas_at_{label}"] = round(
                figures[label]["engine_driver_rss_mb"] / baseline[label]["pandas_rss_mb"], 3)
    emit("select" + ("_quick" if args.quick else ""), figures, baseline, ratio,
         f"driver peak RSS <= 1.2x from the smallest to the largest size; time <= 2x pandas at {first} rows "
         f"on {args.workers} workers (token budget {SHARE:g} of the tokens, caps {CAPS})")


if __name__ == "__main__":
    main()
