"""``datadiet eval``: train the same proxy LM on a run's selection and on random subsets of
its pool, and print held-out target loss and bits per byte over several seeds.

Example::

    datadiet eval out/dsir --target data_samples/target/prose.jsonl --seeds 3 --pool
"""

from __future__ import annotations

import argparse

# CLI flag -> ProxyTrainConfig parameter of the arms' proxy LM
MODEL_FLAGS = {"arch": "arch", "layers": "n_layer", "width": "n_embd", "heads": "n_head", "context": "n_ctx",
               "vocab": "vocab_size", "batch_size": "batch_size", "lr": "lr", "device": "device"}


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` to an ``argparse`` subparsers object."""
    from .harness import TRAIN_DEFAULTS

    p = subparsers.add_parser(
        "eval", help="A/B test: does a run's selection beat random on held-out target loss?",
        description="Trains the same small proxy LM (same steps, tokens, seeds and tokenizer) on each run's "
                    "selection and on a random subset of its pool with the same token count, then reports "
                    "held-out loss and bits per byte on the targets (mean ± std over seeds).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run directories over the same pool")
    p.add_argument("--target", action="append", required=True, metavar="[NAME=]PATH[,...]",
                   help="target set(s) to score; comma-separated or repeated")
    p.add_argument("-o", "--output", metavar="OUT_DIR", help="where eval.json, eval.png go (default RUN_DIR/eval)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per arm (default 3)")
    p.add_argument("--pool", action="store_true", help="also train on the whole pool")
    p.add_argument("--steps", type=int, help="training steps per arm (default: one epoch of the smallest arm)")
    p.add_argument("--heldout-fraction", type=float, default=0.5,
                   help="share of each target held out for scoring, by a seeded hash of the text (default 0.5)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split")
    p.add_argument("--draw-seed", type=int, default=0, help="seed of the random subsets and tokenizer sample")
    p.add_argument("--text-column", default="text", help="text column of the targets")
    p.add_argument("--pool-input", nargs="+", metavar="PATH", help="the pool's paths, if the run's inputs moved")
    for flag, key in MODEL_FLAGS.items():
        kind = float if key == "lr" else str if key in ("arch", "device") else int
        p.add_argument(f"--{flag.replace('_', '-')}", type=kind, help=f"proxy {key} (default {TRAIN_DEFAULTS[key]})")
    p.add_argument("--scheduler", default="local", help="local (default), synchronous, or tcp://HOST:PORT")
    p.add_argument("--workers", type=int, help="worker processes for the local cluster")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_eval, handler=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    from .harness import evaluate

    targets = [t.strip() for entry in args.target for t in entry.split(",") if t.strip()]
    train = {key: getattr(args, flag) for flag, key in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    result = evaluate(
        args.runs, targets, args.output, seeds=args.seeds, pool=args.pool, steps=args.steps, train=train,
        heldout_fraction=args.heldout_fraction, split_seed=args.split_seed, draw_seed=args.draw_seed,
        text_column=args.text_column, pool_paths=args.pool_input, scheduler=args.scheduler, workers=args.workers,
        progress=not args.quiet,
    )
    print(result.table)
    print(f"\neval.json:  {result.json_path}\nplot:       {result.plot_path}")
    return 0
