"""The structured engine: per-example projected gradients of linear layers from ONE batched
backward pass.

For a linear layer ``y = W x`` the per-example weight gradient is ``G = sum_t d_t x_t^T``
(``d_t = dL/dy_t``), so its factorised projection is ``P_out G P_in^T = sum_t (P_out d_t)
(P_in x_t)^T``. A forward pre-hook projects each layer's input ``x`` to ``k_in`` numbers per
token and a tensor hook on its output projects ``d`` to ``k_out`` numbers during the
ordinary backward pass of the summed per-example losses; their per-example outer products add
up to the features. No weight gradient, per-example backward or ``d x P`` matrix exists. The
weights need no ``requires_grad``: the first hooked layer's input becomes the leaf the
backward pass is taken to.

Example::

    engine = StructuredEngine(model, resolve_layers(model, "linear"), d=2048, seed=0)
    feats = engine.features(ids, labels, weights)     # [batch, engine.dim] float32
"""

from __future__ import annotations

from .projection import factor_dims, layer_factors


def weighted_loss(model, ids, labels, weights):
    """``sum_{b,t} weights[b,t] * CE(logits[b,t], labels[b,t])`` (float32)."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, use_cache=False).logits
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), reduction="none")
    return (nll * weights.reshape(-1)).sum()


class StructuredEngine:
    """Factorised-projection features of ``layers`` (all linear); ``scales[i]`` (optional)
    is a per-layer pair ``(s_out, s_in)`` multiplying the gradient as ``diag(s_out) G diag(s_in)``
    (rank-one Adam preconditioning)."""

    def __init__(self, model, layers, d: int, seed: int, kind: str = "rademacher", scales=None):
        import torch

        bad = [layer.name for layer in layers if layer.kind == "other"]
        if bad:
            from ..errors import ConfigError

            raise ConfigError(f"the structured engine covers linear layers only; {bad[:3]} are not linear "
                              "(use engine: exact for them)")
        self.model, self.layers = model, list(layers)
        device = next(model.parameters()).device
        self.dims = factor_dims(d, [(la.out_features, la.in_features) for la in self.layers])
        self.factors, self.offsets, off = [], [], 0
        for layer, (k_out, k_in) in zip(self.layers, self.dims):
            self.factors.append(layer_factors(seed, layer.name, layer.out_features, layer.in_features,
                                              k_out, k_in, kind, device=device) if k_out else None)
            self.offsets.append(off)
            off += k_out * k_in
        self.dim = off
        self.scales = scales
        self._torch = torch

    def features(self, ids, labels, weights):
        """[batch, dim] projected gradients of each row's weighted loss."""
        torch = self._torch
        batch = ids.shape[0]
        out = torch.zeros((batch, self.dim), dtype=torch.float32, device=ids.device)
        stacks: list[list] = [[] for _ in self.layers]
        leaves: list = []
        handles = []

        def pre_hook(i):
            def hook(module, args):
                x = args[0]
                p_in = self.factors[i][1]
                xs = x.detach().float()
                if self.scales is not None:
                    xs = xs * self.scales[i][1]
                stacks[i].append(xs @ p_in.T)
                if not x.requires_grad:
                    x = x.detach().requires_grad_(True)
                    leaves.append(x)
                    return (x, *args[1:])
                return None
            return hook

        def fwd_hook(i):
            def hook(module, args, output):
                output.register_hook(lambda g, i=i: self._accumulate(i, g, stacks[i].pop(), out))
            return hook

        for i, layer in enumerate(self.layers):
            if self.factors[i] is None:
                continue
            handles.append(layer.module.register_forward_pre_hook(pre_hook(i)))
            handles.append(layer.module.register_forward_hook(fwd_hook(i)))
        try:
            with torch.enable_grad():
                loss = weighted_loss(self.model, ids, labels, weights)
                if leaves:
                    torch.autograd.grad(loss, leaves)
        finally:
            for h in handles:
                h.remove()
        return out

    def _accumulate(self, i: int, grad_out, a, out) -> None:
        p_out = self.factors[i][0]
        g = grad_out.detach().float()
        if self.scales is not None:
            g = g * self.scales[i][0]
        b = g @ p_out.T
        k_out, k_in = self.dims[i]
        block = self._torch.einsum("btk,btj->bkj", b.reshape(b.shape[0], -1, k_out), a.reshape(a.shape[0], -1, k_in))
        off = self.offsets[i]
        out[:, off : off + k_out * k_in] += block.reshape(b.shape[0], -1)
