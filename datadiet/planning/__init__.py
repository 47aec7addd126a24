"""Planning before and while spending: recipe dry runs, compute-optimal tokens, training
memory, proxy validity and stopping rules.

Example::

    from datadiet.planning import dry_run, plan_compute, training_memory, shape_for_params
    print(dry_run("data_samples/recipes/demo.yaml").table())
    plan_compute(params=70e9).training_tokens          # 1.4e12
"""

from .compute import ComputePlan, plan_compute
from .dry_run import DryRun, dry_run
from .gpus import GPU, KNOWN_GPUS, resolve_gpu
from .memory import MemoryEstimate, lora_params, training_memory
from .proxy_validity import ProxyValidity, validate_proxy
from .shapes import ModelShape, shape_for_params, shape_from_config
from .stop_rule import StopRule, fit_stop_rule, read_curve

__all__ = [
    "ComputePlan", "plan_compute", "DryRun", "dry_run", "GPU", "KNOWN_GPUS", "resolve_gpu", "MemoryEstimate",
    "lora_params", "training_memory", "ProxyValidity", "validate_proxy", "ModelShape", "shape_for_params",
    "shape_from_config", "StopRule", "fit_stop_rule", "read_curve",
]
