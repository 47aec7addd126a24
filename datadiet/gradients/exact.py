"""The exact engine: per-example gradients with ``torch.func`` (``functional_call`` +
``vmap(grad)``), in chunks, then a dense seeded projection generated block by block.

The reference the structured engine is tested against, and the engine for parameters that
are not linear layers. Gradients are per use of a module (``tie_weights=False``): a tied
output head's gradient is that of the head, not of the input embedding.

Example::

    grads = per_example_grads(model, layers, ids, labels, weights)   # {name: [batch, out, in]}
    engine = ExactEngine(model, layers, d=1024, seed=0, chunk=8)
    feats = engine.features(ids, labels, weights)                     # [batch, 1024]
"""

from __future__ import annotations

import warnings

from .projection import DenseProjector


def _param_dict(layers) -> dict:
    return {f"{la.name}.{p}": getattr(la.module, p).detach() for la in layers for p in la.param_names()}


def per_example_grads(model, layers, ids, labels, weights, chunk: int | None = None) -> dict:
    """``{param name: [batch, *shape]}`` gradients of each row's weighted loss, linear weights
    in (out x in) orientation (GPT-2's Conv1D transposed)."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, vmap

    params = _param_dict(layers)
    embed = model.get_input_embeddings()
    embed_key = next((f"{n}.weight" for n, m in model.named_modules() if m is embed), "")

    def loss_one(p, ids1, labels1, w1):
        # embeddings passed in, so no data-dependent check on the ids runs under vmap
        emb = F.embedding(ids1[None], p.get(embed_key, embed.weight))
        logits = functional_call(model, p, args=(), kwargs={"inputs_embeds": emb, "use_cache": False},
                                 tie_weights=False, strict=False).logits[0]
        return (F.cross_entropy(logits.float(), labels1, reduction="none") * w1).sum()

    per_row = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))
    chunk = chunk or ids.shape[0]
    parts: dict[str, list] = {k: [] for k in params}
    # the fused attention kernels have no vmap rule (vmap would loop over rows): use the
    # plain-matmul attention while vmapping, then restore the model's own setting
    config = model.config
    previous = getattr(config, "_attn_implementation", None)
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There is a performance drop")
        try:
            if previous is not None:
                config._attn_implementation = "eager"
            for lo in range(0, ids.shape[0], chunk):
                g = per_row(params, ids[lo : lo + chunk], labels[lo : lo + chunk], weights[lo : lo + chunk])
                for k in params:
                    parts[k].append(g[k].detach())
        finally:
            if previous is not None:
                config._attn_implementation = previous
    out = {k: torch.cat(v) for k, v in parts.items()}
    for la in layers:
        if la.kind == "conv1d":
            key = f"{la.name}.weight"
            out[key] = out[key].transpose(1, 2)
    return out


class ExactEngine:
    """Dense-projection features of ``layers`` from exact per-example gradients; ``chunk``
    rows go through ``vmap`` at once. ``scales`` (optional) maps a parameter name to an
    elementwise preconditioner of its (out x in) gradient."""

    def __init__(self, model, layers, d: int, seed: int, kind: str = "rademacher", chunk: int = 8, scales=None):
        from ..errors import ConfigError

        self.model, self.layers, self.chunk = model, list(layers), max(1, int(chunk))
        n = sum(la.numel() for la in self.layers)
        if not 1 <= d <= n:
            raise ConfigError(f"projection_dim must be between 1 and the number of covered parameters ({n}). "
                              f"Got {d!r} instead.")
        self.dim = int(d)
        self.projector = DenseProjector(seed, d, kind)
        self.scales = scales or {}

    def features(self, ids, labels, weights):
        import torch

        out = torch.zeros((ids.shape[0], self.dim), dtype=torch.float32, device=ids.device)
        for lo in range(0, ids.shape[0], self.chunk):
            hi = lo + self.chunk
            grads = per_example_grads(self.model, self.layers, ids[lo:hi], labels[lo:hi], weights[lo:hi])
            for name, g in grads.items():
                g = g.float()
                if name in self.scales:
                    g = g * self.scales[name]
                out[lo:hi] += self.projector.project(name, g)
        return out
