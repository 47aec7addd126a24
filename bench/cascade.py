"""Cascade benchmark: cheap filters, then proxy-model loss, with and without ``cascade``.

Pool: wiki_en + the noisy corpora (fortunes, SMS, LLM outputs, boilerplate) from
../shared/corpora, so the cheap rules (length, character statistics) drop a real share.
A tiny GPT-2 proxy is trained on wiki first. Both runs use one process (synchronous) so
the time ratio is the scoring work saved; the selections must be identical, because the
cheap stage is a hard filter either way.

Goal: time saved in proportion to what the cheap stage drops (>= 0.8 of the ideal). A model
scorer's cost is per token, so the ideal is the share of tokens dropped; the share of rows
is printed too (the rows the rules drop are mostly short, so it overstates the work).

    python -m bench.cascade [--rows 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import corpora_dir, emit


def _pool(root: Path, rows: int, folder: Path) -> Path:
    parts = [pq.read_table(root / "wiki_en" / "train.parquet", columns=["id", "text", "source"]).slice(0, rows)]
    for name in ("fortunes", "sms_spam", "llm_outputs_selfinstruct", "pg_boilerplate"):
        parts.append(pq.read_table(root / "quality_noisy" / f"{name}.parquet", columns=["id", "text", "source"])
                     .slice(0, rows // 3))
    table = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
    folder.mkdir(parents=True)
    for i in range(4):
        pq.write_table(table.slice(i * (table.num_rows // 4 + 1), table.num_rows // 4 + 1), folder / f"p{i}.parquet")
    return folder


def _recipe(pool: Path, out: Path, model: Path, cascade: bool) -> dict:
    return {
        "source": {"paths": str(pool / "*.parquet"), "id_column": "id", "source_column": "source"},
        "scorers": ["length", "charstats", {"type": "loss", "model": str(model)}],
        "select": [{"type": "threshold", "rules": {"length.words": {"min": 120}, "charstats.alpha_frac": {"min": 0.7}}},
                   {"type": "top_k", "score": "loss", "keep": "low"}],
        "budget": {"tokens": 200_000},
        "output": {"path": str(out)},
        "execution": {"scheduler": "synchronous", "progress": False},
        "cascade": cascade,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1500, help="wiki rows (noisy corpora: a third each)")
    args = parser.parse_args()
    import torch

    import datadiet
    from datadiet.models import train_proxy

    torch.set_num_threads(1)
    root = corpora_dir()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = _pool(root, args.rows, tmp / "pool")
        wiki = pq.read_table(root / "wiki_en" / "train.parquet", columns=["text"]).column("text").to_pylist()[-800:]
        model = train_proxy(wiki, tmp / "proxy", device="cpu", n_layer=2, n_embd=128, n_head=4, n_ctx=256,
                            vocab_size=2048, steps=60, batch_size=8, seed=0).out_dir
        results = {}
        for cascade in (False, True):
            out = tmp / f"out-{cascade}"
            start = time.perf_counter()
            m = datadiet.Pipeline.from_config(_recipe(pool, out, model, cascade)).run().manifest
            results[cascade] = {"seconds": time.perf_counter() - start, "manifest": m,
                                "data": [p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))]}
        plain, casc = results[False], results[True]
        rows = plain["manifest"]["counts"]["input_rows"] - plain["manifest"]["counts"]["quarantined_rows"]
        scored = casc["manifest"]["scorers"]["loss"]["rows_scored"]
        dropped_share = 1 - scored / rows
        loss_plain = plain["manifest"]["scorers"]["loss"]["seconds"]
        loss_casc = casc["manifest"]["scorers"]["loss"]["seconds"]
        saved = 1 - casc["seconds"] / plain["seconds"]
        loss = casc["manifest"]["scorers"]["loss"]
        token_share = loss["flops_avoided"] / (loss["flops"] + loss["flops_avoided"])
        figures = {
            "rows": rows, "rows_scored_by_loss": scored, "cheap_stage_dropped_share": round(dropped_share, 4),
            "wall_s_plain": round(plain["seconds"], 2), "wall_s_cascade": round(casc["seconds"], 2),
            "loss_scorer_s_plain": round(loss_plain, 2), "loss_scorer_s_cascade": round(loss_casc, 2),
            "time_saved_share": round(saved, 4), "cheap_stage_dropped_token_share": round(token_share, 4),
            "ratio_vs_rows_dropped": round(saved / dropped_share, 3) if dropped_share else None,
            "flops_avoided": casc["manifest"]["flops"]["avoided_by_cascade"],
            "identical_selection": plain["data"] == casc["data"],
        }
        # a proxy model's cost is per token, so the ideal saving is the share of tokens dropped
        ratio = round(saved / token_share, 3) if token_share > 0 else None
        print(f"cheap stage drops {dropped_share:.1%} of rows, {token_share:.1%} of tokens; wall time "
              f"{plain['seconds']:.1f}s -> {casc['seconds']:.1f}s ({saved:.1%} saved, {ratio} of the token ideal); "
              f"identical selection: {figures['identical_selection']}")
        emit("cascade", figures, {"wall_s": round(plain["seconds"], 2)}, ratio,
             "time saved >= 0.8 x the share of the expensive scorer's work (tokens) the cheap stage drops; "
             "identical selections")


if __name__ == "__main__":
    main()
