"""Known GPUs: memory and dense bf16 (or fp16, where there is no bf16) tensor-core peak.

Peaks are the vendors' dense figures (no structured sparsity); memory is the nominal size.

Example::

    gpu = resolve_gpu("A100-80GB")                 # GPU(name='A100-80GB', memory_bytes=..., peak_flops=3.12e14)
    gpu = resolve_gpu("mycard", memory="48GB", peak_flops=2e14)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

GIB = 2**30


@dataclass(frozen=True)
class GPU:
    """One accelerator: its name, memory in bytes, dense 16-bit peak FLOP/s and whether
    it has bfloat16 (V100 and T4 have fp16 only)."""

    name: str
    memory_bytes: int
    peak_flops: float | None
    bf16: bool = True


# name: (memory GiB, dense 16-bit tensor TFLOP/s, bf16 support)
KNOWN_GPUS: dict[str, tuple[float, float, bool]] = {
    "H200": (141, 989, True),
    "H100-SXM": (80, 989, True),
    "H100-PCIE": (80, 756, True),
    "A100-80GB": (80, 312, True),
    "A100-40GB": (40, 312, True),
    "L40S": (48, 362, True),
    "A6000": (48, 155, True),
    "L4": (24, 121, True),
    "A10G": (24, 70, True),
    "RTX-4090": (24, 165, True),
    "RTX-3090": (24, 71, True),
    "V100-32GB": (32, 125, False),
    "V100-16GB": (16, 125, False),
    "T4": (16, 65, False),
}
ALIASES = {"H100": "H100-SXM", "A100": "A100-80GB", "A100-80": "A100-80GB", "A100-40": "A100-40GB",
           "4090": "RTX-4090", "3090": "RTX-3090", "V100": "V100-32GB", "A10": "A10G"}


def _canonical(name: str) -> str:
    key = name.strip().upper().replace("_", "-").replace(" ", "-")
    key = ALIASES.get(key, key)
    for known in KNOWN_GPUS:
        if known.upper() == key:
            return known
    return ""


def known_gpu_names() -> list[str]:
    return list(KNOWN_GPUS)


def resolve_gpu(name: str | None, memory: str | int | float | None = None,
                peak_flops: float | None = None) -> GPU | None:
    """The GPU called ``name`` from the table, with ``memory`` / ``peak_flops`` overriding
    its figures; a name the table lacks needs both (ConfigError naming the flags). Without a
    name, ``memory`` alone describes a GPU whose peak is unknown (enough for memory plans)."""
    from ..models.batching import parse_memory

    if name is None and memory is None:
        return None
    memory_bytes = parse_memory(memory, "--gpu-memory") if memory is not None else None
    if peak_flops is not None and (isinstance(peak_flops, bool) or peak_flops <= 0):
        raise ConfigError(f"--gpu-peak-flops must be > 0. Got {peak_flops!r} instead.")
    known = _canonical(name) if name else ""
    if known:
        mem_gib, tflops, bf16 = KNOWN_GPUS[known]
        return GPU(known, memory_bytes or int(mem_gib * GIB), peak_flops or tflops * 1e12, bf16)
    if name is None:
        return GPU("custom", memory_bytes, float(peak_flops) if peak_flops else None)
    if memory_bytes is None or peak_flops is None:
        raise ConfigError(
            f"--gpu: unknown GPU {name!r}; give its --gpu-memory (e.g. 48GB) and --gpu-peak-flops (dense bf16 "
            f"FLOP/s, e.g. 3e14), or use one of: {', '.join(KNOWN_GPUS)}")
    return GPU(name, memory_bytes, float(peak_flops))
