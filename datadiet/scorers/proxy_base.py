"""Shared base of the proxy-model scorers (loss, perplexity, el2n, reducible_loss, ifd,
learning_dynamics). Not registered itself.

Common parameters:

- ``model``: a local causal-LM directory (Hugging Face format, safetensors).
- ``max_length``: tokens per forward window; default the model's context
  (``n_positions`` / ``max_position_embeddings``, at most 8192). Longer documents are scored
  over strided windows, never truncated.
- ``stride``: step between window starts (default ``max_length // 2``); every token after
  the first window keeps at least ``max_length - stride`` tokens of context.
- ``batch_tokens``: padded tokens per forward pass; default 2048 on CPU (cache-friendly), or
  derived from free GPU memory. ``max_memory`` (``"2GB"``) caps it: weights are subtracted,
  then 3/4 of the rest goes to activations at
  :func:`~datadiet.models.batching.activation_bytes_per_token` bytes per token and 1/4 to
  chunks of logits (3 float32 vocab vectors per row; at most 256 MiB per chunk by default).
- ``dtype``: ``auto`` (bfloat16 on a CUDA device that supports it, float32 otherwise),
  ``float32``, ``bfloat16``, ``float16``. ``device``: ``auto`` (CUDA when present), ``cpu``,
  ``cuda[:N]``. ``trust_remote_code``: off unless the recipe allows it.
- ``num_threads``: torch CPU threads for this worker; by default torch's setting, which
  follows ``OMP_NUM_THREADS`` (Dask's nanny sets it to 1 per worker process), capped at the
  cores the process may run on.

Unscorable rows get a null score and a ``null_reason``: ``null_text``, ``empty_text``,
``too_few_tokens`` (a causal LM scores tokens 2..n of a document).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from .base import Scorer

MAX_DEFAULT_CONTEXT = 8192
CPU_BATCH_TOKENS = 2048
LOGITS_BYTES = 256 * 2**20  # default bound on one chunk of vocabulary logits


def _memory_rule(value) -> str | None:
    from ..models.batching import parse_memory

    try:
        parse_memory(value)
    except ConfigError:
        return "must be a size such as '2GB' or a positive number of bytes"
    return None


def float_column(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """float32 Arrow column, null where not ``valid`` (NaN never escapes)."""
    values = np.asarray(values, dtype=np.float64)
    valid = valid & np.isfinite(values)
    return pa.array(np.where(valid, values, 0).astype(np.float32), mask=~valid)


def reason_column(reasons: list[str | None]) -> pa.Array:
    return pa.array(reasons, type=pa.string())


def _set_threads(torch, num_threads: int | None) -> None:
    """``num_threads`` when given; otherwise keep torch's count (which follows
    ``OMP_NUM_THREADS``) but never more than the cores this process may run on."""
    if num_threads:
        torch.set_num_threads(num_threads)
    elif "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        allowed = len(os.sched_getaffinity(0))
        if torch.get_num_threads() > allowed:
            torch.set_num_threads(allowed)


class ProxyScorer(Scorer):
    """Base of model-based scorers: model loading in :meth:`setup`, tokenization, batching.

    Subclasses list their model directories in :meth:`model_paths`; after :meth:`setup`,
    ``self._engine`` (a :class:`~datadiet.models.nll.TokenScorer` over those models) scores
    token sequences and ``self._tokenizer`` is the first model's tokenizer.
    """

    _constraints = {
        "max_length": Interval(int, 2),
        "stride": Interval(int, 1),
        "batch_tokens": Interval(int, 1),
        "max_memory": _memory_rule,
        "num_threads": Interval(int, 1),
    }

    def __init__(
        self,
        model: str,
        max_length: int | None = None,
        stride: int | None = None,
        batch_tokens: int | None = None,
        max_memory: str | int | None = None,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        num_threads: int | None = None,
    ):
        self.model = model
        self.max_length = max_length
        self.stride = stride
        self.batch_tokens = batch_tokens
        self.max_memory = max_memory
        self.dtype = dtype
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.num_threads = num_threads

    # -- checks and identity ---------------------------------------------------------------

    def model_paths(self) -> list[str]:
        """Model directories this scorer reads (the first one's tokenizer is used)."""
        return [self.model]

    def validate_params(self, where: str = "") -> None:
        super().validate_params(where)
        if self.stride is not None and self.max_length is not None and self.stride >= self.max_length:
            raise ConfigError(
                f"{where + ': ' if where else ''}The 'stride' parameter of {type(self).__name__} must be "
                f"< max_length ({self.max_length}). Got {self.stride!r} instead."
            )

    def check_models(self) -> None:
        """ModelError naming the directory when a model is missing, has no safetensors
        weights or tokenizer, or needs remote code that was not allowed. Cheap (no loading);
        meant for the pipeline's validate step, before any shard is scored."""
        from ..models.loading import check_model_dir

        for path in self.model_paths():
            check_model_dir(path, self.trust_remote_code)

    def state_fingerprint(self) -> str:
        from ..models.loading import model_fingerprint

        self.check_models()
        return "+".join(model_fingerprint(p) for p in self.model_paths())

    def uses_gpu(self) -> bool:
        """Whether this scorer will run on a CUDA device (so its tasks want a GPU worker)."""
        if str(self.device).startswith("cuda"):
            return True
        if self.device not in ("auto", "", None):
            return False
        try:
            import torch
        except ImportError:  # pragma: no cover
            return False
        return torch.cuda.is_available()

    def passes_per_token(self) -> float:
        """Forward passes over each text token, per model (IFD scores the response twice)."""
        return 1.0

    def flops_per_token(self) -> float:
        """2 x parameters per forward token, summed over the models (the weights' count is
        read from the safetensors headers; the embedding lookup is counted, a small overestimate)."""
        from ..models.loading import count_parameters

        self.check_models()
        return 2.0 * self.passes_per_token() * sum(count_parameters(p) for p in self.model_paths())

    # -- worker setup ------------------------------------------------------------------------

    def check(self) -> None:
        """Called by Pipeline.validate(): every model directory is usable, before any compute."""
        self.check_models()

    def resources(self) -> dict[str, float]:
        return {"GPU": 1} if self.uses_gpu() else {}

    def setup(self) -> None:
        if getattr(self, "_engine", None) is not None:
            return
        self.check_models()
        self._models = [model for _, model in self.load_models()]
        self._engine = self._make_engine(self._models)

    def load_models(self) -> list[tuple]:
        """(path, model) per model directory, on this worker's device; sets the tokenizer
        (the first model's) and the torch thread count. Call after the checks."""
        import torch

        from ..models.loading import load_causal_lm, load_tokenizer, resolve_device

        _set_threads(torch, self.num_threads)
        paths = self.model_paths()
        self._device = resolve_device(self.device)
        self._tokenizer = load_tokenizer(paths[0], trust_remote_code=self.trust_remote_code)
        return [(p, load_causal_lm(p, dtype=self.dtype, device=self.device, trust_remote_code=self.trust_remote_code))
                for p in paths]

    def _model_context(self, model) -> int:
        cfg = model.config
        for key in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 1:
                return value
        return 2048

    def _make_engine(self, models: list):
        from ..models.batching import (
            activation_bytes_per_token,
            logits_chunk_rows,
            parse_memory,
            tokens_under_memory,
        )
        from ..models.nll import TokenScorer

        context = min(self._model_context(m) for m in models)
        if self.max_length is not None and self.max_length > context:
            raise ConfigError(
                f"The 'max_length' parameter of {type(self).__name__} must be <= the model context "
                f"({context}) of {self.model_paths()[0]}. Got {self.max_length} instead."
            )
        max_length = self.max_length or min(context, MAX_DEFAULT_CONTEXT)
        stride = self.stride or max(1, max_length // 2)
        if stride >= max_length:
            raise ConfigError(f"stride ({stride}) must be < max_length ({max_length}) for {self.model_paths()[0]}")
        cfg = models[0].config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 1024)
        inter = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
        heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 16)
        vocab = getattr(cfg, "vocab_size", 50000)
        param = next(models[0].parameters())
        dtype_bytes = param.element_size()

        batch_tokens = self.batch_tokens
        logits_rows = logits_chunk_rows(vocab, LOGITS_BYTES)
        budget = parse_memory(self.max_memory) if self.max_memory is not None else None
        if budget is None and self._device.type == "cuda" and batch_tokens is None:
            import torch

            free, _ = torch.cuda.mem_get_info(self._device)
            budget = int(0.6 * free) + sum(p.numel() * p.element_size() for m in models for p in m.parameters())
        if budget is not None:
            weights = sum(p.numel() * p.element_size() for m in models for p in m.parameters())
            per_token = activation_bytes_per_token(hidden, inter, heads, max_length, dtype_bytes)
            mem_tokens, mem_rows = tokens_under_memory(budget, weights, per_token, vocab)
            logits_rows = min(logits_rows, mem_rows)
            batch_tokens = min(batch_tokens or mem_tokens, mem_tokens)
            if batch_tokens < max_length:
                raise ConfigError(
                    f"max_memory {self.max_memory!r} leaves room for {batch_tokens} tokens per batch, less "
                    f"than one window of max_length {max_length}; raise max_memory or lower max_length"
                )
        if batch_tokens is None:
            batch_tokens = CPU_BATCH_TOKENS
        self._max_length, self._stride = max_length, stride
        return TokenScorer(models, max_length=max_length, stride=stride, batch_tokens=max(batch_tokens, max_length),
                           logits_rows=logits_rows, pad_id=0)

    # -- tokenization ----------------------------------------------------------------------

    def _encode(self, texts: list[str], add_special_tokens: bool = True, tokenizer=None) -> list[np.ndarray]:
        tok = tokenizer or self._tokenizer
        out: list[np.ndarray] = []
        for lo in range(0, len(texts), 1024):
            enc = tok(texts[lo : lo + 1024], add_special_tokens=add_special_tokens, verbose=False,
                      return_attention_mask=False)["input_ids"]
            out.extend(np.asarray(ids, dtype=np.int64) for ids in enc)
        return out

    def _text_sequences(self, batch: pa.RecordBatch, tokenizer=None) -> tuple[list[np.ndarray], list[str | None]]:
        """Token ids of the ``text`` column and a null reason per row (None when scorable)."""
        texts = batch.column("text").to_pylist()
        reasons: list[str | None] = [
            "null_text" if t is None else "empty_text" if t == "" else None for t in texts
        ]
        seqs = self._encode([t or "" for t in texts], tokenizer=tokenizer)
        for i, s in enumerate(seqs):
            if reasons[i] is None and len(s) < 2:
                reasons[i] = "too_few_tokens"
        return seqs, reasons

    @staticmethod
    def _valid(reasons: list[str | None]) -> np.ndarray:
        return np.fromiter((r is None for r in reasons), dtype=bool, count=len(reasons))

    def resolved_settings(self) -> dict[str, Any]:
        """Window and batch settings chosen by :meth:`setup`."""
        return {"max_length": self._max_length, "stride": self._stride,
                "batch_tokens": self._engine.batch_tokens, "logits_rows": self._engine.logits_rows}
