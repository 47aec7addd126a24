"""``el2n``: mean over a document's tokens of ``||softmax(logits) - onehot(next token)||_2``.

EL2N (Paul et al., 2021) per token, averaged like ``loss`` (tokens 2..n, strided windows for
long documents). Values lie in ``[0, sqrt(2)]``: 0 when the model puts all its mass on the
right token, ``sqrt(2)`` when it puts all of it on one wrong token.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import register
from .proxy_base import ProxyScorer, float_column, reason_column


@register("scorer", "el2n")
class EL2NScorer(ProxyScorer):
    """Mean token EL2N per document, plus ``n_scored_tokens``.

    Example::

        scorer = EL2NScorer(model="runs/proxy")
        scorer.setup()
        scorer.score_batch(batch)["score"]   # float32 in [0, sqrt(2)]
    """

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32(), "n_scored_tokens": pa.int64()}

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        seqs, reasons = self._text_sequences(batch)
        [stats] = self._engine.score(seqs, el2n=True)
        valid = self._valid(reasons) & (stats.count > 0)
        return {
            "score": float_column(stats.mean_el2n(), valid),
            "n_scored_tokens": pa.array(np.where(valid, stats.count, 0), type=pa.int64()),
            "null_reason": reason_column(reasons),
        }
