"""Select engines: one per ``Selector.kind``, chosen from :data:`ENGINES`.

An engine turns one select step into Dask tasks. It reads each shard's state from the
previous step (``prev``; None for the first step: every row alive) and writes each
shard's new state to ``ctx.run.select_state(ctx.fp, step, shard_key)``: a table
row-aligned with the shard's narrow table holding ``keep``, ``reason`` (None where kept),
the extra decision columns of ``ctx.extra`` and optionally ``order`` (uint64, higher
first) and ``repeat`` (int32 copies). An engine never gathers the corpus on the driver.

Adding a kind is one module that decorates its function with ``@engine("kind")`` and is
listed in :data:`ENGINE_MODULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..rundir import RunDir
from .shard_ref import ShardRef


@dataclass
class StepContext:
    """What every engine gets: where the run lives, its shards and how to run tasks."""

    executor: Any
    run: RunDir
    refs: list[ShardRef]
    labels: list[str]
    #: fingerprint of the whole select configuration (scopes the state files)
    fp: str
    seed: int
    #: extra decision columns of all steps (name -> Arrow type), e.g. duplicate_of
    extra: dict[str, pa.DataType]
    #: the budget resolver when the recipe has a budget (see stages/budget.py)
    budget: Any = None
    plan: Any = None
    #: what engines report for the manifest (rows seen, limits, constraints that bound)
    info: dict = field(default_factory=dict)


EngineFn = Callable[[StepContext, Any, str, "str | None"], None]
ENGINES: dict[str, EngineFn] = {}


def engine(kind: str):
    """Registers the engine for selectors of ``kind``."""

    def decorate(fn: EngineFn) -> EngineFn:
        ENGINES[kind] = fn
        return fn

    return decorate


#: modules whose import registers an engine
ENGINE_MODULES = ("select", "rank", "components", "curriculum")


def engines() -> dict[str, EngineFn]:
    """The engine table, every built-in engine module imported."""
    import importlib

    for name in ENGINE_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return ENGINES


def run_step(ctx: StepContext, selector, step: str, prev: str | None) -> None:
    try:
        fn = engines()[selector.kind]
    except KeyError:
        from ..errors import ConfigError

        raise ConfigError(f"{type(selector).__name__} has kind {selector.kind!r}; engines exist for "
                          f"{', '.join(sorted(ENGINES))}") from None
    fn(ctx, selector, step, prev)

