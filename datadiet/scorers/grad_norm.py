"""``grad_norm``: GraNd (Paul et al., 2021), the per-example gradient norm, and
``grad_features``: the projected gradient features themselves (float16 vectors)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import register
from .gradient_base import GradientScorer, feature_column
from .proxy_base import float_column, reason_column


@register("scorer", "grad_norm")
class GradNormScorer(GradientScorer):
    """Norm of each row's gradient of its mean token loss, averaged over checkpoints, estimated
    from the random projection (``E ||P g||^2 = ||g||^2``): with ``engine: exact`` (dense
    projection) the relative error is about ``sqrt(2 / d)``; the structured engine's factorised
    projection is noisier on short documents, whose layer gradients are nearly rank one (each
    side is projected to only ``~sqrt(d / layers)`` dims). Columns: ``score`` (float32).

    Example::

        scorer = GradNormScorer(checkpoints="runs/proxy/checkpoint-100", params="linear")
        scorer.setup()
        scorer.score_batch(batch)["score"]
    """

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32()}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        feats, valid, reasons = self.features(batch)
        norms = np.mean([np.linalg.norm(f, axis=1) for f in feats], axis=0)
        return {"score": float_column(norms, valid), "null_reason": reason_column(reasons)}


@register("scorer", "grad_features")
class GradFeaturesScorer(GradientScorer):
    """Each row's projected gradient under every checkpoint, concatenated, as ``score``:
    fixed_size_list<float16>[checkpoints x dim] (for k-means or dedup on gradients). The
    sidecar is keyed by the projection's seed, dimension, parameter set, engine and the
    checkpoints' hashes, so another recipe with the same settings reuses it.

    Example::

        scorer = GradFeaturesScorer(checkpoints="runs/proxy", projection_dim=1024)
        scorer.setup()
        scorer.score_batch(batch)["score"]   # float16 vectors
    """

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.list_(pa.float16(), self.feature_dim() * len(self.model_paths()))}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        feats, valid, reasons = self.features(batch)
        return {"score": feature_column(np.concatenate(feats, axis=1), valid), "null_reason": reason_column(reasons)}
