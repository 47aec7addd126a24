"""Per-example gradient features of causal-LM checkpoints (torch imported lazily).

- :mod:`.params`: parameter sets (``lm_head``, ``last:K``, ``linear``, ``lora``, globs);
- :mod:`.projection`: seeded projections, identical in every process;
- :mod:`.structured`: one batched backward pass with hooks, factorised projection;
- :mod:`.exact`: ``torch.func`` per-example gradients, dense block projection;
- :mod:`.precondition`: Adam second-moment preconditioning from saved optimizer state;
- :mod:`.featurize`: documents to windows to per-document features.

Example::

    from datadiet.gradients import StructuredEngine, resolve_layers, featurize
    engine = StructuredEngine(model, resolve_layers(model, "last:1"), d=1024, seed=0)
    [feats], counts = featurize([engine], token_sequences, max_length=512, stride=256, batch_tokens=4096)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "resolve_layers": "params",
    "add_lora": "params",
    "meta_model": "params",
    "Layer": "params",
    "random_matrix": "projection",
    "factor_dims": "projection",
    "layer_factors": "projection",
    "DenseProjector": "projection",
    "StructuredEngine": "structured",
    "ExactEngine": "exact",
    "per_example_grads": "exact",
    "adam_scales": "precondition",
    "featurize": "featurize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
