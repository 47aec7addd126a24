"""``evaluate``: does a selection beat random? Train the same small proxy LM on each arm and
compare held-out loss and bits per byte on target sets, over several training seeds.

Every arm trains with the same settings, the same number of steps (so the same number of
training tokens) and the same seeds, with one tokenizer trained once on a seeded sample of
the pool. One Dask task per (arm, seed). Bits per byte = total NLL in nats / ln 2 / total
UTF-8 bytes of the held-out text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import BudgetError, ConfigError
from ..hashing import hash_strings
from ..pipeline.executor import make_executor
from .arms import Arm, build_arms, file_stem, heldout_hashes, read_pool
from .report import format_table, plot, summarise
from .runs import load_run
from .targets import TargetSet, read_targets
from .task import TrainTask, run_train_task

# A small proxy LM: a few minutes for 3 seeds x 2 arms on a laptop CPU.
TRAIN_DEFAULTS = {"arch": "gpt2", "n_layer": 2, "n_embd": 128, "n_head": 4, "n_ctx": 128, "vocab_size": 4096,
                  "batch_size": 16, "lr": 2e-3, "schedule": "cosine", "device": "cpu", "log_every": 50}
MIN_STEPS = 10
TOKENIZER_SAMPLE_BYTES = 8 << 20
_OWN_KEYS = ("seed", "tokenizer", "save_steps", "steps")


@dataclass
class EvalResult:
    """What :func:`evaluate` measured; ``table`` is what ``datadiet eval`` prints.

    Example::

        result = evaluate(["out/dsir"], ["data_samples/target/prose.jsonl"], seeds=2)
        result.summary["scores"]["selection"]["prose"]["loss"]["mean"]
    """

    output_dir: Path
    table: str
    summary: dict
    results: list[dict] = field(default_factory=list)

    @property
    def json_path(self) -> Path:
        return self.output_dir / "eval.json"

    @property
    def plot_path(self) -> Path:
        return self.output_dir / "eval.png"


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple)):
        raise ConfigError(f"eval: seeds must be a count or a list of ints. Got {seeds!r} instead.")
    out = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out) or len(set(out)) < len(out):
        raise ConfigError(f"eval: seeds must be >= 1 seed, distinct ints >= 0. Got {seeds!r} instead.")
    return out


def _train_options(train: dict | None) -> dict:
    from ..models.train import ProxyTrainConfig

    given = dict(train or {})
    own = [k for k in _OWN_KEYS if k in given]
    if own:
        raise ConfigError(f"eval: train.{own[0]} is set by eval itself (use steps=/seeds=); remove it")
    options = {**TRAIN_DEFAULTS, **given}
    ProxyTrainConfig.from_config(options, where="eval train")  # names a wrong key or value
    return options


def _tokenizer_sample(ids: list[str], texts: list[str], seed: int) -> list[str]:
    """Texts of the rows with the smallest seeded id hashes, up to TOKENIZER_SAMPLE_BYTES."""
    sample, size = [], 0
    for i in hash_strings(ids, seed=seed).argsort(kind="stable"):
        sample.append(texts[i])
        size += len(texts[i])
        if size >= TOKENIZER_SAMPLE_BYTES:
            break
    return sample


def _steps_for(arms: list[Arm], steps: int | None, options: dict) -> int:
    per_step = options["batch_size"] * options["n_ctx"]
    smallest = min(arms, key=lambda a: min(a.tokens))
    have = min(smallest.tokens)
    where = f"arm {smallest.name!r}" + (f" (run {smallest.run})" if smallest.run else "")
    if steps is None:
        steps = have // per_step  # one epoch of the smallest arm
        if steps < MIN_STEPS:
            raise BudgetError(
                f"eval: {where} has {have:,} training tokens, fewer than {MIN_STEPS} batches of "
                f"batch_size x n_ctx = {per_step:,} tokens; select more tokens, or lower batch_size/n_ctx or set steps")
        return steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"eval: steps must be an int >= 1. Got {steps!r} instead.")
    if have < per_step:
        raise BudgetError(f"eval: {where} has {have:,} training tokens, fewer than one batch of batch_size x n_ctx "
                          f"= {per_step:,} tokens; select more tokens or lower batch_size/n_ctx")
    return steps


def _save_tokenizer_dir(tokenizer, options: dict, path: Path, seed: int) -> None:
    """The shared tokenizer, saved with an untrained model of the arms' size so that it is a
    model directory, which is what ``train_proxy(tokenizer=...)`` reuses."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..models.loading import quiet_progress
    from ..models.train import ProxyTrainConfig, build_model_config

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(build_model_config(ProxyTrainConfig(**options), tokenizer))
    with quiet_progress():
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _write_targets(targets: list[TargetSet], out: Path) -> dict[str, str]:
    files = {}
    for t in targets:
        path = out / "targets" / f"{t.name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"text": pa.array(t.texts, pa.string())}), path)
        files[t.name] = str(path)
    return files


def evaluate(runs, targets, output=None, *, seeds=3, pool: bool = False, steps: int | None = None,
             train: dict | None = None, heldout_fraction: float = 0.5, split_seed: int = 0, draw_seed: int = 0,
             text_column: str = "text", pool_paths=None, scheduler: str = "local", workers: int | None = None,
             progress: bool = True) -> EvalResult:
    """Train a proxy LM per (arm, seed) and compare held-out target loss and bits per byte.

    ``runs``: finished run directories (one path or several, over the same pool); each gives a
    ``selection`` arm and a ``random`` arm of the same token count. ``targets``: ``PATH`` or
    ``NAME=PATH`` entries; a seeded hash holds out ``heldout_fraction`` of each (see
    :mod:`datadiet.evaluate.targets`). ``pool``: also train on the whole pool. ``steps``: default
    one epoch of the smallest arm. ``train``: ProxyTrainConfig parameters over
    ``TRAIN_DEFAULTS``. ``pool_paths`` replaces the run's recorded input paths. Writes
    ``eval.json``, ``eval.png``, the shared tokenizer, arm texts and models under ``output``
    (default ``<first run>/eval``).
    """
    from ..models.tokenizer import train_tokenizer

    started = time.perf_counter()
    run_dirs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not run_dirs:
        raise ConfigError("eval: give at least one run directory")
    finished = [load_run(r, pool_paths) for r in run_dirs]
    for other in finished[1:]:
        if other.pool_key() != finished[0].pool_key():
            raise ConfigError(f"eval: {other.root} and {finished[0].root} ran over different inputs; "
                              "runs compared in one eval must share their pool")
    seed_list = _seed_list(seeds)
    options = _train_options(train)
    target_sets = read_targets([targets] if isinstance(targets, str) else list(targets), text_column=text_column,
                               split_seed=split_seed, heldout_fraction=heldout_fraction)
    out = Path(output) if output is not None else finished[0].root / "eval"
    out.mkdir(parents=True, exist_ok=True)

    held = heldout_hashes(target_sets)
    pool_rows = read_pool(finished[0], held)
    tokenizer = train_tokenizer(_tokenizer_sample(pool_rows.ids, pool_rows.texts, draw_seed), options["vocab_size"],
                                model_max_length=options["n_ctx"])
    pool_rows.count(tokenizer)
    arms = build_arms(finished, pool_rows, tokenizer, seeds=seed_list, draw_seed=draw_seed, held=held,
                      out_dir=out, include_pool=pool)
    n_steps = _steps_for(arms, steps, options)
    _save_tokenizer_dir(tokenizer, options, out / "tokenizer", draw_seed)
    options = {"warmup": max(1, n_steps // 10), **options, "steps": n_steps, "tokenizer": str(out / "tokenizer")}
    target_files = _write_targets(target_sets, out)
    tasks = [TrainTask(arm.name, seed, str(arm.files[i]), str(out / "models" / f"{file_stem(arm.name)}-seed{seed}"),
                       options, target_files)
             for arm in arms for i, seed in enumerate(seed_list)]
    with make_executor(scheduler, workers, progress) as executor:
        results = executor.map(run_train_task, tasks, desc="eval", labels=[f"{t.arm} seed {t.seed}" for t in tasks])

    settings = {**{k: v for k, v in options.items() if k != "tokenizer"}, "seeds": seed_list,
                "training_tokens": n_steps * options["batch_size"] * options["n_ctx"],
                "heldout_fraction": heldout_fraction, "split_seed": split_seed, "draw_seed": draw_seed}
    summary = summarise(arms, results, target_sets)
    table = format_table(summary, arms, target_sets, settings)
    plot(summary, arms, target_sets, out / "eval.png")
    record = {
        "runs": [str(r.root) for r in finished], "settings": settings,
        "targets": [{"name": t.name, "path": t.path, "rows": t.total_rows, "heldout_rows": len(t.texts),
                     "heldout_bytes": t.n_bytes} for t in target_sets],
        "arms": [{"name": a.name, "kind": a.kind, "run": a.run, "baseline": a.baseline, "rows": a.rows,
                  "tokens": a.tokens, "dropped_heldout_rows": a.dropped_heldout} for a in arms],
        "results": results, **summary, "table": table, "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "eval.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return EvalResult(out, table, summary, results)
