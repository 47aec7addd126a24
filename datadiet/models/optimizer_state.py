"""AdamW moments saved with safetensors (never pickle), for gradient scorers to precondition.

The file holds, for every trainable parameter ``name``, the tensors ``name.exp_avg`` and
``name.exp_avg_sq`` (float32, the parameter's shape); the metadata holds the optimizer's
hyper-parameters and step count as strings.

Example::

    moments, meta = load_optimizer_state("runs/proxy/checkpoint-100")
    moments["transformer.h.0.mlp.c_fc.weight"]["exp_avg_sq"]
    int(meta["step"])
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ModelError

OPTIMIZER_FILE = "optimizer.safetensors"


def save_optimizer_state(optimizer, model, directory: str | os.PathLike, step: int) -> Path:
    """Write ``optimizer.safetensors`` for an AdamW ``optimizer`` over ``model``'s parameters."""
    from safetensors.torch import save_file

    names = {id(p): n for n, p in model.named_parameters()}
    tensors, steps = {}, set()
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                continue
            name = names[id(p)]
            tensors[f"{name}.exp_avg"] = state["exp_avg"].detach().float().contiguous().cpu()
            tensors[f"{name}.exp_avg_sq"] = state["exp_avg_sq"].detach().float().contiguous().cpu()
            steps.add(int(state["step"]))
    group = optimizer.param_groups[0]
    meta = {
        "format": "datadiet-adamw-1",
        "step": str(step),
        "optimizer_step": str(max(steps) if steps else 0),
        "lr": repr(float(group["lr"])),
        "betas": json.dumps(list(group["betas"])),
        "eps": repr(float(group["eps"])),
        "weight_decay": json.dumps([float(g["weight_decay"]) for g in optimizer.param_groups]),
    }
    path = Path(directory) / OPTIMIZER_FILE
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_optimizer_state(directory: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    """``({param_name: {"exp_avg": t, "exp_avg_sq": t}}, metadata)`` from a checkpoint dir."""
    from safetensors import safe_open

    path = Path(directory) / OPTIMIZER_FILE
    if not path.is_file():
        raise ModelError(f"{directory} has no {OPTIMIZER_FILE} (train with datadiet proxy train)")
    moments: dict[str, dict] = {}
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
        for key in fh.keys():
            name, _, kind = key.rpartition(".")
            moments.setdefault(name, {})[kind] = fh.get_tensor(key)
    return moments, meta
