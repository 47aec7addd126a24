"""``ifd``: instruction-following difficulty (Li et al., 2024; Superfiltering).

``IFD = loss(response | prompt) / loss(response)``, both the mean NLL over the response tokens
only. The prompt is ``template.format(instruction=...)``. Prompt and response are tokenized
separately (no special tokens) and joined as ``[start] + prompt + response``, where ``start``
is the tokenizer's bos token (or eos, as GPT-2 uses it) so that the first response token is
scored in both terms; the response alone is ``[start] + response``. With neither token, both
terms skip the first response token. A ratio well below 1 means the instruction makes the
response easy to predict; near or above 1, the instruction does not help (a weak pair).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from ..registry import register
from .proxy_base import ProxyScorer, float_column, reason_column


def _template_rule(value) -> str | None:
    if not isinstance(value, str) or "{instruction}" not in value:
        return "must be a format string containing '{instruction}'"
    try:
        value.format(instruction="")
    except (KeyError, IndexError, ValueError):
        return "must be a format string whose only field is '{instruction}' (write '{{' for a brace)"
    return None


@register("scorer", "ifd")
class IFDScorer(ProxyScorer):
    """IFD ratio per instruction/response pair, plus ``conditioned_loss`` and ``response_loss``.

    Example::

        scorer = IFDScorer(model="runs/proxy", template="### Instruction:\\n{instruction}\\n\\n### Response:\\n")
        scorer.setup()
        scorer.score_batch(batch)   # needs "instruction" and "response" columns
    """

    view_columns = ("instruction", "response")
    _constraints = {**ProxyScorer._constraints, "template": _template_rule}

    def __init__(
        self,
        model: str,
        template: str = "{instruction}\n\n",
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
        self.template = template

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32(), "conditioned_loss": pa.float32(), "response_loss": pa.float32()}

    def passes_per_token(self) -> float:
        return 2.0

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        instructions = batch.column("instruction").to_pylist()
        responses = batch.column("response").to_pylist()
        reasons: list[str | None] = []
        for ins, resp in zip(instructions, responses):
            reasons.append("null_response" if resp is None else "empty_response" if resp == ""
                           else "null_instruction" if ins is None else None)
        prompts = self._encode([self.template.format(instruction=i or "") for i in instructions], False)
        answers = self._encode([r or "" for r in responses], False)
        tok = self._tokenizer
        start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        start = np.asarray([] if start_id is None else [start_id], dtype=np.int64)
        skip = 0 if len(start) else 1
        n = len(responses)
        seqs, score_from = [], np.empty(2 * n, dtype=np.int64)
        for i, (p, a) in enumerate(zip(prompts, answers)):
            if reasons[i] is None and len(a) <= skip:
                reasons[i] = "empty_response"
            seqs.append(np.concatenate([start, p, a]))
            score_from[i] = len(start) + len(p) + skip
        for i, a in enumerate(answers):
            seqs.append(np.concatenate([start, a]))
            score_from[n + i] = len(start) + skip
        [stats] = self._engine.score(seqs, score_from)
        mean = stats.mean_nll()
        cond, alone = mean[:n], mean[n:]
        valid = self._valid(reasons) & (stats.count[:n] > 0) & (stats.count[n:] > 0) & (alone > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = cond / alone
        return {
            "score": float_column(ratio, valid),
            "conditioned_loss": float_column(cond, valid),
            "response_loss": float_column(alone, valid),
            "null_reason": reason_column(reasons),
        }
