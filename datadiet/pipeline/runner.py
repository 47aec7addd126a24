"""Runs a planned pipeline: fit → score → select → write → manifest."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..fingerprint import component_fingerprint, fingerprint
from ..rundir import RunDir
from ..select.base import GroupSelector, Ranker, RowFilter
from ..stages import select as sel_stage
from ..stages.score import run_score_task
from ..stages.shard_ref import ShardRef
from ..stages.write import (
    FileTask,
    SummaryTask,
    plan_files,
    shard_summary,
    stage_quarantine,
    write_file,
)
from . import ownership
from .fit import PipelineFitContext
from .manifest import build_manifest


def execute(pipe, plan, executor, plan_seconds: float):
    run = RunDir(pipe.output)
    run.root.mkdir(parents=True, exist_ok=True)
    lock = ownership.RunLock(run)
    lock.acquire()
    try:
        ownership.claim(run, run_identity(pipe, plan), getattr(pipe, "overwrite", False))
        ownership.clean_temp_files(run)
        return _execute(pipe, plan, executor, plan_seconds, run)
    finally:
        lock.release()


def run_identity(pipe, plan) -> str:
    """Same recipe (bar execution settings and output path) on the same input = same run."""
    config = pipe.to_config()
    config.pop("execution", None)
    config.get("output", {}).pop("path", None)
    return fingerprint("run", config, plan.ingest_fp, [s.key for s in plan.shards])


def _execute(pipe, plan, executor, plan_seconds: float, run: RunDir):
    run_id = run_identity(pipe, plan)
    timings = {"plan": plan_seconds, "fit": 0.0, "score": 0.0}
    refs = []
    shard_stats: list[dict] = []
    for r, specs in enumerate(plan.rounds):
        t0 = time.perf_counter()
        for spec in specs:
            fit_fp = _fit(pipe, plan, run, executor, spec, refs) if spec.scorer.requires_fit else ""
            pipe.assign_fingerprint(spec, plan, fit_fp)
        timings["fit"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        tasks = pipe.score_tasks(plan, run, specs)
        resources: dict = {}
        for spec in specs:
            for k, v in spec.scorer.resources().items():
                resources[k] = max(resources.get(k, 0), v)
        results = executor.map(run_score_task, tasks, desc=f"score{'' if r == 0 else f' (round {r + 1})'}",
                               labels=[t.shard.label for t in tasks], resources=resources or None)
        shard_stats = results if r == 0 else [_merge_stats(a, b) for a, b in zip(shard_stats, results)]
        timings["score"] += time.perf_counter() - t0
        refs = _refs(pipe, plan, run)
    if not plan.rounds:
        refs = _refs(pipe, plan, run)

    t0 = time.perf_counter()
    select_fp, last_step, extra, budget_info = _select(pipe, plan, run, executor, refs, shard_stats)
    timings["select"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    summaries = executor.map(shard_summary, [SummaryTask(ref, select_fp, last_step) for ref in refs],
                             desc="count")
    outputs, diagnostics = _write(pipe, plan, run, run_id, executor, refs, select_fp, last_step, extra, summaries)
    timings["write"] = time.perf_counter() - t0

    manifest = build_manifest(pipe, plan, run, executor, shard_stats, summaries, budget_info, outputs,
                              diagnostics, timings)
    run.write_json(manifest, run.manifest)
    from .report import write_report

    write_report(run, manifest)
    ownership.finish(run)
    from .pipeline import RunResult

    return RunResult(run.root, manifest)


def _merge_stats(first: dict, later: dict) -> dict:
    merged = dict(first)
    merged["scorers"] = {**first.get("scorers", {}), **later.get("scorers", {})}
    merged["seconds"] = first.get("seconds", 0.0) + later.get("seconds", 0.0)
    return merged


def _refs(pipe, plan, run):
    columns = {col: (spec.name, spec.fingerprint) for col, spec in plan.producers.items() if spec.fingerprint}
    return [ShardRef(i, shard.key, str(run.root), plan.ingest_fp, columns)
            for i, shard in enumerate(plan.shards)]


def _fit(pipe, plan, run, executor, spec, refs) -> str:
    """Fits a scorer once; its state is kept under fits/ and reused by fingerprint."""
    deps = sorted((c, plan.producers[c].fingerprint) for c in spec.scorer.required_inputs())
    target_fp = {name: t.to_config() for name, t in sorted(pipe.targets.items())}
    fit_fp = component_fingerprint(spec.scorer, plan.ingest_fp, [s.key for s in plan.shards], pipe.seed,
                                   target_fp, deps, "fit")
    state_dir = run.fit_state(spec.name, fit_fp)
    if (state_dir / "state.json").exists():
        spec.scorer.load_state(state_dir)
    else:
        if not refs:
            refs = _refs(pipe, plan, run)
        light = pipe.source.__class__(**pipe.source.get_params())
        context = PipelineFitContext(executor, refs, plan.shards, light, plan.schema, pipe.targets, pipe.seed)
        spec.scorer.fit(context)
        spec.scorer.save_state(state_dir)
    return fit_fp


def _select(pipe, plan, run, executor, refs, shard_stats):
    """Runs the select steps; returns (fingerprint, last step name, extra columns, budget info)."""
    steps = pipe.steps
    total_rows = sum(s["rows"] for s in shard_stats)
    total_tokens = sum(s["tokens"] for s in shard_stats)
    budget_info = None
    if pipe.budget is not None:
        limit = pipe.budget.limit(total_rows, total_tokens)
        budget_info = {"unit": pipe.budget.unit, "limit": limit, "requested": pipe.budget.to_config()}
    if not steps:
        return "", None, {}, budget_info
    fp = fingerprint("select", [s.to_config() for s in steps], pipe.budget.to_config() if pipe.budget else None,
                     pipe.seed, [r.columns for r in refs], plan.ingest_fp, [r.key for r in refs])
    extra: dict = {}
    for s in steps:
        if isinstance(s, GroupSelector):
            extra.update(s.extra_columns)
    labels = [s.label for s in plan.shards]
    prev = None
    i = 0
    while i < len(steps):
        step = f"step-{i:02d}"
        s = steps[i]
        if isinstance(s, RowFilter):
            j = i
            while j < len(steps) and isinstance(steps[j], RowFilter):
                j += 1
            tasks = [sel_stage.StepTask(ref, fp, prev, step, steps[i:j], pipe.seed, extra) for ref in refs]
            executor.map(sel_stage.run_filters, tasks, desc="filter", labels=labels)
            prev, i = step, j
            continue
        if isinstance(s, GroupSelector):
            sizes = sel_stage.is_quota_selector(s)
            n_buckets = _buckets(s, plan, total_rows, len(refs))
            opts = {"buckets": n_buckets, "sizes": sizes}
            tasks = [sel_stage.StepTask(ref, fp, prev, step, [s], pipe.seed, extra, opts) for ref in refs]
            parts = executor.map(sel_stage.group_partition, tasks, desc=f"{s.registry_name} partition", labels=labels)
            quotas = None
            if sizes:
                rows, tokens = {}, {}
                for p in parts:
                    for g, c in p["rows"].items():
                        rows[g] = rows.get(g, 0) + c
                    for g, c in p["tokens"].items():
                        tokens[g] = tokens.get(g, 0) + c
                quotas = s.quotas(rows, tokens, pipe.budget)
                if budget_info is not None:
                    budget_info["available"] = sum(tokens.values()) if pipe.budget.unit == "tokens" else sum(rows.values())
            executor.map(sel_stage.group_decide,
                         [sel_stage.BucketTask(str(run.root), fp, step, b, s, quotas) for b in range(n_buckets)],
                         desc=f"{s.registry_name} decide")
            executor.map(sel_stage.group_apply, tasks, desc=f"{s.registry_name} apply", labels=labels)
            prev, i = step, i + 1
            continue
        if isinstance(s, Ranker):
            opts = {"unit": pipe.budget.unit}
            tasks = [sel_stage.StepTask(ref, fp, prev, step, [s], pipe.seed, extra, opts) for ref in refs]
            counts = executor.map(sel_stage.rank_keys, tasks, desc=f"{s.registry_name} keys", labels=labels)
            rows = sum(c["rows"] for c in counts)
            available = sum(c["weight"] for c in counts)
            key_paths = [str(run.rank_keys(fp, step, r.key)) for r in refs]
            boundary = sel_stage.find_boundary(executor, key_paths, rows, budget_info["limit"])
            budget_info["available"] = available
            opts = {**opts, "boundary": boundary}
            tasks = [sel_stage.StepTask(ref, fp, prev, step, [s], pipe.seed, extra, opts) for ref in refs]
            executor.map(sel_stage.apply_boundary, tasks, desc=f"{s.registry_name} apply", labels=labels)
            prev, i = step, i + 1
            continue
    return fp, prev, extra, budget_info


BUCKET_BYTES = 32 << 20


def _row_bytes(dtype) -> int:
    """Rough in-memory bytes of one value, to size group buckets."""
    import pyarrow as pa

    if pa.types.is_fixed_size_list(dtype):
        return dtype.list_size * max(1, dtype.value_type.bit_width // 8)
    if pa.types.is_string(dtype) or pa.types.is_binary(dtype) or pa.types.is_list(dtype):
        return 48
    return max(1, getattr(dtype, "bit_width", 64) // 8)


def _buckets(selector, plan, total_rows: int, n_shards: int) -> int:
    """Hash buckets for a group step: about BUCKET_BYTES of spilled rows each."""
    columns = ["doc_id", "n_tokens", "source", selector.group_by(), *selector.columns()]
    per_row = 16 + sum(_row_bytes(plan.columns[c]) for c in dict.fromkeys(columns))
    return max(1, min(max(n_shards, 1) * 4, -(-total_rows * per_row // BUCKET_BYTES)))


def _write(pipe, plan, run, run_id, executor, refs, select_fp, last_step, extra, summaries):
    stats_specs = [s for s in pipe.specs if _has_selection_stats(s.scorer)]
    write_fp = fingerprint("write", select_fp, plan.ingest_fp, [r.key for r in refs], pipe.target_file_bytes,
                           pipe.include_scores, plan.schema.to_string(show_schema_metadata=False),
                           [s.fingerprint for s in pipe.specs])
    light = pipe.source.__class__(**pipe.source.get_params())
    file_tasks = []
    for kind in ("data", "rejected"):
        for k, (lo, hi, idx, starts) in enumerate(plan_files(summaries, kind, pipe.target_file_bytes)):
            staged = run.staged_output(write_fp, kind, k)
            file_tasks.append(FileTask(
                str(run.root), kind, k, lo, hi, [refs[i] for i in idx], [plan.shards[i] for i in idx], starts, light,
                plan.schema, select_fp, last_step, extra, str(staged), pipe.specs, pipe.include_scores,
                stats_specs if kind == "data" else []))
    results = executor.map(write_file, file_tasks, desc="write")
    staged = {"data": [], "rejected": []}
    diagnostics: dict = {}
    totals: dict = {}
    for task, res in zip(file_tasks, results):
        staged[task.kind].append(Path(task.staged))
        for name, d in res.get("stats", {}).items():
            acc = totals.setdefault(name, {})
            for k, v in d.items():
                acc[k] = acc[k] + np.asarray(v) if k in acc else np.asarray(v)
    for spec in stats_specs:
        if spec.name in totals:
            diagnostics[spec.name] = spec.scorer.summarize_selection(totals[spec.name])
    staged["quarantine"] = stage_quarantine(run, plan.ingest_fp, [s.key for s in plan.shards],
                                            run.staged_output(write_fp, "quarantine", 0))
    outputs = ownership.publish_files(run, run_id, staged, [])
    return outputs, diagnostics


def _has_selection_stats(scorer) -> bool:
    from ..scorers.base import Scorer

    return type(scorer).selection_stats is not Scorer.selection_stats

