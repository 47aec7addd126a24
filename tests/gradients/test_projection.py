"""Seeded projections: identical across runs and processes, JL-faithful, dimensions as documented."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest

from datadiet.errors import ConfigError
from datadiet.gradients.projection import DenseProjector, factor_dims, layer_factors, random_matrix

SNIPPET = (
    "import hashlib; from datadiet.gradients.projection import random_matrix, layer_factors;"
    "a = random_matrix(7, 'transformer.h.0.mlp.c_fc', (32, 300), 'rademacher').numpy().tobytes();"
    "b = b''.join(m.numpy().tobytes() for m in layer_factors(7, 'lm_head', 400, 64, 8, 16, 'gaussian'));"
    "print(hashlib.sha256(a + b).hexdigest())"
)


def _digest() -> str:
    a = random_matrix(7, "transformer.h.0.mlp.c_fc", (32, 300), "rademacher").numpy().tobytes()
    b = b"".join(m.numpy().tobytes() for m in layer_factors(7, "lm_head", 400, 64, 8, 16, "gaussian"))
    return hashlib.sha256(a + b).hexdigest()


@pytest.mark.slow
def test_projection_identical_across_runs_and_processes():
    first, second = _digest(), _digest()
    other = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, check=True).stdout.strip()
    assert first == second == other
    # and it depends on every part of the key
    base = random_matrix(7, "a", (8, 8)).numpy()
    assert not np.array_equal(base, random_matrix(8, "a", (8, 8)).numpy())
    assert not np.array_equal(base, random_matrix(7, "b", (8, 8)).numpy())


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_inner_products_within_the_jl_bound(kind):
    import torch

    rng = np.random.default_rng(0)
    n_vec, n, d = 40, 3000, 1024
    x = torch.from_numpy(rng.standard_normal((n_vec, n)).astype(np.float32))
    px = DenseProjector(seed=3, d=d, kind=kind, block=1000).project("w", x)
    eps = math.sqrt(8 * math.log(n_vec) / d)  # JL: d >= 8 ln(N) / eps^2
    norms = x.norm(dim=1)
    err = (px @ px.T - x @ x.T) / (norms[:, None] * norms[None, :])
    assert float(err.abs().max()) <= eps
    # the factorised projection of matrices G (out x in): P_out G P_in^T
    g = torch.from_numpy(rng.standard_normal((n_vec, 60, 50)).astype(np.float32))
    p_out, p_in = layer_factors(3, "layer", 60, 50, 32, 32, kind)
    pg = torch.einsum("ko,boi,ji->bkj", p_out, g, p_in).reshape(n_vec, -1)
    flat = g.reshape(n_vec, -1)
    gn = flat.norm(dim=1)
    err = (pg @ pg.T - flat @ flat.T) / (gn[:, None] * gn[None, :])
    assert float(err.abs().max()) <= 2 * eps  # Kronecker projections: larger constant
    assert float(err.abs().max()) > 0


def test_factor_dims():
    shapes = [(64, 64)] * 8
    dims = factor_dims(2048, shapes)
    assert sum(a * b for a, b in dims) == 2048 and all(a == b == 16 for a, b in dims)
    odd = [(192, 64), (64, 64), (256, 64), (64, 256), (400, 64)]
    dims = factor_dims(1000, odd)
    assert 0.98 * 1000 <= sum(a * b for a, b in dims) <= 1000
    assert all(a <= o and b <= i for (a, b), (o, i) in zip(dims, odd))
    with pytest.raises(ConfigError, match="projection_dim"):
        factor_dims(0, shapes)
    with pytest.raises(ConfigError, match="projection_dim"):
        factor_dims(64 * 64 * 8 + 1, shapes)
