"""Compute-optimal training tokens and the selection they imply.

- Training compute ``C = k_c N D`` FLOPs for ``N`` parameters and ``D`` tokens (``k_c = 6``:
  forward 2ND + backward 4ND, Kaplan et al. 2020).
- Compute-optimal data: about ``k_t = 20`` tokens per parameter (Hoffmann et al. 2022,
  "Chinchilla"), so a 70B model wants 1.4T tokens; for a budget ``C`` the optimal model is
  ``N* = sqrt(C / (k_c k_t))`` with ``D* = k_t N*``.
- Repetition: up to about 4 epochs of repeated data are nearly as good as fresh data
  (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"), so ``D`` training
  tokens need at least ``D / 4`` unique ones; the selection keeps that share of the corpus.

Example::

    plan = plan_compute(params=7e9, flops=1e22, corpus_tokens=5e11)
    plan.training_tokens, plan.selection_tokens, plan.selection_fraction
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import BudgetError, ConfigError

TOKENS_PER_PARAM = 20.0
FLOPS_PER_PARAM_TOKEN = 6.0
MAX_USEFUL_EPOCHS = 4.0
DEFAULT_UTILIZATION = 0.4


@dataclass
class ComputePlan:
    """What :func:`plan_compute` found; ``to_dict()`` is its JSON form."""

    params: float
    tokens_per_param: float
    flops_per_param_token: float
    flops: float | None
    flops_source: str
    training_tokens: float
    optimal_tokens_for_model: float
    optimal_params_for_budget: float | None
    optimal_tokens_for_budget: float | None
    max_epochs: float
    epochs: float
    selection_tokens: int
    corpus_tokens: float | None
    selection_fraction: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def budget_flops(flops: float | None = None, gpu_hours: float | None = None, peak_flops: float | None = None,
                 utilization: float = DEFAULT_UTILIZATION) -> tuple[float | None, str]:
    """(FLOPs, how they were obtained) from a FLOP budget or GPU-hours x peak x utilisation."""
    if flops is not None and gpu_hours is not None:
        raise BudgetError("give a FLOP budget (--flops) or GPU-hours (--gpu-hours), not both")
    if not 0 < utilization <= 1:
        raise ConfigError(f"--utilization must be in (0, 1]. Got {utilization!r} instead.")
    if flops is not None:
        if flops <= 0:
            raise BudgetError(f"--flops must be > 0. Got {flops!r} instead.")
        return float(flops), "given"
    if gpu_hours is None:
        return None, "none"
    if gpu_hours <= 0:
        raise BudgetError(f"--gpu-hours must be > 0. Got {gpu_hours!r} instead.")
    if peak_flops is None:
        raise ConfigError("--gpu-hours needs a GPU: --gpu NAME (a known type) or --gpu-peak-flops")
    return gpu_hours * 3600 * peak_flops * utilization, (
        f"{gpu_hours:g} GPU-hours x {peak_flops / 1e12:g} TFLOP/s peak x {utilization:g} utilisation")


def plan_compute(params: float | None, flops: float | None = None, corpus_tokens: float | None = None,
                 tokens_per_param: float = TOKENS_PER_PARAM, flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
                 max_epochs: float = MAX_USEFUL_EPOCHS, flops_source: str = "given") -> ComputePlan:
    """Training tokens for ``params`` (from the FLOP budget when given, else compute-optimal),
    and the unique tokens (and corpus fraction) to select, repeating up to ``max_epochs``."""
    if params is None:
        raise BudgetError("a compute plan needs the model size: --params (e.g. 7B) or --model-config "
                          "(a config.json); a FLOP budget alone does not say how many tokens it buys")
    for name, value in (("--tokens-per-param", tokens_per_param), ("--flops-per-param-token", flops_per_param_token),
                        ("--max-epochs", max_epochs)):
        if value <= 0:
            raise ConfigError(f"{name} must be > 0. Got {value!r} instead.")
    if corpus_tokens is not None and corpus_tokens <= 0:
        raise ConfigError(f"the corpus token count must be > 0. Got {corpus_tokens!r} instead.")
    notes: list[str] = []
    optimal_tokens = tokens_per_param * params
    if flops is not None:
        training_tokens = flops / (flops_per_param_token * params)
        optimal_params = math.sqrt(flops / (flops_per_param_token * tokens_per_param))
        optimal_budget_tokens = tokens_per_param * optimal_params
        ratio = training_tokens / optimal_tokens
        if ratio < 0.5 or ratio > 2:
            notes.append(f"the budget trains this model on {ratio:.2g}x its compute-optimal tokens; a "
                         f"{optimal_params / 1e9:.3g}B model is compute-optimal for it")
    else:
        training_tokens = optimal_tokens
        optimal_params = optimal_budget_tokens = None
        flops = flops_per_param_token * params * training_tokens
        flops_source = f"compute-optimal: {flops_per_param_token:g} x N x {tokens_per_param:g} N"
    unique_needed = training_tokens / max_epochs
    fraction = None
    epochs = max_epochs
    if corpus_tokens is not None:
        if unique_needed >= corpus_tokens:
            fraction = 1.0
            epochs = training_tokens / corpus_tokens
            if epochs > max_epochs:
                notes.append(f"the corpus is too small: {epochs:.3g} epochs of it are needed, past the ~"
                             f"{max_epochs:g} where repetition is nearly as good as fresh data")
        else:
            fraction = unique_needed / corpus_tokens
    selection = int(math.ceil(min(unique_needed, corpus_tokens) if corpus_tokens else unique_needed))
    return ComputePlan(
        params=float(params), tokens_per_param=tokens_per_param, flops_per_param_token=flops_per_param_token,
        flops=float(flops), flops_source=flops_source, training_tokens=training_tokens,
        optimal_tokens_for_model=optimal_tokens, optimal_params_for_budget=optimal_params,
        optimal_tokens_for_budget=optimal_budget_tokens, max_epochs=max_epochs, epochs=epochs,
        selection_tokens=selection, corpus_tokens=corpus_tokens, selection_fraction=fraction, notes=notes,
    )
