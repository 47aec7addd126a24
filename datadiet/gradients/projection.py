"""Seeded random projections, identical in every process: a matrix is a pure function of
(seed, name, shape, kind, block), generated on the CPU by a ``torch.Generator`` seeded with
an xxh64 of those, so every worker, shard and rerun draws the same numbers.

Entries are scaled so that ``E ||P x||^2 = ||x||^2`` (Johnson-Lindenstrauss): Rademacher
``+-1/sqrt(k)`` or Gaussian ``N(0, 1/k)`` for ``k`` output rows.

Two projections:

- :func:`factor_dims` + :func:`layer_factors`: the factorised projection of a linear layer's
  gradient ``G`` (out x in) to ``P_out G P_in^T`` (k_out x k_in) with two small matrices, as
  LoGra and bergson do; ``vec(P_out G P_in^T) = (P_out (x) P_in) vec(G)``.
- :class:`DenseProjector`: ``R vec(g)`` for any parameter, ``R`` (d x n) generated in column
  blocks and never held whole.

Example::

    p = random_matrix(seed=0, name="transformer.h.0.mlp.c_fc", shape=(16, 64))
    dims = factor_dims(2048, [(256, 64), (64, 256)])   # [(k_out, k_in), ...], total 2048
"""

from __future__ import annotations

import math

import xxhash

from ..errors import ConfigError

KINDS = ("rademacher", "gaussian")
DENSE_BLOCK = 1 << 14  # columns of a dense projection generated at once


def matrix_seed(seed: int, name: str, shape: tuple[int, ...], kind: str, block: int = 0) -> int:
    key = f"{int(seed)}|{name}|{'x'.join(str(int(s)) for s in shape)}|{kind}|{int(block)}"
    return xxhash.xxh64_intdigest(key.encode()) & ((1 << 63) - 1)


def random_matrix(seed: int, name: str, shape: tuple[int, int], kind: str = "rademacher", block: int = 0,
                  scale_rows: int | None = None, device=None, dtype=None):
    """A (rows x cols) float32 matrix scaled by ``1/sqrt(scale_rows or rows)``."""
    import torch

    if kind not in KINDS:
        raise ConfigError(f"projection kind must be one of {KINDS}. Got {kind!r} instead.")
    gen = torch.Generator(device="cpu").manual_seed(matrix_seed(seed, name, shape, kind, block))
    if kind == "rademacher":
        m = torch.randint(0, 2, tuple(shape), generator=gen, dtype=torch.int8).to(torch.float32).mul_(2).sub_(1)
    else:
        m = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
    m.mul_(1.0 / math.sqrt(scale_rows or shape[0]))
    if device is not None or dtype is not None:
        m = m.to(device=device, dtype=dtype or torch.float32)
    return m


def _split(total: int, caps: list[int]) -> list[int]:
    """``total`` split as evenly as possible over slots, none above its cap (water filling)."""
    shares, left, open_ = [0] * len(caps), total, list(range(len(caps)))
    while left > 0 and open_:
        each, extra = divmod(left, len(open_))
        nxt = []
        for rank, i in enumerate(open_):
            want = each + (1 if rank < extra else 0)
            give = min(want, caps[i] - shares[i])
            shares[i] += give
            left -= give
            if shares[i] < caps[i]:
                nxt.append(i)
        if len(nxt) == len(open_) and each == 0 and extra == 0:
            break
        open_ = nxt
    return shares


def factor_dims(d: int, shapes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Per-layer (k_out, k_in) for layers of ``shapes`` (out, in), about square, adding up to
    at most ``d`` (exactly ``d`` when the shares factorise, e.g. a power of two over a power of
    two of layers; otherwise a little less, never more).

    ``d`` is shared as evenly as the layers' sizes allow; what a layer's factorisation leaves
    over moves to the next layer.
    """
    caps = [o * i for o, i in shapes]
    if d < 1 or d > sum(caps):
        raise ConfigError(f"projection_dim must be between 1 and the number of projected weights "
                          f"({sum(caps)}). Got {d!r} instead.")
    dims, carry = [], 0
    for (o, n), share in zip(shapes, _split(d, caps)):
        s = share + carry
        k_in = min(n, max(1, math.isqrt(s))) if s else 0
        k_out = min(o, s // k_in) if k_in else 0
        if k_out and k_in and s % k_in == 0 and s // k_in <= o:
            k_out = s // k_in
        dims.append((k_out, k_in))
        carry = s - k_out * k_in
    return dims


def layer_factors(seed: int, name: str, out_f: int, in_f: int, k_out: int, k_in: int, kind: str,
                  device=None, dtype=None):
    """(P_out [k_out x out], P_in [k_in x in]) of layer ``name``; their Kronecker product is
    scaled for ``k_out * k_in`` rows."""
    p_out = random_matrix(seed, f"{name}#out", (k_out, out_f), kind, device=device, dtype=dtype)
    p_in = random_matrix(seed, f"{name}#in", (k_in, in_f), kind, device=device, dtype=dtype)
    return p_out, p_in


class DenseProjector:
    """``R vec(g)`` per parameter with ``R`` (d x n) in column blocks of ``block`` columns;
    the features of all parameters add up (a projection of their concatenation). Blocks are
    kept for reuse while they take at most ``cache_bytes`` in all, regenerated otherwise.

    Example::

        proj = DenseProjector(seed=0, d=1024)
        feats = proj.project("lm_head.weight", grads)   # grads: [batch, *shape] -> [batch, 1024]
    """

    def __init__(self, seed: int, d: int, kind: str = "rademacher", block: int = DENSE_BLOCK,
                 cache_bytes: int = 256 * 2**20):
        self.seed, self.d, self.kind, self.block = int(seed), int(d), kind, int(block)
        self.cache_bytes, self._cache, self._cached = int(cache_bytes), {}, 0

    def _block(self, name: str, b: int, cols: int, device, dtype):
        key = (name, b, cols, str(device), str(dtype))
        r = self._cache.get(key)
        if r is None:
            r = random_matrix(self.seed, name, (self.d, cols), self.kind, block=b, scale_rows=self.d,
                              device=device, dtype=dtype).T.contiguous()
            size = r.numel() * r.element_size()
            if self._cached + size <= self.cache_bytes:
                self._cache[key] = r
                self._cached += size
        return r

    def project(self, name: str, grads):
        flat = grads.reshape(grads.shape[0], -1)
        n = flat.shape[1]
        out = flat.new_zeros((flat.shape[0], self.d))
        for b, lo in enumerate(range(0, n, self.block)):
            hi = min(lo + self.block, n)
            out.addmm_(flat[:, lo:hi], self._block(name, b, hi - lo, flat.device, flat.dtype))
        return out
