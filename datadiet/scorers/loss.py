"""``loss`` and ``perplexity``: mean token negative log-likelihood under a causal LM.

A document's tokens (``tokenizer(text)``, with the special tokens the tokenizer adds) are
scored on tokens 2..n, exactly as ``model(ids, labels=ids).loss``; longer documents than
``max_length`` are scored over strided windows and the token losses averaged over the whole
document (token-weighted). ``perplexity`` is ``exp(loss)``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import register
from .proxy_base import ProxyScorer, float_column, reason_column


@register("scorer", "loss")
class LossScorer(ProxyScorer):
    """Mean token NLL (nats) per document, plus ``n_scored_tokens``.

    Example::

        scorer = LossScorer(model="runs/proxy", max_memory="2GB")
        scorer.setup()
        scorer.score_batch(batch)   # {"score": float32, "n_scored_tokens": int64, "null_reason": str}
    """

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32(), "n_scored_tokens": pa.int64()}

    def _transform(self, mean_nll: np.ndarray) -> np.ndarray:
        return mean_nll

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        seqs, reasons = self._text_sequences(batch)
        [stats] = self._engine.score(seqs)
        valid = self._valid(reasons) & (stats.count > 0)
        return {
            "score": float_column(self._transform(stats.mean_nll()), valid),
            "n_scored_tokens": pa.array(np.where(valid, stats.count, 0), type=pa.int64()),
            "null_reason": reason_column(reasons),
        }


@register("scorer", "perplexity")
class PerplexityScorer(LossScorer):
    """``exp`` of the mean token NLL per document (same parameters as ``loss``).

    Example::

        scorer = PerplexityScorer(model="runs/proxy")
        scorer.setup()
        scorer.score_batch(batch)["score"]   # float32 >= 1
    """

    def _transform(self, mean_nll: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(mean_nll)
