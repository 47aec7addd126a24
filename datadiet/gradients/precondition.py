"""Adam preconditioning from the ``optimizer.safetensors`` moments ``datadiet proxy train`` saves.

As LESS does for training examples, a gradient is divided elementwise by
``sqrt(v_hat) + eps`` (``v_hat`` the bias-corrected second moment at the checkpoint). The
exact engine applies that matrix as is; the structured engine applies its best rank-one
approximation ``s_out s_in^T`` (power iteration; the matrix is positive, so both vectors are),
which keeps the factorised projection possible.

Example::

    scales = adam_scales(checkpoint_dir, model, layers)          # {param name: [out, in]}
    s_out, s_in = rank_one(scales["lm_head.weight"])
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError
from ..models.optimizer_state import OPTIMIZER_FILE


def moment_names(directory: str | Path) -> set[str]:
    """Parameter names with a saved second moment (reads the safetensors header only)."""
    import struct

    path = Path(directory) / OPTIMIZER_FILE
    if not path.is_file():
        raise ModelError(f"precondition: adam needs {path}, which does not exist (checkpoints written by "
                         "datadiet proxy train carry it); set precondition: none or use such checkpoints")
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    return {k[: -len(".exp_avg_sq")] for k in header if k.endswith(".exp_avg_sq")}


def param_name_of(model, tensor) -> str | None:
    """The (first, deduplicated) name under which ``model`` holds ``tensor``."""
    for name, p in model.named_parameters(remove_duplicate=True):
        if p is tensor:
            return name
    return None


def check_moments(directory: str | Path, model, layers) -> None:
    """ModelError naming the checkpoint and the parameters without saved moments."""
    have = moment_names(directory)
    missing = []
    for la in layers:
        for p in la.param_names():
            name = param_name_of(model, getattr(la.module, p))
            if name not in have:
                missing.append(name or f"{la.name}.{p}")
    if missing:
        raise ModelError(f"precondition: adam, but {Path(directory) / OPTIMIZER_FILE} has no moments for "
                         f"{missing[:3]}{' ...' if len(missing) > 3 else ''}")


def adam_scales(directory: str | Path, model, layers) -> dict:
    """``{layer param name: 1 / (sqrt(v_hat) + eps)}`` in (out x in) orientation, on the model's device."""
    from ..models.optimizer_state import load_optimizer_state

    check_moments(directory, model, layers)
    moments, meta = load_optimizer_state(directory)
    step = max(1, int(meta.get("optimizer_step") or meta.get("step") or 1))
    beta2 = float(json.loads(meta.get("betas", "[0.9, 0.999]"))[1])
    eps = float(meta.get("eps", "1e-8"))
    device = next(model.parameters()).device
    out = {}
    for la in layers:
        for p in la.param_names():
            v = moments[param_name_of(model, getattr(la.module, p))]["exp_avg_sq"].float()
            v_hat = v / (1 - beta2**step)
            s = 1.0 / (v_hat.sqrt() + eps)
            if la.kind == "conv1d":
                s = s.T
            out[f"{la.name}.{p}"] = s.contiguous().to(device)
    return out


def rank_one(matrix, iters: int = 20):
    """(u, v) with ``u v^T`` the best rank-one approximation of a positive matrix."""
    import torch

    v = torch.ones(matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    for _ in range(iters):
        u = matrix @ v
        u = u / u.norm()
        v = matrix.T @ u
    return u, v
