"""Peak RSS of a run on a 1x and a 10x corpus (same shard size, one process), and on a 20x
one: bounded buffers that the 1x run does not fill (output files, the report's sample, the
allocator's kept pages) show as growth from 1x to 10x, growth with the corpus also from 10x on.

Recipes: ``quality`` (cheap scorers, quality rules, top-k under a token budget) and
``dedup`` (exact dedup across the corpus, hash-partitioned, then a random sample).

    python -m bench.memory [--quick] [--recipe quality|dedup]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import emit, write_mixture

RUNNER = """
import json, sys, time
import datadiet
from datadiet.peak_memory import peak_rss_mb
start = time.perf_counter()
cfg = json.loads(sys.argv[1])
result = datadiet.Pipeline.from_config(cfg).run()
print(json.dumps({"maxrss_mb": peak_rss_mb(),
                  "seconds": time.perf_counter() - start, "rows": result.manifest["counts"]["input_rows"],
                  "selected": result.manifest["counts"]["selected_rows"]}))
"""


RECIPES = {
    "quality": {
        "scorers": ["length", "compression", "charstats"],
        "select": [{"type": "threshold", "rules": {"length.words": {"min": 10}}},
                   {"type": "top_k", "score": "compression.ratio", "keep": "high"}],
        "budget": {"fraction": 0.5, "fraction_of": "tokens"},
    },
    "dedup": {
        "scorers": ["exact_hash"],
        "select": [{"type": "exact_dedup"}, {"type": "random"}],
        "budget": {"fraction": 0.5},
    },
}


def recipe(src: Path, out: Path, kind: str) -> dict:
    return {
        "source": {"paths": str(src / "*.parquet"), "id_column": "id", "source_column": "source"},
        **RECIPES[kind],
        "output": {"path": str(out), "target_file_bytes": 64 << 20},
        "execution": {"scheduler": "synchronous", "progress": False},
    }


def measure(cfg: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cfg)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2x instead of 10x")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="quality")
    parser.add_argument("--beyond", type=int, default=20,
                        help="a further multiple, to tell bounded buffers the 1x run does not fill from "
                             "growth with the corpus (0: skip; skipped with --quick)")
    args = parser.parse_args()
    big = 2 if args.quick else 10
    beyond = 0 if args.quick else args.beyond
    work = Path(tempfile.mkdtemp(prefix="datadiet-bench-mem-"))
    try:
        small_info = write_mixture(work / "x1", copies=1, n_files=4)
        big_info = write_mixture(work / f"x{big}", copies=big, n_files=4 * big)
        small = measure(recipe(work / "x1", work / "out1", args.recipe))
        large = measure(recipe(work / f"x{big}", work / f"out{big}", args.recipe))
        assert small["rows"] == small_info["rows"] and large["rows"] == big_info["rows"]
        growth = large["maxrss_mb"] / small["maxrss_mb"]
        further = {}
        if beyond > big:
            shutil.rmtree(work / f"x{big}", ignore_errors=True)
            shutil.rmtree(work / f"out{big}", ignore_errors=True)
            write_mixture(work / f"x{beyond}", copies=beyond, n_files=4 * beyond)
            far = measure(recipe(work / f"x{beyond}", work / f"out{beyond}", args.recipe))
            further = {f"rows_{beyond}x": far["rows"], f"peak_rss_mb_{beyond}x": round(far["maxrss_mb"], 1),
                       f"seconds_{beyond}x": round(far["seconds"], 1),
                       f"peak_rss_growth_{big}x_to_{beyond}x": round(far["maxrss_mb"] / large["maxrss_mb"], 3)}
        emit("memory" if args.recipe == "quality" else f"memory_{args.recipe}",
             figures={"corpus_multiple": big, "rows_1x": small["rows"], f"rows_{big}x": large["rows"],
                      "peak_rss_mb_1x": round(small["maxrss_mb"], 1),
                      f"peak_rss_mb_{big}x": round(large["maxrss_mb"], 1),
                      "seconds_1x": round(small["seconds"], 1), f"seconds_{big}x": round(large["seconds"], 1),
                      "text_mb_1x": round(small_info["text_bytes"] / 1e6, 1),
                      f"docs_per_s_{big}x": round(large["rows"] / large["seconds"]),
                      **further, "recipe": RECIPES[args.recipe]},
             baseline={"peak_rss_mb_1x": round(small["maxrss_mb"], 1)},
             ratio=round(growth, 3), goal=f"peak RSS growth from 1x to {big}x corpus <= 1.2")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
