"""Shared base of ``less`` and ``tracin``: target-set gradient features fitted once, then
every pool row scored against them. Not registered itself.

``fit`` computes the features of the recipe's target set(s) under every checkpoint (never
preconditioned, as LESS does) and stores them combined over checkpoints: with per-checkpoint
features ``t_c`` and weights ``w_c``, a target row is ``concat_c(a_c t_c)`` and a pool row
``concat_c(f_c)`` (``less``: unit vectors and ``a_c = w_c / sum w``; ``tracin``: raw vectors
and ``a_c = w_c``), so one inner product is the checkpoint-weighted sum. ``reduce: mean``
takes the mean over the target rows (an inner product with their mean); ``reduce: max``
the best target row, searched with faiss: exact inner product up to ``ivf_threshold`` target
rows, an IVF index (trained in ``fit``, saved serialised) with ``nprobe`` lists above it.
Several targets (``target: [a, b]``) give one column per target, ``target_<name>``, and
``score`` is their maximum (LESS's max over target tasks).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from .gradient_base import GradientScorer, feature_column, target_names
from .proxy_base import float_column, reason_column

INFLUENCE_CONSTRAINTS = {**GradientScorer._constraints, "ivf_threshold": Interval(int, 1),
                         "nprobe": Interval(int, 1)}


class InfluenceScorer(GradientScorer):
    """Scores pool rows by gradient similarity to target rows (see the module docstring)."""

    requires_fit: ClassVar[bool] = True
    normalize: ClassVar[bool] = True
    _constraints = INFLUENCE_CONSTRAINTS

    def __init__(
        self,
        checkpoints: str | list[str],
        target: str | list[str] | None = None,
        reduce: Literal["mean", "max"] = "mean",
        ivf_threshold: int = 10_000,
        nprobe: int = 16,
        keep_features: bool = False,
        params: str | list[str] = "linear",
        engine: Literal["structured", "exact"] = "structured",
        projection_dim: int = 2048,
        projection: Literal["rademacher", "gaussian"] = "rademacher",
        seed: int = 0,
        precondition: Literal["none", "adam"] = "none",
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        template: str = "{instruction}\n\n",
        checkpoint_weights: list[float] | None = None,
        max_length: int | None = None,
        stride: int | None = None,
        batch_tokens: int | None = None,
        max_memory: str | int | None = None,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        num_threads: int | None = None,
    ):
        super().__init__(checkpoints, params, engine, projection_dim, projection, seed, precondition, lora_rank,
                         lora_alpha, template, checkpoint_weights, max_length, stride, batch_tokens, max_memory,
                         dtype, device, trust_remote_code, num_threads)
        self.target = target
        self.reduce = reduce
        self.ivf_threshold = ivf_threshold
        self.nprobe = nprobe
        self.keep_features = keep_features

    def _names(self) -> list[str | None]:
        return target_names(self.target)

    def output_columns(self) -> dict[str, pa.DataType]:
        cols = {"score": pa.float32()}
        names = self._names()
        if len(names) > 1:
            cols.update({f"target_{n}": pa.float32() for n in names})
        if self.keep_features:
            cols["features"] = pa.list_(pa.float16(), self.feature_dim() * len(self.model_paths()))
        return cols

    def _coefficients(self) -> np.ndarray:
        w = self.weights()
        return w / w.sum() if self.normalize else w

    def _combine(self, feats: list[np.ndarray], coef: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(float32 concat over checkpoints, rows whose every feature is non-zero)."""
        parts, ok = [], np.ones(len(feats[0]), dtype=bool)
        for c, f in enumerate(feats):
            if self.normalize:
                norm = np.linalg.norm(f, axis=1, keepdims=True)
                ok &= norm[:, 0] > 0
                f = f / np.where(norm > 0, norm, 1)
            parts.append(f * (coef[c] if coef is not None else 1.0))
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32), ok

    def fit(self, context) -> InfluenceScorer:
        import faiss

        self.validate_params()
        coef = self._coefficients()
        blocks, sizes, indexes = [], [], []
        for name in self._names():
            rows = []
            for batch in context.target(name):
                feats, valid, _ = self.features(batch, precondition=False)
                combined, ok = self._combine(feats, coef)
                rows.append(combined[valid & ok])
            matrix = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
            if len(matrix) == 0:
                raise ConfigError(f"{self.registry_name}: target set {name or '(default)'!r} has no scorable rows "
                                  "after ingest (every row is empty, null or shorter than 2 tokens)")
            blocks.append(matrix)
            sizes.append(len(matrix))
            if self.reduce == "max" and len(matrix) > self.ivf_threshold:
                nlist = max(1, min(int(np.sqrt(len(matrix))), len(matrix) // 39))
                quantizer = faiss.IndexFlatIP(matrix.shape[1])
                index = faiss.IndexIVFFlat(quantizer, matrix.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
                index.cp.seed = int(self.seed)
                index.cp.min_points_per_centroid = 1
                index.train(matrix)
                index.add(matrix)
                indexes.append(faiss.serialize_index(index))
            else:
                indexes.append(np.zeros(0, np.uint8))
        self.target_features_ = np.concatenate(blocks)
        self.target_sizes_ = sizes
        self.index_offsets_ = np.cumsum([0] + [len(i) for i in indexes]).astype(np.int64)
        self.indexes_ = np.concatenate(indexes).astype(np.uint8)
        return self

    def setup(self) -> None:
        if getattr(self, "target_features_", None) is None:
            raise ConfigError(f"{self.registry_name} must be fitted on a target set before scoring")
        super().setup()
        if getattr(self, "_search", None) is not None:
            return
        import faiss

        search, lo = [], 0
        for t, size in enumerate(self.target_sizes_):
            block = np.ascontiguousarray(self.target_features_[lo : lo + size], dtype=np.float32)
            lo += size
            if self.reduce == "mean":
                search.append(block.mean(axis=0))
                continue
            raw = self.indexes_[self.index_offsets_[t] : self.index_offsets_[t + 1]]
            if len(raw):
                index = faiss.deserialize_index(raw)
                index.nprobe = self.nprobe
            else:
                index = faiss.IndexFlatIP(block.shape[1])
                index.add(block)
            search.append(index)
        self._search = search

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        feats, valid, reasons = self.features(batch)
        query, ok = self._combine(feats, None)
        for i in np.flatnonzero(valid & ~ok):
            reasons[i] = "zero_gradient"
        valid &= ok
        per_target = []
        for s in self._search:
            if isinstance(s, np.ndarray):
                per_target.append(query.astype(np.float64) @ s.astype(np.float64))
            else:
                dist, _ = s.search(query, 1)
                per_target.append(dist[:, 0].astype(np.float64))
        scores = np.max(np.stack(per_target), axis=0)
        out = {"score": float_column(scores, valid)}
        names = self._names()
        if len(names) > 1:
            out.update({f"target_{n}": float_column(v, valid) for n, v in zip(names, per_target)})
        if self.keep_features:
            out["features"] = feature_column(np.concatenate(feats, axis=1), valid)
        out["null_reason"] = reason_column(reasons)
        return out
