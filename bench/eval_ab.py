"""Does the selection help? ``datadiet eval`` on ../shared/corpora: a DSIR selection toward
Wikipedia against a random subset of the same pool with the same token count.

Eval holds out 10% of wiki_en by a seeded hash of the text
(:func:`datadiet.evaluate.heldout_mask`, split seed 0); the other 90% is free. Pool: a seeded
sample (by id hash, about ``--mb-per-corpus`` MB of text each) of books_pg, code_python,
instruct, reviews_movie, speeches_pd and the free wiki rows. Run: exact dedup, a light quality
threshold, then ``dsir_resample`` toward all the free wiki rows, under a token budget. Eval:
``--seeds`` training seeds of the same small GPT-2 per arm, the same steps for every arm, in
parallel on a local Dask cluster.

Reported: held-out wiki loss and bits per byte, mean ± std over seeds, per arm; the ratio is
random's bits per byte over the selection's (> 1: the selection helps).

    .venv/bin/python -m bench.eval_ab [--seeds 3] [--workers 2] [--pool] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit

os.environ.setdefault("TQDM_DISABLE", "1")

POOL_CORPORA = ("books_pg/train.parquet", "code_python/train.parquet", "instruct/train.parquet",
                "reviews_movie/train.parquet", "speeches_pd/train.parquet")
TARGET = "wiki_en/train.parquet"
HELDOUT = 0.1  # share of wiki_en held out for scoring


def _sample(table: pa.Table, max_bytes: int, seed: int = 0) -> pa.Table:
    """Rows with the smallest seeded id hashes, up to ``max_bytes`` of text."""
    from datadiet.hashing import hash_strings

    order = np.argsort(hash_strings(table.column("id"), seed=seed), kind="stable")
    sizes = np.array([len(t.encode("utf-8")) if t else 0 for t in table.column("text").to_pylist()])
    keep = order[: max(1, int(np.searchsorted(np.cumsum(sizes[order]), max_bytes)))]
    return table.take(pa.array(np.sort(keep)))


def build_pool(dst: Path, mb_per_corpus: float) -> tuple[Path, Path, dict]:
    """Pool shards and the DSIR target file (the wiki half eval does not hold out)."""
    from datadiet.evaluate import heldout_mask

    root = corpora_dir()
    dst.mkdir(parents=True, exist_ok=True)
    columns = ["id", "text", "source"]
    sizes = {}
    for name in POOL_CORPORA:
        part = _sample(pq.read_table(root / name, columns=columns), int(mb_per_corpus * 2**20))
        pq.write_table(part, dst / f"{name.split('/')[0]}.parquet")
        sizes[name.split("/")[0]] = part.num_rows
    wiki = pq.read_table(root / TARGET, columns=columns)
    free = wiki.filter(pa.array(~heldout_mask(wiki.column("text").to_pylist(), 0, HELDOUT)))
    in_pool = _sample(free, int(mb_per_corpus * 2**20))
    pq.write_table(in_pool, dst / "wiki_en.parquet")
    sizes["wiki_en"] = in_pool.num_rows
    target = dst.parent / "wiki_target_fit.parquet"
    pq.write_table(free, target)
    return dst, target, sizes


def recipe(pool: Path, target: Path, out: Path, budget_tokens: int) -> dict:
    return {
        "source": {"paths": str(pool / "*.parquet"), "id_column": "id", "source_column": "source"},
        "target": {"paths": str(target), "id_column": "id"},
        "scorers": ["exact_hash", "length", "charstats",
                    {"type": "dsir", "num_buckets": 100_000, "ngram_order": 2}],
        "select": [
            {"type": "exact_dedup"},
            {"type": "threshold", "rules": {"length.words": {"min": 20}, "charstats.alpha_frac": {"min": 0.4}}},
            {"type": "dsir_resample", "score": "dsir"},
        ],
        "budget": {"tokens": budget_tokens},
        "output": {"path": str(out)},
        "execution": {"scheduler": "synchronous", "progress": False},
        "seed": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mb-per-corpus", type=float, default=0.5)
    parser.add_argument("--budget-tokens", type=int, default=100_000, help="the run's budget (word pieces)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per arm")
    parser.add_argument("--pool", action="store_true", help="also train on the whole pool")
    parser.add_argument("--quick", action="store_true", help="a smaller pool, budget and model (smoke test)")
    parser.add_argument("--out", help="keep the run and eval here (default: a temporary directory)")
    args = parser.parse_args()

    from datadiet import Pipeline
    from datadiet.evaluate import evaluate

    train = {"n_layer": 1, "n_embd": 64, "n_head": 2, "n_ctx": 64, "vocab_size": 1024, "batch_size": 16}
    mb, budget, steps = args.mb_per_corpus, args.budget_tokens, args.steps
    if args.quick:
        mb, budget, steps = 0.2, 40_000, 60
        train = {**train, "batch_size": 8}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out or tmp)
        started = time.perf_counter()
        pool, target, sizes = build_pool(work / "pool", mb)
        run = Pipeline.from_config(recipe(pool, target, work / "run", budget)).run()
        run_seconds = time.perf_counter() - started
        by_source = {s: d["selected"] for s, d in run.manifest["counts"]["by_source"].items()}
        print(f"pool rows per corpus: {sizes}\nselected rows per source: {by_source}\n")
        started = time.perf_counter()
        result = evaluate([work / "run"], [f"wiki={corpora_dir() / TARGET}"], work / "eval", seeds=args.seeds,
                          pool=args.pool, steps=steps, train=train, heldout_fraction=HELDOUT,
                          scheduler="local", workers=args.workers, progress=False)
        eval_seconds = time.perf_counter() - started
        print(result.table + "\n")
    scores = result.summary["scores"]
    [cmp] = result.summary["comparisons"]
    sel, rnd = scores["selection"]["wiki"], scores["random"]["wiki"]
    figures = {
        "selection_wiki_loss": round(sel["loss"]["mean"], 4), "selection_wiki_loss_std": round(sel["loss"]["std"], 4),
        "selection_wiki_bpb": round(sel["bpb"]["mean"], 4), "selection_wiki_bpb_std": round(sel["bpb"]["std"], 4),
        "delta_loss": round(cmp["loss"]["mean"], 4), "delta_loss_std": round(cmp["loss"]["std"], 4),
        "seeds_lower": cmp["loss"]["lower_in"], "seeds": args.seeds, "beyond_noise": cmp["loss"]["beyond_noise"],
        "selected_by_source": by_source, "run_seconds": round(run_seconds, 1), "eval_seconds": round(eval_seconds, 1),
    }
    baseline = {"random_wiki_loss": round(rnd["loss"]["mean"], 4), "random_wiki_loss_std": round(rnd["loss"]["std"], 4),
                "random_wiki_bpb": round(rnd["bpb"]["mean"], 4), "random_wiki_bpb_std": round(rnd["bpb"]["std"], 4)}
    emit("eval_ab" + ("_quick" if args.quick else ""), figures, baseline,
         round(rnd["bpb"]["mean"] / sel["bpb"]["mean"], 4),
         "random bpb / selection bpb on held-out wiki > 1, the gap beyond seed noise")


if __name__ == "__main__":
    main()
