"""``datadiet eval``: A/B evaluation of selections against random subsets of the same pool.

Example::

    from datadiet.evaluate import evaluate
    result = evaluate(["out/dsir"], ["data_samples/target/prose.jsonl"], seeds=3, pool=True)
    print(result.table)          # held-out loss and bits per byte, mean ± std over seeds
"""

from .harness import TRAIN_DEFAULTS, EvalResult, evaluate
from .targets import heldout_mask, split_target

__all__ = ["evaluate", "EvalResult", "TRAIN_DEFAULTS", "heldout_mask", "split_target"]
