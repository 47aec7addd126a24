"""The plan of a recipe before spending anything (``datadiet plan RECIPE``,
``datadiet run RECIPE --dry-run``): shards, rows and tokens, each scorer's FLOPs, time and
memory on this cluster, and the budget it implies.

Only discovery I/O (``Pipeline.validate()``: shard list, schemas, Parquet metadata) and a
sample of about ``sample_rows`` rows (drawn from the first ``4 x`` as many of each sampled
shard) are read. Rows come from metadata where the format has them
(else a JSONL line count of the first MiB, scaled by size); tokens are the sample's mean
tokens per row (the run's own ingest counts them) times the rows. Each scorer is
calibrated on the sample (:mod:`~datadiet.planning.calibration`, cached per machine);
scorer-seconds are the estimated tokens over the calibrated tokens/s, as the manifest's
per-scorer seconds are summed over shards, and wall time divides them over the workers.

Example::

    plan = dry_run("data_samples/recipes/demo.yaml")
    print(plan.table())
    plan.tokens, plan.scorers[0].seconds
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from ..errors import DatadietError
from ..scorers.base import InMemoryFitContext
from .calibration import Calibration, calibrate, torch_threads
from .sample import CorpusSample, estimate_rows, read_sample

DEFAULT_SAMPLE_ROWS = 512
MIB = 2**20


@dataclass
class ScorerEstimate:
    name: str
    type: str
    flops_per_token: float
    flops: float
    docs_per_s: float | None
    tokens_per_s: float | None
    seconds: float | None  # scorer-seconds, summed over shards (as the manifest's)
    wall_seconds: float | None
    memory_bytes: int | None
    calibrated: str  # "measured", "cached" or why not


@dataclass
class DryRun:
    """The estimated plan of a recipe; :meth:`table` prints it, :meth:`to_dict` is its JSON."""

    recipe: str
    shards: int
    files: int
    rows: float
    rows_estimated_shards: int
    good_rows: float
    tokens: float
    sample_rows: int  # rows the estimates come from
    rows_read: int  # rows read to draw them
    scheduler: str
    workers: int
    scorers: list[ScorerEstimate]
    batch_memory_bytes: int
    budget: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def selection_flops(self) -> float:
        return sum(s.flops for s in self.scorers)

    @property
    def memory_per_worker(self) -> int:
        return self.batch_memory_bytes + sum(s.memory_bytes or 0 for s in self.scorers)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["selection_flops"] = self.selection_flops
        out["memory_per_worker_bytes"] = self.memory_per_worker
        return out

    def table(self) -> str:
        rows_how = ("metadata" if not self.rows_estimated_shards
                    else f"metadata; {self.rows_estimated_shards} shard(s) estimated")
        lines = [
            f"plan for {self.recipe} (estimates from {self.sample_rows:,} sampled rows, {self.rows_read:,} read; "
            "nothing scored or written)",
            f"input:     {self.files} file(s), {self.shards} shard(s), {self.rows:,.0f} rows ({rows_how}), "
            f"~{self.good_rows:,.0f} readable, ~{self.tokens:,.0f} tokens",
            f"cluster:   {self.scheduler}, {self.workers} worker(s)",
            "",
            f"{'scorer':<18} {'type':<18} {'FLOPs/token':>11} {'FLOPs':>9} {'docs/s':>9} {'scorer-s':>9} "
            f"{'wall-s':>8} {'memory':>9}  calibration",
        ]

        def num(v, fmt):
            return format(v, fmt) if v is not None else "n/a"

        for s in self.scorers:
            mem = f"{s.memory_bytes / MIB:,.0f} MiB" if s.memory_bytes is not None else "n/a"
            lines.append(f"{s.name:<18} {s.type:<18} {s.flops_per_token:>11.3g} {s.flops:>9.2e} "
                         f"{num(s.docs_per_s, ',.0f'):>9} {num(s.seconds, ',.2f'):>9} {num(s.wall_seconds, ',.2f'):>8} "
                         f"{mem:>9}  {s.calibrated}")
        known = [s.seconds for s in self.scorers if s.seconds is not None]
        lines.append(f"{'total':<18} {'':<18} {'':>11} {self.selection_flops:>9.2e} {'':>9} "
                     f"{sum(known):>9,.2f} {sum(known) / max(1, self.workers):>8,.2f}")
        lines += ["", f"memory:    ~{self.memory_per_worker / MIB:,.0f} MiB per worker (scorers + "
                      f"{self.batch_memory_bytes / MIB:,.0f} MiB for a batch of text)"]
        if self.budget:
            b = self.budget
            lines.append(f"budget:    {b['limit']:,} {b['unit']} = {b['share']:.1%} of the ~{b['available']:,.0f} "
                         f"input {b['unit']} (before filters)")
        lines += [f"note:      {n}" for n in self.notes]
        return "\n".join(lines)


def _workers(pipe) -> tuple[int, list[str]]:
    if pipe.scheduler == "synchronous":
        return 1, []
    if pipe.workers:
        return int(pipe.workers), []
    if str(pipe.scheduler).startswith("tcp://"):
        return 1, [f"workers of {pipe.scheduler} not counted (give --workers); wall time assumes 1"]
    return os.cpu_count() or 1, []


def _fit_on_sample(spec, pool: pa.Table, pipe, sample_rows: int) -> None:
    targets = {}
    for name, source in pipe.targets.items():
        shards = source.shards()
        targets[name] = read_sample(source, shards, source.check_columns(shards), sample_rows).view
    spec.scorer.fit(InMemoryFitContext(pool=pool, target=targets, seed=pipe.seed))


def _attach(view: pa.Table, spec, result: dict) -> pa.Table:
    from ..stages.score import column_name

    for key in spec.scorer.output_columns():
        if key in result:
            values = result[key]
            view = view.append_column(column_name(spec.name, key), values if isinstance(values, pa.Array)
                                      else pa.array(values))
    return view


def _calibrate_all(pipe, plan, sample: CorpusSample, sample_rows: int, single_thread: bool, use_cache: bool):
    """Calibration (or the reason there is none) per scorer, in dependency order; the columns
    of scorers that later ones read are attached to the sample."""
    needed = {plan.producers[c].name for spec in pipe.specs for c in spec.scorer.required_inputs()}
    view = sample.view.combine_chunks()
    out: dict[str, Calibration | str] = {}
    for round_specs in plan.rounds:
        results = {}
        for spec in round_specs:
            if view.num_rows < 2:
                out[spec.name] = "sample too small"
                continue
            try:
                if spec.scorer.requires_fit and not spec.scorer.is_fitted():
                    _fit_on_sample(spec, view, pipe, sample_rows)
                with torch_threads(1 if single_thread else None):
                    out[spec.name] = calibrate(spec.scorer, view, pipe.source.batch_size, use_cache)
                    if spec.name in needed:
                        results[spec.name] = spec.scorer.score_batch(view.to_batches()[0])
            except DatadietError:
                raise
            except Exception as exc:  # a scorer that cannot run on a sample still gets a FLOP estimate
                out[spec.name] = f"not calibrated: {type(exc).__name__}: {exc}"[:120]
        for spec in round_specs:
            if spec.name in results:
                view = _attach(view, spec, results[spec.name])
    return out


def dry_run(recipe, sample_rows: int = DEFAULT_SAMPLE_ROWS, use_cache: bool = True, **overrides) -> DryRun:
    """Plan ``recipe`` (a YAML path or a :class:`~datadiet.Pipeline`) without running it."""
    from ..pipeline.pipeline import Pipeline

    pipe = recipe if isinstance(recipe, Pipeline) else Pipeline.from_yaml(recipe, **overrides)
    plan = pipe.validate()
    sample = read_sample(pipe.source, plan.shards, plan.schema, sample_rows)
    rows, estimated = estimate_rows(plan.shards, sample)
    good_rows = rows * sample.good_fraction
    tokens = good_rows * sample.tokens_per_row
    workers, notes = _workers(pipe)
    calibrations = _calibrate_all(pipe, plan, sample, sample_rows, pipe.scheduler != "synchronous", use_cache)
    parallel = max(1, min(workers, len(plan.shards)))
    scorers = []
    for spec in pipe.specs:
        cal = calibrations.get(spec.name, "not calibrated")
        fpt = float(spec.scorer.flops_per_token())
        if isinstance(cal, Calibration):
            seconds = cal.seconds_for(tokens, parallel)
            scorers.append(ScorerEstimate(spec.name, spec.scorer.registry_name, fpt, fpt * tokens, cal.docs_per_s,
                                          cal.tokens_per_s, seconds, seconds / parallel, cal.memory_bytes,
                                          "cached" if cal.cached else f"measured on {cal.n_docs} docs"))
            if cal.first_call_seconds > max(0.1, 0.1 * seconds):
                notes.append(f"{spec.name}: {cal.first_call_seconds:.2f}s of its time is a first-call cost paid "
                             "once per worker")
        else:
            scorers.append(ScorerEstimate(spec.name, spec.scorer.registry_name, fpt, fpt * tokens, None, None,
                                          None, None, None, cal))
    batch_rows = min(pipe.source.batch_size, max(1, int(rows)))
    bytes_per_row = sample.text_bytes / sample.view.num_rows if sample.view.num_rows else 0
    batch_memory = int(3 * batch_rows * bytes_per_row)  # Arrow batch, scoring view and Python strings
    budget = None
    if pipe.budget is not None:
        limit = pipe.budget.limit(int(good_rows), int(tokens))
        available = good_rows if pipe.budget.unit == "documents" else tokens
        budget = {"unit": pipe.budget.unit, "limit": limit, "available": available,
                  "share": limit / available if available else 0.0}
        if limit >= available:
            notes.append("the budget is at least the whole input: every eligible row would be kept")
    files = len({s.path for s in plan.shards})
    name = str(recipe) if isinstance(recipe, (str, os.PathLike)) else "pipeline"
    return DryRun(name, len(plan.shards), files, rows, estimated, good_rows, tokens, sample.view.num_rows,
                  sample.rows_read, pipe.scheduler, workers, scorers, batch_memory, budget, notes)
