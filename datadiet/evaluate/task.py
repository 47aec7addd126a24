"""One Dask task per (arm, seed): train a proxy LM on the arm's texts, score the held-out targets.

Torch runs on one thread per task, so tasks on a local cluster do not oversubscribe the
cores and a seed gives the same weights on any scheduler.

Example::

    task = TrainTask("selection", 0, "out/eval/arms/selection.parquet", "out/eval/models/selection-seed0",
                     {"n_layer": 2, "steps": 100, "tokenizer": "out/eval/tokenizer"},
                     {"prose": "out/eval/targets/prose.parquet"})
    run_train_task(task)["targets"]["prose"]   # {"nll": ..., "tokens": ..., "bytes": ...}
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

SCORE_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class TrainTask:
    arm: str
    seed: int
    train_file: str
    out_dir: str
    train_options: dict  # ProxyTrainConfig parameters, with the shared tokenizer
    targets: dict  # target name -> Parquet file of its held-out texts


def _texts(path: str) -> list[str]:
    return pq.read_table(path, columns=["text"]).column("text").to_pylist()


def score_texts(model, tokenizer, texts: list[str], n_ctx: int) -> dict:
    """Total NLL (nats) over every token of ``texts``, each scored after an eos as its
    context (as documents start in training), with its token and UTF-8 byte counts."""
    from ..models.nll import TokenScorer

    eos = tokenizer.eos_token_id
    enc = tokenizer(texts, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"]
    sequences = [np.asarray([eos, *ids], dtype=np.int64) for ids in enc]
    engine = TokenScorer([model], max_length=n_ctx, stride=max(1, n_ctx // 2),
                         batch_tokens=max(SCORE_BATCH_TOKENS, n_ctx), pad_id=eos)
    [stats] = engine.score(sequences)
    return {"nll": float(stats.nll_sum.sum()), "tokens": int(stats.count.sum()),
            "bytes": sum(len(t.encode("utf-8")) for t in texts)}


def run_train_task(task: TrainTask) -> dict:
    import torch
    from transformers.utils import logging as hf_logging

    from ..models.loading import clear_cache, load_causal_lm, load_tokenizer
    from ..models.train import train_proxy

    hf_logging.set_verbosity_error()  # one config notice per task would flood the terminal
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        result = train_proxy(_texts(task.train_file), task.out_dir, seed=task.seed, **task.train_options)
        train_seconds = time.perf_counter() - start
        model = load_causal_lm(task.out_dir, dtype="float32", device=task.train_options.get("device", "auto"))
        tokenizer = load_tokenizer(task.out_dir)
        n_ctx = int(task.train_options["n_ctx"])
        scores = {name: score_texts(model, tokenizer, _texts(path), n_ctx) for name, path in task.targets.items()}
        clear_cache()
    finally:
        torch.set_num_threads(threads)
    return {"arm": task.arm, "seed": task.seed, "final_train_loss": result.final_loss,
            "tokens_seen": result.tokens_seen, "train_seconds": round(train_seconds, 2),
            "seconds": round(time.perf_counter() - start, 2), "targets": scores}
