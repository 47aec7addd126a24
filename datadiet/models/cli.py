"""``datadiet proxy train``: train a proxy LM from Parquet/JSONL texts.

Example::

    datadiet proxy train --input data/*.parquet -o runs/proxy --layers 4 --width 256 \\
        --steps 2000 --save-steps 500,1000,2000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable

log = logging.getLogger("datadiet.train")

# CLI flag -> ProxyTrainConfig parameter
FLAGS = {
    "arch": "arch", "layers": "n_layer", "width": "n_embd", "heads": "n_head", "context": "n_ctx",
    "vocab": "vocab_size", "steps": "steps", "batch_size": "batch_size", "lr": "lr", "warmup": "warmup",
    "schedule": "schedule", "save_steps": "save_steps", "seed": "seed", "tokenizer": "tokenizer",
    "device": "device", "log_every": "log_every",
}


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated steps such as 100,200; got {value!r}") from None


def add_proxy_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``proxy train`` to a ``argparse`` subparsers object; returns the ``proxy`` parser."""
    proxy = subparsers.add_parser("proxy", help="train small proxy language models")
    sub = proxy.add_subparsers(dest="proxy_command", required=True)
    train = sub.add_parser("train", help="train a proxy LM (tokenizer + GPT-2/Llama) and save checkpoints")
    train.add_argument("--input", nargs="+", required=True, metavar="PATH", help="Parquet/JSONL files or dirs")
    train.add_argument("--text-column", default="text")
    train.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    train.add_argument("--config", metavar="YAML", help="ProxyTrainConfig keys; flags override them")
    train.add_argument("--max-rows", type=int, help="read at most this many texts")
    train.add_argument("--arch", choices=["gpt2", "llama"])
    train.add_argument("--layers", type=int)
    train.add_argument("--width", type=int)
    train.add_argument("--heads", type=int)
    train.add_argument("--context", type=int)
    train.add_argument("--vocab", type=int)
    train.add_argument("--steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--warmup", type=int)
    train.add_argument("--schedule", choices=["cosine", "linear", "constant"])
    train.add_argument("--save-steps", type=_int_list, help="e.g. 100,200,400")
    train.add_argument("--seed", type=int)
    train.add_argument("--tokenizer", help="reuse the tokenizer of this model directory")
    train.add_argument("--device", help="auto, cpu or cuda")
    train.add_argument("--log-every", type=int)
    train.set_defaults(func=run_proxy_train, handler=run_proxy_train)
    return proxy


def options_from_args(args: argparse.Namespace) -> dict:
    """ProxyTrainConfig parameters from ``--config`` YAML, then the flags given."""
    from ..errors import ConfigError

    options: dict = {}
    if getattr(args, "config", None):
        import yaml

        try:
            with open(args.config, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"proxy train: cannot read --config {args.config}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"proxy train: {args.config} must hold a mapping of training options")
        options.update(loaded)
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            options[key] = value
    return options


def run_proxy_train(args: argparse.Namespace,
                    read_texts: Callable[[list[str], str, int | None], Iterable[str]] | None = None) -> int:
    """Handler of ``datadiet proxy train``; ``read_texts(paths, text_column, limit)`` defaults
    to :func:`datadiet.readers.iter_texts`."""
    from .train import ProxyTrainConfig, train_proxy

    config = ProxyTrainConfig.from_config(options_from_args(args), where="proxy train")
    if read_texts is None:
        from ..readers import iter_texts as read_texts
    log.info("proxy train: reading %s from %s", f"up to {args.max_rows:,} texts" if args.max_rows else "texts",
             ", ".join(args.input))
    texts = read_texts(args.input, args.text_column, args.max_rows)
    result = train_proxy(texts, args.output, config)
    summary = {
        "out_dir": str(result.out_dir),
        "checkpoints": [str(c) for c in result.checkpoints],
        "final_loss": round(result.final_loss, 4),
        "tokens": result.tokens_seen,
        "log": str(result.log_path),
    }
    print(json.dumps(summary), file=sys.stdout)
    return 0
