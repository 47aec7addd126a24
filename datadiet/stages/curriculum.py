"""The orderer engine: curricula order the selected rows (easy to hard, or hard to easy)
and cut them into phases by a pacing function.

The order is computed by the ranker engine with no budget (every row kept), so it is the
same exact, distributed, sharding-independent global order. Phases are contiguous ranges
of that order by cumulative tokens; ``curriculum/phase=k/`` holds the rows that join the
training pool at phase ``k`` and ``curriculum/schedule.json`` says when each phase starts
and how to weight the phases of the pool.
"""

from __future__ import annotations

from dataclasses import replace

from .engine import StepContext, engine
from .rank import run_ranker


@engine("orderer")
def run_orderer(ctx: StepContext, sel, step: str, prev: str | None) -> None:
    info: dict = {}
    run_ranker(replace(ctx, budget=None, info=info), sel, step, prev)
    ctx.info["ordered"] = "curriculum"
    ctx.info["kept_bytes"] = info["kept_bytes"]
    ctx.info["kept_tokens"] = info["kept_tokens"]
    if callable(getattr(sel, "schedule", None)):
        schedule = sel.schedule(info["kept_tokens"])
        ctx.info["curriculum"] = schedule
        ctx.info["phase_tokens"] = [p["token_start"] for p in schedule["phases"]]
