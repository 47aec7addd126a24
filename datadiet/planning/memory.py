"""Training memory per GPU: weights, gradients, optimizer states and activations for full
fine-tuning, LoRA and QLoRA, in fp32, mixed or bf16 precision, with or without activation
checkpointing, and the largest micro-batch that fits a GPU.

Precisions (bytes per parameter: weights / gradients / fp32 master copy / each Adam moment):

- ``fp32``: 4 / 4 / 0 / 4, activations 4 bytes;
- ``mixed`` (autocast): fp32 weights, bf16 activations: 4 / 4 / 0 / 4;
- ``bf16``: bf16 weights and gradients with an fp32 master copy and fp32 moments:
  2 / 2 / 4 / 4, the 16 bytes per parameter of Adam training (Rajbhandari et al. 2020, ZeRO).

LoRA (Hu et al. 2021) freezes the base weights (held in the weight dtype, no gradient or
optimizer state) and trains ``r (d_in + d_out)`` parameters per adapted matrix, in fp32
with Adam (16 bytes each). QLoRA (Dettmers et al. 2023) stores the blocks' linear weights in
4-bit NormalFloat with double-quantized constants (4.127 bits per weight) and keeps the
embeddings, norms and output layer in 16 bits; one layer's weights are dequantized at a time.

Activations per layer and sequence follow Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models" (eq. 1, no parallelism), with 16-bit activations::

    s b h (34 + 5 a s / h)  bytes

generalised to an MLP of width ``i``: ``s b (18 h + 4 i) + 5 a s^2 b`` (``8 i`` for a gated
MLP, whose gate, up, activation and product are all kept). With flash attention (the
default here) the ``5 a s^2 b`` softmax and dropout term is not stored. Full activation
checkpointing keeps only each layer's input (``2 s b h``) plus one layer recomputed at a
time. The output layer adds the logits in the activation dtype and their float32 copy for
the loss (``s b V (a + 4)``).

Example::

    shape = shape_for_params(7e9)
    est = training_memory(shape, method="full", precision="bf16", seq_len=2048)
    est.static_bytes / shape.params          # 16.0
    est.max_micro_batch(80 * 2**30)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .shapes import ModelShape

GIB = 2**30
NF4_BYTES = 4.127 / 8  # 4-bit weights + double-quantized block constants (QLoRA, section 3)
DEFAULT_OVERHEAD = GIB  # CUDA context and allocator slack


@dataclass(frozen=True)
class Precision:
    weight: float
    grad: float
    master: float
    state: float  # bytes of each optimizer moment
    activation: float


PRECISIONS = {
    "fp32": Precision(4, 4, 0, 4, 4),
    "mixed": Precision(4, 4, 0, 4, 2),
    "bf16": Precision(2, 2, 4, 4, 2),
}
METHODS = ("full", "lora", "qlora")
#: optimizer name -> (moments per trainable parameter, bytes per moment or None for the precision's)
OPTIMIZERS = {"adamw": (2, None), "adamw-8bit": (2, 1), "sgd": (1, None)}
LORA_TARGETS = ("all", "attention")


@dataclass
class MemoryEstimate:
    """Bytes on one GPU for one configuration; activations are per sequence of ``seq_len``."""

    method: str
    precision: str
    checkpointing: bool
    seq_len: int
    weights: float
    grads: float
    optimizer: float
    trainable_params: float
    activations_per_sequence: float
    overhead: float = DEFAULT_OVERHEAD

    @property
    def static_bytes(self) -> float:
        """Weights, gradients and optimizer states (master copy included): what a batch adds to."""
        return self.weights + self.grads + self.optimizer

    def total(self, micro_batch: int = 1) -> float:
        return self.static_bytes + micro_batch * self.activations_per_sequence + self.overhead

    def max_micro_batch(self, gpu_memory: float) -> int:
        """Largest number of sequences per step that fits ``gpu_memory`` bytes (0: none)."""
        room = gpu_memory - self.overhead - self.static_bytes
        return max(0, int(room // self.activations_per_sequence)) if room > 0 else 0

    def to_dict(self, gpu_memory: float | None = None) -> dict:
        out = {"method": self.method, "precision": self.precision, "checkpointing": self.checkpointing,
               "seq_len": self.seq_len, "trainable_params": self.trainable_params, "weights_bytes": self.weights,
               "grads_bytes": self.grads, "optimizer_bytes": self.optimizer,
               "activations_bytes_per_sequence": self.activations_per_sequence, "overhead_bytes": self.overhead,
               "total_bytes_micro_batch_1": self.total(1)}
        if gpu_memory is not None:
            out["max_micro_batch"] = self.max_micro_batch(gpu_memory)
            out["fits"] = out["max_micro_batch"] >= 1
        return out


def lora_params(shape: ModelShape, rank: int, targets: str = "all") -> int:
    """Trainable LoRA parameters: ``r (d_in + d_out)`` per adapted matrix and layer; ``all``
    linear layers of each block (as QLoRA) or only the ``attention`` projections q, k, v, o."""
    if targets not in LORA_TARGETS:
        raise ConfigError(f"--lora-targets must be one of {', '.join(LORA_TARGETS)}. Got {targets!r} instead.")
    matrices = shape.linear_matrices()
    if targets == "attention":
        matrices = matrices[:4]
    return shape.layers * sum(rank * (d_in + d_out) for d_in, d_out in matrices)


def activation_bytes_per_layer(shape: ModelShape, seq_len: int, act_bytes: float, flash_attention: bool = True) -> float:
    """Korthikanti et al. (2022) eq. 1 per layer and sequence, generalised to MLP width and
    scaled from 16-bit to ``act_bytes`` (dropout masks stay 1 byte)."""
    s, h, i, a = seq_len, shape.hidden, shape.intermediate, shape.heads
    scale = act_bytes / 2
    masks = 2 * s * h  # attention-output and MLP-output dropout masks, one byte each
    tensors = s * (18 * h + (8 if shape.gated else 4) * i) - masks
    attention = 0.0 if flash_attention else 4 * a * s * s * scale + a * s * s
    return tensors * scale + masks + attention


def activation_bytes(shape: ModelShape, seq_len: int, act_bytes: float, checkpointing: bool,
                     flash_attention: bool = True) -> float:
    """Activations of one sequence through the whole model (logits included)."""
    per_layer = activation_bytes_per_layer(shape, seq_len, act_bytes, flash_attention)
    layers = shape.layers * act_bytes * seq_len * shape.hidden + per_layer if checkpointing \
        else shape.layers * per_layer
    logits = seq_len * shape.vocab * (act_bytes + 4)
    return layers + logits + act_bytes * seq_len * shape.hidden  # + the final norm's input


def training_memory(shape: ModelShape, method: str = "full", precision: str = "bf16", seq_len: int = 2048,
                    checkpointing: bool = False, lora_rank: int = 16, lora_targets: str = "all",
                    optimizer: str = "adamw", flash_attention: bool = True,
                    overhead: float = DEFAULT_OVERHEAD) -> MemoryEstimate:
    """Memory of training ``shape`` one way on one GPU (see the module docstring)."""
    if method not in METHODS:
        raise ConfigError(f"--methods: unknown method {method!r}; expected {', '.join(METHODS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precisions: unknown precision {precision!r}; expected {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}. Got {optimizer!r} instead.")
    if seq_len < 1 or lora_rank < 1:
        raise ConfigError(f"--seq-len and --lora-rank must be >= 1. Got {seq_len} and {lora_rank} instead.")
    p = PRECISIONS[precision]
    moments, moment_bytes = OPTIMIZERS[optimizer]
    n = shape.params
    if method == "full":
        trainable = float(n)
        weights, grads = n * p.weight, n * p.grad
        optimizer_bytes = n * (p.master + moments * (moment_bytes or p.state))
    else:
        trainable = float(lora_params(shape, lora_rank, lora_targets))
        if method == "lora":
            base = n * p.weight
        else:
            linear = shape.layers * shape.layer_linear_params
            dequantized = max(d_in * d_out for d_in, d_out in shape.linear_matrices()) * 2
            base = linear * NF4_BYTES + max(0, n - linear) * 2 + dequantized
        weights = base + trainable * 4  # adapters are trained in fp32
        grads = trainable * 4
        optimizer_bytes = trainable * moments * (moment_bytes or 4)
    activations = activation_bytes(shape, seq_len, p.activation, checkpointing, flash_attention)
    if method != "full":  # each adapter keeps its rank-r intermediate for the backward pass
        per_layer = len(shape.linear_matrices() if lora_targets == "all" else shape.linear_matrices()[:4])
        activations += shape.layers * per_layer * seq_len * lora_rank * p.activation
    return MemoryEstimate(method, precision, checkpointing, seq_len, weights, grads, optimizer_bytes,
                          trainable, activations, overhead)
