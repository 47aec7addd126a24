"""Transformer shapes: parameter counts from a Hugging Face ``config.json``, and a typical
decoder shape for a bare parameter count (for activation estimates).

Example::

    shape = shape_from_config("models/llama-7b/config.json")    # ModelShape(hidden=4096, layers=32, ...)
    shape.params                                                # 6_738_415_616
    shape_for_params(1e9)                                       # a Llama-like 1B shape
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputError

_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(value: str | int | float, what: str) -> float:
    """A count such as ``7B``, ``125M``, ``1.4T`` or ``7e9``; ConfigError naming ``what``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGT]?)\s*", str(value).upper())
        if not match:
            raise ConfigError(f"{what} must be a number such as 7e9, 125M, 7B or 1.4T. Got {value!r} instead.")
        number = float(match.group(1)) * _SUFFIX[match.group(2)]
    if number <= 0:
        raise ConfigError(f"{what} must be > 0. Got {value!r} instead.")
    return number


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer: widths, depth, vocabulary and whether its MLP is gated
    (SwiGLU, as Llama) or not (GELU, as GPT-2). ``assumed`` when guessed from a count."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    kv_heads: int | None = None
    gated: bool = True
    biases: bool = False
    tied_embeddings: bool = False
    positions: int = 0  # learned position embeddings (GPT-2), 0 for rotary
    assumed: bool = False
    given_params: float | None = None

    @property
    def kv_dim(self) -> int:
        return (self.kv_heads or self.heads) * (self.hidden // self.heads)

    @property
    def layer_linear_params(self) -> int:
        """Weights of one block's linear layers (what LoRA adapts and 4-bit QLoRA quantizes)."""
        h, i = self.hidden, self.intermediate
        attention = 2 * h * h + 2 * h * self.kv_dim
        return attention + (3 if self.gated else 2) * h * i

    def linear_matrices(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer in one block: q, k, v, o, then the MLP."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        mlp = [(h, i), (h, i), (i, h)] if self.gated else [(h, i), (i, h)]
        return [(h, h), (h, kv), (h, kv), (h, h)] + mlp

    @property
    def params(self) -> int:
        if self.given_params is not None:
            return int(self.given_params)
        return self.derived_params

    @property
    def derived_params(self) -> int:
        h, i = self.hidden, self.intermediate
        per_layer = self.layer_linear_params + 2 * h * (2 if self.biases else 1)
        if self.biases:
            per_layer += 2 * h + 2 * self.kv_dim + (i + h if not self.gated else 2 * i + h)
        embeddings = self.vocab * h + self.positions * h
        head = 0 if self.tied_embeddings else self.vocab * h
        final_norm = h * (2 if self.biases else 1)
        return embeddings + self.layers * per_layer + final_norm + head

    def describe(self) -> str:
        kind = "gated MLP" if self.gated else "GELU MLP"
        text = (f"hidden {self.hidden}, {self.layers} layer{'s' if self.layers != 1 else ''}, {self.heads} heads, intermediate {self.intermediate}, "
                f"vocab {self.vocab}, {kind}")
        return text + ("; a typical shape for this size, --model-config gives the real one" if self.assumed else "")


def _first(cfg: dict, *keys, default=None):
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def shape_from_config(path: str | Path) -> ModelShape:
    """Shape of a Hugging Face ``config.json`` (GPT-2 or Llama-style keys), or of the
    directory holding one."""
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"model config not found: {file}")
    try:
        cfg = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{file}: not a JSON model config: {exc}") from None
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers")
    heads = _first(cfg, "num_attention_heads", "n_head", "num_heads")
    vocab = _first(cfg, "vocab_size")
    missing = [k for k, v in (("hidden_size", hidden), ("num_hidden_layers", layers),
                              ("num_attention_heads", heads), ("vocab_size", vocab)) if not isinstance(v, int)]
    if missing:
        raise InputError(f"{file}: no {missing[0]!r} (or its GPT-2 name) to size the model from")
    gpt2_style = cfg.get("model_type") == "gpt2" or "n_embd" in cfg
    inter = _first(cfg, "intermediate_size", "n_inner", "ffn_dim", default=None) or 4 * hidden
    gated = not gpt2_style and cfg.get("hidden_act", cfg.get("activation_function", "silu")) in ("silu", "swiglu")
    return ModelShape(
        hidden=hidden, layers=layers, heads=heads, intermediate=int(inter), vocab=vocab,
        kv_heads=_first(cfg, "num_key_value_heads"), gated=gated, biases=gpt2_style,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", gpt2_style)),
        positions=int(_first(cfg, "n_positions", default=0)) if gpt2_style else 0,
    )


HIDDEN_LADDER = (512, 768, 1024, 1536, 2048, 2560, 3072, 4096, 5120, 6144, 8192, 12288, 16384)


def shape_for_params(params: float, vocab: int = 32000) -> ModelShape:
    """A Llama-like shape (gated MLP, head size 128, intermediate 8/3 of hidden rounded to
    256, hidden about 128 x layers, as Llama 1B-13B) whose size is close to ``params``.
    The given count stays the model's size; the shape only feeds activation estimates."""
    target = (params / 0.094) ** (1 / 3)  # 12 h^2 per layer with h = 128 L gives N ~ 0.094 h^3
    hidden = min(HIDDEN_LADDER, key=lambda h: abs(h - target))
    inter = -(-int(hidden * 8 / 3) // 256) * 256
    heads = max(1, hidden // 128)
    base = ModelShape(hidden, 1, heads, inter, vocab)
    per_layer = base.layer_linear_params + 2 * hidden
    layers = max(1, round((params - 2 * vocab * hidden) / per_layer))
    return ModelShape(hidden, layers, heads, inter, vocab, assumed=True, given_params=params)
