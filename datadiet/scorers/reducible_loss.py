"""``reducible_loss`` (RHO-LOSS, Mindermann et al., 2022): loss under ``model`` minus loss under
``reference_model``.

Typically ``model`` is a proxy trained on the raw pool and ``reference_model`` one trained on
the target (holdout) set: a high score marks text the target-trained model finds much easier
than the pool model does (learnable, relevant), a low or negative one text that is noisy or
already learned. Each model scores the text with its own tokenizer; when both tokenizers are
identical the two models run on the same batches.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from ..registry import register
from .proxy_base import ProxyScorer, float_column, reason_column


def _same_tokenizer(a, b) -> bool:
    try:
        return a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    except AttributeError:
        return a.get_vocab() == b.get_vocab()


@register("scorer", "reducible_loss")
class ReducibleLossScorer(ProxyScorer):
    """``score = loss(model) - loss(reference_model)`` per document (nats), plus both losses.

    Example::

        scorer = ReducibleLossScorer(model="runs/pool_proxy", reference_model="runs/target_proxy")
        scorer.setup()
        scorer.score_batch(batch)   # {"score", "loss", "reference_loss", "null_reason"}
    """

    def __init__(
        self,
        model: str,
        reference_model: str,
        max_length: int | None = None,
        stride: int | None = None,
        batch_tokens: int | None = None,
        max_memory: str | int | None = None,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        num_threads: int | None = None,
    ):
        super().__init__(model, max_length, stride, batch_tokens, max_memory, dtype, device,
                         trust_remote_code, num_threads)
        self.reference_model = reference_model

    def model_paths(self) -> list[str]:
        return [self.model, self.reference_model]

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32(), "loss": pa.float32(), "reference_loss": pa.float32()}

    def setup(self) -> None:
        if getattr(self, "_engine", None) is not None:
            return
        from ..models.loading import load_tokenizer

        super().setup()
        self._ref_tokenizer = load_tokenizer(self.reference_model, trust_remote_code=self.trust_remote_code)
        if _same_tokenizer(self._tokenizer, self._ref_tokenizer):
            self._ref_engine = None
        else:
            self._ref_engine = self._make_engine(self._models[1:])
            self._engine = self._make_engine(self._models[:1])

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        seqs, reasons = self._text_sequences(batch)
        if self._ref_engine is None:
            main, ref = self._engine.score(seqs)
        else:
            [main] = self._engine.score(seqs)
            ref_seqs, ref_reasons = self._text_sequences(batch, tokenizer=self._ref_tokenizer)
            [ref] = self._ref_engine.score(ref_seqs)
            reasons = [a or b for a, b in zip(reasons, ref_reasons)]
        valid = self._valid(reasons) & (main.count > 0) & (ref.count > 0)
        loss, ref_loss = main.mean_nll(), ref.mean_nll()
        return {
            "score": float_column(loss - ref_loss, valid),
            "loss": float_column(loss, valid),
            "reference_loss": float_column(ref_loss, valid),
            "null_reason": reason_column(reasons),
        }
