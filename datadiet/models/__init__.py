"""Proxy-model training, local model loading and length-bucketed batching.

Public surface (imported lazily so that ``import datadiet.models`` does not load torch)::

    from datadiet.models import train_proxy, ProxyTrainConfig, load_causal_lm, check_model_dir
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "train_proxy": "train",
    "ProxyTrainConfig": "train",
    "TrainResult": "train",
    "train_tokenizer": "tokenizer",
    "check_model_dir": "loading",
    "load_causal_lm": "loading",
    "load_tokenizer": "loading",
    "count_parameters": "loading",
    "model_fingerprint": "loading",
    "load_optimizer_state": "optimizer_state",
    "TokenScorer": "nll",
    "TokenStats": "nll",
    "make_windows": "batching",
    "plan_batches": "batching",
    "parse_memory": "batching",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
