"""Shared base of the gradient scorers (``grad_norm``, ``less``, ``tracin``, ``grad_features``).
Not registered itself.

A document's feature under a checkpoint is the seeded random projection of the gradient of
its mean token loss with respect to a parameter set (:mod:`datadiet.gradients`). Parameters
besides the proxy scorers' (``max_length``, ``stride``, ``batch_tokens``, ``max_memory``,
``dtype``, ``device``, ``trust_remote_code``, ``num_threads``):

- ``checkpoints``: model directories in training order, or one directory holding
  ``checkpoint-<step>`` folders (as ``datadiet proxy train`` writes); all must share the first
  one's tokenizer, which tokenizes the pool and the target set;
- ``params``: the parameter set (``lm_head``, ``last:K``, ``linear``, ``lora`` or module-name
  globs; see :mod:`datadiet.gradients.params`); ``lora_rank``/``lora_alpha`` size fresh, seeded
  LoRA adapters for ``params: lora``;
- ``engine``: ``structured`` (one batched backward pass, factorised projection, linear layers
  only) or ``exact`` (``torch.func`` per-example gradients, dense projection, any parameter);
- ``projection_dim`` (d, at most the covered parameter count; the structured engine's
  features have ``d`` dims when ``d`` factorises over the layers, a few less otherwise),
  ``projection`` (``rademacher`` or ``gaussian``) and ``seed``;
- ``precondition``: ``none`` or ``adam`` (divide by ``sqrt(v_hat) + eps`` from each
  checkpoint's ``optimizer.safetensors``, pool rows only, as LESS does);
- ``template``: with instruction/response sources, the gradient is that of the response tokens
  after ``template.format(instruction=...)`` (as LESS does);
- ``checkpoint_weights``: per-checkpoint weights; default the learning rate saved with each
  checkpoint's optimizer state (1.0 when there is none).

Null reasons: ``null_text``, ``empty_text``, ``too_few_tokens``, ``null_response``,
``empty_response``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, ModelError
from ..params import Interval
from .learning_dynamics import expand_checkpoints
from .proxy_base import ProxyScorer

ROWS_PER_PASS = 256  # documents featurized together (bounds the feature accumulators)
CPU_BATCH_TOKENS = 1024


def _params_rule(value) -> str | None:
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) and e for e in entries):
        return "must be a parameter-set name or a non-empty list of them (lm_head, last:K, linear, lora, globs)"
    return None


def _template_rule(value) -> str | None:
    if not isinstance(value, str) or "{instruction}" not in value:
        return "must be a format string containing '{instruction}'"
    return None


def tokenizer_fingerprint(path: str) -> str:
    from ..fingerprint import files_fingerprint

    names = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "tokenizer_config.json",
             "special_tokens_map.json")
    return files_fingerprint([Path(path) / n for n in names if (Path(path) / n).is_file()])


def checkpoint_lr(path: str) -> float | None:
    """The learning rate saved in a checkpoint's optimizer metadata, if any."""
    from ..models.optimizer_state import OPTIMIZER_FILE

    file = Path(path) / OPTIMIZER_FILE
    if not file.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as fh:
        lr = (fh.metadata() or {}).get("lr")
    return float(lr) if lr is not None else None


class GradientScorer(ProxyScorer):
    """Base of the gradient scorers: checks, model loading, engines, per-document features."""

    _constraints = {
        **ProxyScorer._constraints,
        "params": _params_rule,
        "projection_dim": Interval(int, 1),
        "lora_rank": Interval(int, 1),
        "lora_alpha": Interval(float, 0, low_open=True),
        "template": _template_rule,
    }

    def __init__(
        self,
        checkpoints: str | list[str],
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
        super().__init__("", max_length, stride, batch_tokens, max_memory, dtype, device, trust_remote_code,
                         num_threads)
        del self.model  # the checkpoints are the models
        self.checkpoints = checkpoints
        self.params = params
        self.engine = engine
        self.projection_dim = projection_dim
        self.projection = projection
        self.seed = seed
        self.precondition = precondition
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.template = template
        self.checkpoint_weights = checkpoint_weights

    # -- checks before compute ---------------------------------------------------------------

    def model_paths(self) -> list[str]:
        paths = expand_checkpoints(self.checkpoints)
        if not paths:
            raise ConfigError(f"{self.registry_name}: 'checkpoints' names no model directory")
        return paths

    def _uses_lora(self) -> bool:
        entries = [self.params] if isinstance(self.params, str) else list(self.params)
        return "lora" in entries

    def _with_lora(self, model):
        from ..gradients.params import add_lora

        return add_lora(model, self.lora_rank, self.lora_alpha, self.seed) if self._uses_lora() else model

    def _meta_layers(self):
        """(meta model, covered layers) of the first checkpoint, built without weights."""
        cached = getattr(self, "_meta", None)
        if cached is None:
            from ..gradients.params import meta_model, resolve_layers

            model = self._with_lora(meta_model(self.model_paths()[0], self.trust_remote_code))
            cached = self._meta = (model, resolve_layers(model, self.params, f"{self.registry_name}: params"))
        return cached

    def check(self) -> None:
        """Every problem the issue lists, before any shard is scored: models, tokenizers,
        parameter set, projection dimension, optimizer state, weights."""
        self.check_models()
        paths = self.model_paths()
        first = tokenizer_fingerprint(paths[0])
        for p in paths[1:]:
            if tokenizer_fingerprint(p) != first:
                raise ModelError(f"{self.registry_name}: checkpoint {p} has a different tokenizer from {paths[0]}, "
                                 "whose tokenizer reads the pool and the target set; all checkpoints must share it")
        if self.checkpoint_weights is not None and len(self.checkpoint_weights) != len(paths):
            raise ConfigError(f"{self.registry_name}: checkpoint_weights has {len(self.checkpoint_weights)} values "
                              f"for {len(paths)} checkpoints")
        model, layers = self._meta_layers()
        self._check_dims(layers)
        if self.precondition == "adam":
            from ..gradients.precondition import check_moments

            if self._uses_lora():
                raise ModelError(f"{self.registry_name}: precondition: adam needs optimizer moments, and fresh LoRA "
                                 "adapters have none; use precondition: none with params: lora")
            for p in paths:
                check_moments(p, model, layers)

    def _check_dims(self, layers) -> None:
        n = sum(la.numel() for la in layers)
        if self.projection_dim > n:
            raise ConfigError(f"The 'projection_dim' parameter of {type(self).__name__} must be <= the number of "
                              f"covered parameters ({n} for params {self.params!r}). Got {self.projection_dim} instead.")
        if self.engine == "structured":
            other = [la.name for la in layers if la.kind == "other"]
            if other:
                raise ConfigError(f"{self.registry_name}: the structured engine covers linear layers only; "
                                  f"{other[:3]} are not linear (set engine: exact for them)")

    def feature_dim(self) -> int:
        """Dimensions of one checkpoint's feature (known before loading weights)."""
        from ..gradients.projection import factor_dims

        _, layers = self._meta_layers()
        self._check_dims(layers)
        if self.engine == "exact":
            return int(self.projection_dim)
        return sum(a * b for a, b in factor_dims(self.projection_dim, [(la.out_features, la.in_features)
                                                                       for la in layers]))

    def state_fingerprint(self) -> str:
        from ..fingerprint import files_fingerprint
        from ..models.optimizer_state import OPTIMIZER_FILE

        base = super().state_fingerprint()
        if self.precondition == "adam":
            base += "+" + files_fingerprint([Path(p) / OPTIMIZER_FILE for p in self.model_paths()])
        return base

    def weights(self) -> np.ndarray:
        """Per-checkpoint weights (learning rates by default)."""
        if self.checkpoint_weights is not None:
            return np.asarray(self.checkpoint_weights, dtype=np.float64)
        lrs = [checkpoint_lr(p) for p in self.model_paths()]
        return np.asarray([1.0 if lr is None else lr for lr in lrs], dtype=np.float64)

    def flops_per_token(self) -> float:
        """Forward (2 P) + backward through activations (2 P) + projection, per checkpoint; the
        exact engine also computes weight gradients (2 P) and a dense projection per window."""
        from ..models.loading import count_parameters

        self.check_models()
        paths = self.model_paths()
        _, layers = self._meta_layers()
        n_params = count_parameters(paths[0])
        if self.engine == "exact":
            covered = sum(la.numel() for la in layers)
            per = 6.0 * n_params + 2.0 * self.projection_dim * covered / 64
        else:
            from ..gradients.projection import factor_dims

            dims = factor_dims(self.projection_dim, [(la.out_features, la.in_features) for la in layers])
            per = 4.0 * n_params + sum(2.0 * (la.in_features * ki + la.out_features * ko + ko * ki)
                                       for la, (ko, ki) in zip(layers, dims))
        return per * len(paths)

    # -- worker setup --------------------------------------------------------------------------

    def setup(self) -> None:
        if getattr(self, "_engines", None) is not None:
            return
        import copy

        from ..gradients.params import resolve_layers

        self.check()
        engines = []
        for path, model in self.load_models():
            if self._uses_lora():
                model = self._with_lora(copy.deepcopy(model)).to(self._device)
            layers = resolve_layers(model, self.params, f"{self.registry_name}: params")
            engines.append((path, model, layers))
        self._configure(engines[0][1], engines[0][2])
        self._engines = [self._make_grad_engine(path, model, layers, pre=False) for path, model, layers in engines]
        if self.precondition == "adam":
            self._pre_engines = [self._make_grad_engine(p, m, la, pre=True) for p, m, la in engines]
        else:
            self._pre_engines = self._engines

    def _make_grad_engine(self, path, model, layers, pre: bool):
        from ..gradients.exact import ExactEngine
        from ..gradients.structured import StructuredEngine

        scales = None
        if pre:
            from ..gradients.precondition import adam_scales, rank_one

            scales = adam_scales(path, model, layers)
            if self.engine == "structured":
                scales = [rank_one(scales[f"{la.name}.weight"]) for la in layers]
        if self.engine == "exact":
            return ExactEngine(model, layers, self.projection_dim, self.seed, self.projection, chunk=self._chunk,
                               scales=scales)
        return StructuredEngine(model, layers, self.projection_dim, self.seed, self.projection, scales=scales)

    def _configure(self, model, layers) -> None:
        """Window length, stride, tokens per batch and (exact engine) rows per vmap chunk."""
        from ..models.batching import parse_memory

        context = self._model_context(model)
        if self.max_length is not None and self.max_length > context:
            raise ConfigError(f"The 'max_length' parameter of {type(self).__name__} must be <= the model context "
                              f"({context}). Got {self.max_length} instead.")
        self._max_length = self.max_length or min(context, 8192)
        self._stride = self.stride or max(1, self._max_length // 2)
        if self._stride >= self._max_length:
            raise ConfigError(f"stride ({self._stride}) must be < max_length ({self._max_length})")
        cfg = model.config
        hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 1024)
        inter = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
        heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 16)
        n_layer = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 12)
        vocab = getattr(cfg, "vocab_size", 50000)
        dtype_bytes = next(model.parameters()).element_size()
        # activations kept for the backward pass, all layers, plus float32 logits and their gradient
        per_token = (n_layer * (dtype_bytes * (16 * hidden + 3 * inter) + 4 * heads * self._max_length)
                     + 12 * vocab + 4 * self.projection_dim)
        covered = sum(la.numel() for la in layers)
        tokens = self.batch_tokens or CPU_BATCH_TOKENS
        self._chunk = 32
        if self.max_memory is not None or (self._device.type == "cuda" and self.batch_tokens is None):
            if self.max_memory is not None:
                budget = parse_memory(self.max_memory)
            else:
                import torch

                budget = int(0.5 * torch.cuda.mem_get_info(self._device)[0])
            free = budget - sum(p.numel() * p.element_size() for p in model.parameters()) * len(self.model_paths())
            if free <= per_token * self._max_length:
                raise ConfigError(f"max_memory {self.max_memory!r} leaves room for less than one window of "
                                  f"{self._max_length} tokens; raise max_memory or lower max_length")
            tokens = min(self.batch_tokens or free // per_token, free // per_token)
            # exact engine: rows x (per-example gradients and their projection, plus activations)
            per_row = 3 * 4 * covered + per_token * self._max_length
            self._chunk = max(1, int(free // per_row))
        self._batch_tokens = int(max(tokens, self._max_length))

    # -- features -------------------------------------------------------------------------------

    def _sequences(self, batch: pa.RecordBatch):
        """(token id sequences, score_from or None, null reasons)."""
        names = batch.schema.names
        if "instruction" in names and "response" in names:
            instructions = batch.column("instruction").to_pylist()
            responses = batch.column("response").to_pylist()
            reasons = ["null_response" if r is None else "empty_response" if r == "" else None for r in responses]
            prompts = self._encode([self.template.format(instruction=i or "") for i in instructions], False)
            answers = self._encode([r or "" for r in responses], False)
            tok = self._tokenizer
            start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            start = np.asarray([] if start_id is None else [start_id], dtype=np.int64)
            seqs, score_from = [], np.empty(len(responses), dtype=np.int64)
            for i, (p, a) in enumerate(zip(prompts, answers)):
                seqs.append(np.concatenate([start, p, a]))
                score_from[i] = len(start) + len(p) + (0 if len(start) else 1)
                if reasons[i] is None and score_from[i] >= len(seqs[i]):
                    reasons[i] = "empty_response"
            return seqs, score_from, reasons
        seqs, reasons = self._text_sequences(batch)
        return seqs, None, reasons

    def features(self, batch: pa.RecordBatch, precondition: bool = True) -> tuple[list[np.ndarray], np.ndarray, list]:
        """([n_rows, dim] float64 features per checkpoint, valid mask, null reasons); pool rows
        are preconditioned when the scorer says so, target rows (``precondition=False``) never."""
        from ..gradients.featurize import featurize

        GradientScorer.setup(self)
        seqs, score_from, reasons = self._sequences(batch)
        valid = self._valid(reasons)
        engines = self._pre_engines if precondition else self._engines
        n = batch.num_rows
        out = [np.zeros((n, e.dim), dtype=np.float64) for e in engines]
        rows = np.flatnonzero(valid)
        for lo in range(0, len(rows), ROWS_PER_PASS):
            part = rows[lo : lo + ROWS_PER_PASS]
            feats, counts = featurize(engines, [seqs[i] for i in part], max_length=self._max_length,
                                      stride=self._stride, batch_tokens=self._batch_tokens,
                                      score_from=None if score_from is None else score_from[part])
            for acc, f in zip(out, feats):
                acc[part] = f
            for i in part[counts == 0]:
                valid[i] = False
                reasons[i] = reasons[i] or "too_few_tokens"
        return out, valid, reasons

    def resolved_settings(self) -> dict[str, Any]:
        self.setup()
        return {"max_length": self._max_length, "stride": self._stride, "batch_tokens": self._batch_tokens,
                "chunk": self._chunk, "dim": self._engines[0].dim}


def feature_column(matrix: np.ndarray, valid: np.ndarray) -> pa.Array:
    """fixed_size_list<float16> column of the rows of ``matrix``, null where not valid."""
    dim = matrix.shape[1]
    flat = pa.array(np.where(valid[:, None], matrix, 0).astype(np.float16).reshape(-1), type=pa.float16())
    return pa.FixedSizeListArray.from_arrays(flat, dim, mask=pa.array(~valid))


def target_names(target) -> list[str | None]:
    return [target] if target is None or isinstance(target, str) else list(target)


def describe_target(name: str | None) -> str:
    return json.dumps(name or "default")
