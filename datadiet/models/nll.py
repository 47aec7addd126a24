"""Per-document token losses of causal LMs, fast: bucketed batches, exact per-document sums.

:class:`TokenScorer` takes token id sequences, cuts them into strided windows
(:func:`~datadiet.models.batching.make_windows`), batches windows of similar length with right
padding, runs the transformer once per batch under ``torch.inference_mode`` and computes the
output head and cross-entropy only on the positions that are scored, in chunks, so the full
``batch x length x vocab`` logits are never materialised. Right padding needs no attention mask
for a causal model (real tokens never attend to the pads after them), which keeps the fused
causal attention kernels. Sums are accumulated per document in float64, so a document's mean
does not depend on which batch or window it was scored in beyond float32 matmul rounding.

Example::

    engine = TokenScorer([model], max_length=512, stride=256, batch_tokens=4096)
    [stats] = engine.score([np.array([5, 17, 42, 9])])
    stats.mean_nll()   # mean token NLL per document (nan where nothing was scored)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batching import Windows, make_windows, plan_batches

# Model types whose logits are exactly ``output_embeddings(base_model(...).last_hidden_state)``;
# others (logit soft-capping, scaling) go through the full forward.
_HEAD_ON_HIDDEN = frozenset({
    "gpt2", "llama", "mistral", "qwen2", "qwen3", "gpt_neox", "gptj", "phi3", "olmo", "olmo2",
    "stablelm", "starcoder2", "smollm3", "gpt_bigcode",
})


@dataclass
class TokenStats:
    """Per-document sums over scored tokens."""

    nll_sum: np.ndarray
    count: np.ndarray
    el2n_sum: np.ndarray | None = None

    def mean_nll(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.nll_sum / np.maximum(self.count, 1), np.nan)

    def mean_el2n(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.el2n_sum / np.maximum(self.count, 1), np.nan)


class TokenScorer:
    """Scores token sequences under one or more causal LMs sharing a tokenizer.

    ``batch_tokens`` bounds rows x padded length per forward pass; ``logits_rows`` bounds the
    rows of vocabulary logits computed at once. Several models (checkpoints) run on the same
    batches, so the text is windowed and batched once.
    """

    def __init__(self, models: list, *, max_length: int, stride: int, batch_tokens: int,
                 logits_rows: int = 2048, max_batch_size: int = 1024, pad_id: int = 0):
        self.models = list(models)
        self.max_length = int(max_length)
        self.stride = int(stride)
        self.batch_tokens = int(batch_tokens)
        self.logits_rows = int(logits_rows)
        self.max_batch_size = int(max_batch_size)
        self.pad_id = int(pad_id)
        self.device = next(self.models[0].parameters()).device

    def score(self, sequences: list[np.ndarray], score_from: np.ndarray | None = None,
              el2n: bool = False) -> list[TokenStats]:
        """One :class:`TokenStats` per model. ``score_from[i]`` makes the first tokens of
        sequence ``i`` context only (targets before it are not scored)."""
        import torch

        n_docs = len(sequences)
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n_docs)
        windows = make_windows(lengths, self.max_length, self.stride, score_from)
        stats = [TokenStats(np.zeros(n_docs), np.zeros(n_docs, np.int64),
                            np.zeros(n_docs) if el2n else None) for _ in self.models]
        if len(windows) == 0:
            return stats
        for rows in plan_batches(windows.length, self.batch_tokens, self.max_batch_size):
            ids, flat, doc_of_target = self._batch(sequences, windows, rows)
            ids_t = torch.from_numpy(ids).to(self.device)
            flat_t = torch.from_numpy(flat).to(self.device)
            targets = ids_t.reshape(-1)[flat_t + 1]
            for model, st in zip(self.models, stats):
                nll, e2 = self._forward(model, ids_t, flat_t, targets, el2n)
                st.nll_sum += np.bincount(doc_of_target, weights=nll, minlength=n_docs)
                st.count += np.bincount(doc_of_target, minlength=n_docs)
                if el2n:
                    st.el2n_sum += np.bincount(doc_of_target, weights=e2, minlength=n_docs)
        return stats

    def _batch(self, sequences, windows: Windows, rows: np.ndarray):
        """Right-padded ids and the flat positions (row * width + t - 1) whose next token is scored."""
        begin, end, start = windows.begin[rows], windows.end[rows], windows.target_start[rows]
        width = int((end - begin).max())
        # Pads sit after each row's real tokens, so (causal attention) their value never matters.
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        for r, (w, b, e) in enumerate(zip(rows, begin, end)):
            ids[r, : e - b] = sequences[windows.doc[w]][b:e]
        n_t = end - start
        first = np.arange(len(rows)) * width + (start - begin) - 1
        offsets = np.repeat(first - np.concatenate([[0], np.cumsum(n_t)[:-1]]), n_t)
        flat = offsets + np.arange(int(n_t.sum()))
        return ids, flat, np.repeat(windows.doc[rows], n_t)

    def _forward(self, model, ids, flat, targets, el2n: bool):
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            if model.config.model_type in _HEAD_ON_HIDDEN:
                hidden = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
                hidden = hidden.reshape(-1, hidden.shape[-1])[flat]
                head = model.get_output_embeddings()
            else:
                logits = model(input_ids=ids, use_cache=False).logits
                hidden, head = logits.reshape(-1, logits.shape[-1])[flat], None
                del logits
            nll = torch.empty(len(flat), dtype=torch.float64, device=ids.device)
            e2 = torch.empty_like(nll) if el2n else None
            for lo in range(0, len(flat), self.logits_rows):
                hi = min(lo + self.logits_rows, len(flat))
                logits = (head(hidden[lo:hi]) if head is not None else hidden[lo:hi]).float()
                y = targets[lo:hi]
                nll[lo:hi] = F.cross_entropy(logits, y, reduction="none")
                if el2n:
                    p = torch.softmax(logits, dim=-1)
                    sq = (p * p).sum(-1) - 2 * p.gather(1, y[:, None]).squeeze(1) + 1
                    e2[lo:hi] = sq.clamp_min(0).sqrt()
        return nll.cpu().numpy(), (e2.cpu().numpy() if el2n else None)
