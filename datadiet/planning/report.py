"""``datadiet plan --compute``: the compute plan and the memory table together, as text and
as the JSON a recipe's ``budget: {plan: plan.json}`` reads.

Example::

    report = compute_report(params=1e9, gpu=resolve_gpu("RTX-4090"))
    print(report.text())
    report.to_dict()["selection"]["tokens"]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compute import ComputePlan, plan_compute
from .gpus import GIB, GPU
from .memory import MemoryEstimate, training_memory
from .shapes import ModelShape

DEFAULT_METHODS = ("full", "lora", "qlora")
DEFAULT_PRECISIONS = ("fp32", "mixed", "bf16")


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _gib(x: float) -> str:
    return f"{x / GIB:.1f}"


@dataclass
class ComputeReport:
    """A :class:`ComputePlan`, the model shape, the GPU and the memory estimates."""

    shape: ModelShape
    plan: ComputePlan
    gpu: GPU | None
    utilization: float
    memory: list[MemoryEstimate]
    settings: dict
    corpus: dict = field(default_factory=dict)

    @property
    def gpu_hours(self) -> float | None:
        if self.gpu is None or not self.gpu.peak_flops:
            return None
        return self.plan.flops / (self.gpu.peak_flops * self.utilization) / 3600

    def to_dict(self) -> dict:
        gpu_memory = self.gpu.memory_bytes if self.gpu else None
        return {
            "model": {"params": self.shape.params, "shape": self.shape.describe(), "assumed_shape": self.shape.assumed},
            "compute": self.plan.to_dict(),
            "selection": {"tokens": self.plan.selection_tokens, "fraction": self.plan.selection_fraction,
                          "epochs": self.plan.epochs},
            "corpus": self.corpus or None,
            "gpu": None if self.gpu is None else {"name": self.gpu.name, "memory_bytes": self.gpu.memory_bytes,
                                                  "peak_flops": self.gpu.peak_flops, "utilization": self.utilization,
                                                  "training_gpu_hours": self.gpu_hours},
            "memory_settings": self.settings,
            "memory": [m.to_dict(gpu_memory) for m in self.memory],
        }

    def text(self) -> str:
        p = self.plan
        lines = [
            f"model:       {_si(self.shape.params)} parameters ({self.shape.describe()})",
            f"compute:     {p.flops:.3g} FLOPs ({p.flops_source})",
            f"tokens:      {_si(p.training_tokens)} training tokens (compute-optimal for this model: "
            f"{_si(p.optimal_tokens_for_model)} at {p.tokens_per_param:g} tokens/param, C = {p.flops_per_param_token:g}ND)",
        ]
        if p.optimal_params_for_budget is not None:
            lines.append(f"             compute-optimal for this budget: {_si(p.optimal_params_for_budget)} params on "
                         f"{_si(p.optimal_tokens_for_budget)} tokens")
        lines.append(f"repetition:  up to {p.max_epochs:g} epochs are nearly as good as fresh data (Muennighoff et al. "
                     f"2023): select >= {_si(p.training_tokens / p.max_epochs)} unique tokens")
        if p.corpus_tokens is not None:
            where = f" from {self.corpus['from']}" if self.corpus.get("from") not in (None, "given") else ""
            lines.append(f"corpus:      {_si(p.corpus_tokens)} tokens{where}: keep {p.selection_fraction:.1%} of it "
                         f"and train {p.epochs:.3g} epochs on the selection")
        lines.append(f"selection:   {p.selection_tokens:,} tokens (the budget a recipe's `budget: {{plan: ...}}` takes)")
        if self.gpu is not None:
            peak = f", {self.gpu.peak_flops / 1e12:g} TFLOP/s" if self.gpu.peak_flops else ""
            hours = (f"; training takes ~{self.gpu_hours:,.4g} GPU-hours at {self.utilization:.0%} utilisation"
                     if self.gpu_hours is not None else "")
            lines.append(f"gpu:         {self.gpu.name}: {_gib(self.gpu.memory_bytes)} GiB{peak}{hours}")
        lines += [f"note:        {n}" for n in p.notes]
        lines += ["", self.memory_table()]
        if self.shape.assumed:
            lines.append("(activations use the typical shape above; weights, gradients and optimizer use the "
                         "parameter count)")
        return "\n".join(lines)

    def memory_table(self) -> str:
        s = self.settings
        gpu = self.gpu
        head = (f"training memory (GiB) per GPU: sequence {s['seq_len']}, {s['optimizer']}, {s['attention']} attention, "
                f"LoRA rank {s['lora_rank']} on {s['lora_targets']} linear layers"
                + (f"; against {gpu.name} {_gib(gpu.memory_bytes)} GiB" if gpu else ""))
        cols = f"{'method':<7} {'precision':<9} {'ckpt':<4} {'trainable':>9} {'weights':>8} {'grads':>7} " \
               f"{'optim':>7} {'act/seq':>8} {'total@1':>8}"
        lines = [head, cols + (f" {'max micro-batch':>15}" if gpu else "")]
        for m in self.memory:
            row = (f"{m.method:<7} {m.precision:<9} {'on' if m.checkpointing else 'off':<4} {_si(m.trainable_params):>9} "
                   f"{_gib(m.weights):>8} {_gib(m.grads):>7} {_gib(m.optimizer):>7} "
                   f"{_gib(m.activations_per_sequence):>8} {_gib(m.total(1)):>8}")
            if gpu:
                b = m.max_micro_batch(gpu.memory_bytes)
                row += f" {b if b else 'does not fit':>15}"
            lines.append(row)
        return "\n".join(lines)


def compute_report(shape: ModelShape, gpu: GPU | None = None, flops: float | None = None, flops_source: str = "given",
                   corpus: dict | None = None, utilization: float = 0.4, tokens_per_param: float = 20.0,
                   flops_per_param_token: float = 6.0, max_epochs: float = 4.0, seq_len: int = 2048,
                   lora_rank: int = 16, lora_targets: str = "all", optimizer: str = "adamw", attention: str = "flash",
                   methods=DEFAULT_METHODS, precisions=DEFAULT_PRECISIONS, overhead: float = GIB) -> ComputeReport:
    corpus = dict(corpus or {})
    plan = plan_compute(shape.params, flops=flops, corpus_tokens=corpus.get("tokens"),
                        tokens_per_param=tokens_per_param, flops_per_param_token=flops_per_param_token,
                        max_epochs=max_epochs, flops_source=flops_source)
    memory = [training_memory(shape, method, precision, seq_len, ckpt, lora_rank, lora_targets, optimizer,
                              attention == "flash", overhead)
              for method in methods for precision in precisions for ckpt in (False, True)]
    settings = {"seq_len": seq_len, "optimizer": optimizer, "attention": attention, "lora_rank": lora_rank,
                "lora_targets": lora_targets, "overhead_bytes": overhead}
    return ComputeReport(shape, plan, gpu, utilization, memory, settings, corpus)
