"""Soak: a multi-GB corpus through exact dedup + quality rules + DSIR resampling on a
2-worker LocalCluster, against the same at 1/10 of the size.

The corpus is ../shared/corpora replicated (unique ids per copy, one copy per file, so the
shards are the same size at both scales), written under a temporary directory outside
the repository and deleted afterwards. Reports rows/s, peak RSS of each worker and of the
driver, and checks that no row is lost (input = selected + rejected + quarantined).

    python -m bench.soak                      # 4 GB of text (and 400 MB)
    python -m bench.soak --gb 1.5             # the largest size that fits the machine
    make soak

Goals: throughput within 10% and peak RSS within 1.2x between the two sizes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import corpora_table, emit, write_mixture

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "data_samples" / "target" / "prose.jsonl"

# runs in a fresh process per size: the driver's peak RSS is its own, and a sampler thread
# records each worker process's peak RSS (the LocalCluster's workers are its children)
RUNNER = """
import json, sys, threading, time
import psutil
import datadiet
from datadiet.peak_memory import peak_rss_mb

def sample(peaks, stop):
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            try:
                if not any(w in " ".join(child.cmdline()) for w in ("resource_tracker", "forkserver")):
                    peaks[child.pid] = max(peaks.get(child.pid, 0), child.memory_info().rss)
            except psutil.Error:
                pass
        stop.wait(0.25)

from datadiet.pipeline import executor
import datadiet.report as report

stages = []  # (stage, driver RSS MB after it, driver peak so far, worker peak so far): where memory goes

def tracked(fn, what):
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        desc = what or kwargs.get("desc") or (args[3] if len(args) > 3 else "?")
        stages.append((desc, round(psutil.Process().memory_info().rss / 2**20),
                       round(peak_rss_mb()),
                       round(max(peaks.values(), default=0) / 2**20)))
        return out
    return wrapper

executor.DaskExecutor.map = tracked(executor.DaskExecutor.map, None)
report.build_report = tracked(report.build_report, "report")
cfg = json.loads(sys.argv[1])
peaks, stop = {}, threading.Event()
thread = threading.Thread(target=sample, args=(peaks, stop), daemon=True)
thread.start()
start = time.perf_counter()
result = datadiet.Pipeline.from_config(cfg).run()
seconds = time.perf_counter() - start
stop.set()
thread.join()
print(json.dumps({"seconds": seconds, "counts": result.manifest["counts"], "timings": result.manifest["timings_s"],
                  "driver_rss_mb": peak_rss_mb(),
                  "worker_rss_mb": sorted(v / 2**20 for v in peaks.values()),
                  "driver_rss_mb_after": stages}))
"""


def recipe(src: Path, out: Path) -> dict:
    return {
        "source": {"paths": str(src / "*.parquet"), "id_column": "id", "source_column": "source"},
        "target": {"paths": str(TARGET), "id_column": "id"},
        "scorers": ["exact_hash", "length", "charstats", "repetition",
                    {"type": "dsir", "num_buckets": 10000, "ngram_order": 2}],
        "select": [
            {"type": "exact_dedup", "keep": "first"},
            {"type": "threshold", "rules": {"length.words": {"min": 20}, "charstats.alpha_frac": {"min": 0.4},
                                            "repetition.dup_line_frac": {"max": 0.3}}},
            {"type": "dsir_resample", "score": "dsir"},
        ],
        "budget": {"fraction": 0.05},
        # a write task holds about one output file: files of 64 MB are reached at both sizes, so
        # the comparison shows growth with the corpus, not the small run's files being smaller
        "output": {"path": str(out), "target_file_bytes": 64 << 20},
        "execution": {"scheduler": "local", "workers": 2, "progress": False},
        "seed": 0,
    }


def measure(src: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(recipe(src, out))], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"soak run failed:\n{proc.stderr[-4000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    c = got["counts"]
    got["lost_rows"] = c["input_rows"] - c["selected_rows"] - c["rejected_rows"] - c["quarantined_rows"]
    got["rows_per_s"] = c["input_rows"] / got["seconds"]
    # the per-row stages alone: without cluster start, the fits (pool sample + DSIR), report
    got["streaming_seconds"] = sum(got["timings"].get(k, 0.0) for k in ("score", "select", "write"))
    got["streaming_rows_per_s"] = c["input_rows"] / max(got["streaming_seconds"], 1e-9)
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=4.0, help="GB of text in the large corpus (small: 1/10)")
    parser.add_argument("--tmp", default=None, help="where to build the corpora (default: the system temp dir)")
    args = parser.parse_args()
    import pyarrow.compute as pc

    base_mb = pc.sum(pc.binary_length(corpora_table().column("text"))).as_py() / 1e6  # text of one copy
    copies = max(10, round(args.gb * 1000 / base_mb / 10) * 10)
    work = Path(tempfile.mkdtemp(prefix="datadiet-soak-", dir=args.tmp))
    try:
        sizes = {}
        for name, n in (("small", copies // 10), ("large", copies)):
            info = write_mixture(work / name, copies=n, n_files=n)
            run = measure(work / name, work / f"out-{name}")
            assert run["counts"]["input_rows"] == info["rows"], (run["counts"], info)
            sizes[name] = {"copies": n, "rows": info["rows"], "text_gb": round(info["text_bytes"] / 1e9, 2),
                           "file_gb": round(info["file_bytes"] / 1e9, 2), **run}
            print(json.dumps({name: {k: v for k, v in sizes[name].items() if k != "counts"}}), flush=True)
            shutil.rmtree(work / name)
            shutil.rmtree(work / f"out-{name}")
        small, large = sizes["small"], sizes["large"]
        throughput = large["rows_per_s"] / small["rows_per_s"]
        streaming = large["streaming_rows_per_s"] / small["streaming_rows_per_s"]
        # seconds of fixed cost implied by the two sizes (same per-row cost at both)
        per_row = (large["seconds"] - small["seconds"]) / max(large["rows"] - small["rows"], 1)
        fixed_s = small["seconds"] - per_row * small["rows"]
        worker_rss = max(large["worker_rss_mb"] or [0]) / max(max(small["worker_rss_mb"] or [1]), 1)
        driver_rss = large["driver_rss_mb"] / small["driver_rss_mb"]
        figures = {"implied_fixed_seconds": round(fixed_s, 1), "implied_us_per_row": round(per_row * 1e6, 1)}
        for name, s in sizes.items():
            figures.update({f"{name}_streaming_rows_per_s": round(s["streaming_rows_per_s"]),
                            f"{name}_timings_s": {k: round(v, 1) for k, v in s["timings"].items()},
                            f"{name}_text_gb": s["text_gb"], f"{name}_rows": s["rows"],
                            f"{name}_seconds": round(s["seconds"], 1), f"{name}_rows_per_s": round(s["rows_per_s"]),
                            f"{name}_worker_peak_rss_mb": [round(x) for x in s["worker_rss_mb"]],
                            f"{name}_driver_peak_rss_mb": round(s["driver_rss_mb"]),
                            f"{name}_driver_rss_mb_after_stage": s["driver_rss_mb_after"],
                            f"{name}_lost_rows": s["lost_rows"], f"{name}_selected": s["counts"]["selected_rows"],
                            f"{name}_quarantined": s["counts"]["quarantined_rows"]})
        emit("soak", figures=figures, baseline={"small_rows_per_s": round(small["rows_per_s"])},
             ratio={"throughput_large_over_small": round(throughput, 3),
                    "streaming_throughput_large_over_small": round(streaming, 3),
                    "worker_peak_rss_large_over_small": round(worker_rss, 3),
                    "driver_peak_rss_large_over_small": round(driver_rss, 3)},
             goal="throughput within 10% (ratio >= 0.9) and peak RSS <= 1.2x from 1/10 to full size; 0 lost rows")
        assert small["lost_rows"] == 0 and large["lost_rows"] == 0, "rows were lost"
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
