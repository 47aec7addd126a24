"""Runs a planned pipeline: fit → score → select → write → manifest."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..fingerprint import component_fingerprint, fingerprint
from ..rundir import RunDir
from ..select.base import RowFilter
from ..stages import text_cache
from ..stages.engine import StepContext, engines, run_step
from ..stages.score import run_score_task
from ..stages.shard_ref import ShardRef
from ..stages.shard_summary import SummaryTask, shard_summary
from ..stages.text_cache import preferred_workers, score_placement
from ..stages.unique_ids import start_unique_ids_check
from ..stages.write import FileTask, plain_columns, plan_files, stage_quarantine, write_file
from ..stages.write_ordered import (
    GatherTask,
    ScatterTask,
    gather_file,
    ordered_schema,
    phase_folder,
    scatter_shard,
)
from . import ownership
from .fit import PipelineFitContext
from .manifest import build_manifest


def execute(pipe, plan, executor, plan_seconds: float):
    run = RunDir(pipe.run_root)
    run.root.mkdir(parents=True, exist_ok=True)
    lock = ownership.RunLock(run)
    lock.acquire()
    try:
        run_id = run_identity(pipe, plan)
        store = None
        if pipe.remote_output:  # the store is checked and marked before any compute
            from .object_store import StoreOutput, claim_store

            store = StoreOutput(pipe.output, pipe.output_storage_options)
            claim_store(store, run_id, pipe.overwrite)
        # a URL output's work directory is datadiet's own: the store decides about overwriting
        ownership.claim(run, run_id, pipe.overwrite or store is not None)
        ownership.clean_temp_files(run)
        try:
            result = _execute(pipe, plan, executor, plan_seconds, run)
        finally:
            executor.broadcast(text_cache.forget, str(run.root))
        if store is None:
            return result
        from .object_store import publish_to_store
        from .pipeline import RunResult

        manifest = publish_to_store(store, run, run_id, result.manifest, executor, sidecar_dirs(plan, run))
        return RunResult(store.url, manifest, store.storage_options)
    finally:
        lock.release()


def sidecar_dirs(plan, run: RunDir) -> list[Path]:
    """The score sidecar folders of this run: the ingest tables and one per scorer."""
    folders = {run.narrow_table(plan.ingest_fp, "x").parent}
    folders |= {run.sidecar(spec.name, spec.fingerprint, "x").parent
                for spec in plan.producers.values() if spec.fingerprint}
    return sorted(folders)


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
    cheap, filters = cascade_split(pipe, plan)
    passes = [([s for s in specs if s.name in cheap], None) for specs in plan.rounds]
    if filters:
        passes += [([s for s in specs if s.name not in cheap], "cascade") for specs in plan.rounds]
    alive, cascade_info = None, {}
    # nothing runs between the score pass and the write of a recipe without select steps
    keep_text = not pipe.steps and text_cache.fits(plan.shards, executor.n_workers)
    # the first pass always runs: it ingests every shard (narrow tables), scorers or not
    for r, (specs, stage) in enumerate(p for i, p in enumerate(passes) if p[0] or i == 0):
        if stage == "cascade" and alive is None:
            alive, cascade_info = _cascade_filters(pipe, plan, run, executor, filters, cheap, refs)
        t0 = time.perf_counter()
        for spec in specs:
            fit_fp = _fit(pipe, plan, run, executor, spec, refs) if spec.scorer.requires_fit else ""
            pipe.assign_fingerprint(spec, plan, fit_fp)
            if stage == "cascade":  # scored on the cheap stage's survivors only
                spec.fingerprint = fingerprint(spec.fingerprint, "cascade", alive)
        timings["fit"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        tasks = pipe.score_tasks(plan, run, specs)
        for task in tasks:
            task.alive = alive if stage == "cascade" else None
            task.summarize = r == 0 and not pipe.steps
            task.keep_text = r == 0 and keep_text
        resources: dict = {}
        for spec in specs:
            for k, v in spec.scorer.resources().items():
                resources[k] = max(resources.get(k, 0), v)
        place = score_placement(plan.shards, executor.worker_addresses()) if r == 0 and keep_text else None
        results = executor.map(run_score_task, tasks, desc=f"score{'' if r == 0 else f' (pass {r + 1})'}",
                               labels=[t.shard.label for t in tasks], resources=resources or None, workers=place)
        shard_stats = results if r == 0 else [_merge_stats(a, b) for a, b in zip(shard_stats, results)]
        timings["score"] += time.perf_counter() - t0
        refs = _refs(pipe, plan, run)
    if not refs:
        refs = _refs(pipe, plan, run)
    ids_unique = _no_check
    if pipe.source.id_column and shard_stats:  # duplicate ids are an error (named), never merged
        ids_unique = start_unique_ids_check(executor, run, refs, plan.shards, sum(st["rows"] for st in shard_stats),
                                            pipe.source.id_column)

    t0 = time.perf_counter()
    try:
        select_fp, last_step, extra, select_info = _select(pipe, plan, run, executor, refs, shard_stats)
    except Exception:
        ids_unique()  # duplicate ids explain a failed selection better than its own error does
        raise
    timings["select"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    summaries = [st.pop("summary", None) for st in shard_stats]
    holders = [st.pop("text_kept_on", None) for st in shard_stats]
    if not all(summaries):
        summaries = executor.map(shard_summary, [SummaryTask(ref, select_fp, last_step) for ref in refs],
                                 desc="count")
    from ..report.early import ReportTask, prepare_report, report_parts, run_diagnostics
    from .report import write_report

    # the decisions are final: the report's passes over them and its plots run beside the write's tasks
    so_far = build_manifest(pipe, plan, run, executor, shard_stats, summaries, select_info, {}, {}, timings)
    parts = report_parts(executor.n_workers, so_far)
    early = [executor.submit(prepare_report, ReportTask(str(run.root), so_far, k, parts), desc=f"report-{k}",
                             slot=k)
             for k in range(parts)]
    outputs, diagnostics = _write(pipe, plan, run, run_id, executor, refs, select_fp, last_step, extra, summaries,
                                  select_info, ids_unique, holders)
    timings["write"] = time.perf_counter() - t0

    manifest = build_manifest(pipe, plan, run, executor, shard_stats, summaries, select_info, outputs,
                              diagnostics, timings)
    found, summary = run_diagnostics(run.root, manifest, [p.result() for p in early])
    manifest["diagnostics"] = {**diagnostics, **found}
    run.write_json(manifest, run.manifest)
    write_report(run, manifest, summary)
    ownership.finish(run)
    from .pipeline import RunResult

    return RunResult(run.root, manifest)


def _no_check() -> None:
    """Derived ids (path and row) are unique by construction."""


def cascade_split(pipe, plan) -> tuple[set[str], list]:
    """With ``cascade``: the scorers the leading row filters read (and what those read) form
    the cheap stage; every other scorer runs only on the rows those filters keep."""
    if not getattr(pipe, "cascade", False):
        return {s.name for s in pipe.specs}, []
    filters = []
    for sel in pipe.steps:
        if not isinstance(sel, RowFilter):
            break
        filters.append(sel)
    cheap: set[str] = set()
    todo = [c for f in filters for c in f.columns()]
    while todo:
        col = todo.pop()
        spec = plan.producers.get(col)
        if spec is not None and spec.name not in cheap:
            cheap.add(spec.name)
            todo += list(spec.scorer.required_inputs())
    if not filters or len(cheap) == len(pipe.specs):
        return {s.name for s in pipe.specs}, []
    return cheap, filters


def _cascade_filters(pipe, plan, run, executor, filters, cheap, refs) -> tuple[tuple[str, str], dict]:
    """Runs the leading filters on the cheap scores; their state masks the expensive pass."""
    refs = refs or _refs(pipe, plan, run)
    fp = fingerprint("cascade", [f.to_config() for f in filters], sorted(r for ref in refs for r in ref.columns.items()),
                     plan.ingest_fp, [r.key for r in refs])
    ctx = StepContext(executor, run, refs, [s.label for s in plan.shards], fp, pipe.seed, {}, None, plan, {})
    engines()["filter"](ctx, filters, "cascade", None)
    return (fp, "cascade"), {}


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
    """Runs the select steps through the engine of each step's kind; returns (fingerprint,
    last step name, extra columns, engine info for the manifest)."""
    steps = pipe.steps
    info: dict = {"total_rows": sum(s["rows"] for s in shard_stats), "want_ranking": pipe.write_ranking,
                  "gain_threshold": pipe.gain_threshold}
    if not steps:
        info["decisions"] = {"narrow": str(run.narrow_table(plan.ingest_fp, "x").parent.relative_to(run.root)),
                             "state": None, "rank_keys": None, "select_fingerprint": ""}
        return "", None, {}, info
    fp = fingerprint("select", [s.to_config() for s in steps], pipe.budget.to_config() if pipe.budget else None,
                     pipe.seed, [r.columns for r in refs], plan.ingest_fp, [r.key for r in refs], pipe.write_ranking)
    extra: dict = {}
    for s in steps:
        extra.update(getattr(s, "extra_columns", {}))
    ctx = StepContext(executor, run, refs, [s.label for s in plan.shards], fp, pipe.seed, extra, pipe.budget, plan,
                      info)
    prev, i = None, 0
    while i < len(steps):
        step, s = f"step-{i:02d}", steps[i]
        if isinstance(s, RowFilter):  # consecutive filters share one task per shard
            j = i
            while j < len(steps) and isinstance(steps[j], RowFilter):
                j += 1
            engines()["filter"](ctx, steps[i:j], step, prev)
            prev, i = step, j
            continue
        run_step(ctx, s, step, prev)
        prev, i = step, i + 1
    rankers = [f"step-{k:02d}" for k, s in enumerate(steps) if s.kind == "ranker"]
    info["decisions"] = {
        "narrow": str(run.narrow_table(plan.ingest_fp, "x").parent.relative_to(run.root)),
        "state": str(run.select_dir(fp, prev).relative_to(run.root)),
        "rank_keys": str((run.select_dir(fp, rankers[0]) / "keys").relative_to(run.root)) if rankers else None,
        "select_fingerprint": fp,
    }
    return fp, prev, extra, info


def _write(pipe, plan, run, run_id, executor, refs, select_fp, last_step, extra, summaries, select_info,
           before_publish, holders):
    stats_specs = [s for s in pipe.specs if _has_selection_stats(s.scorer)]
    layout = select_info.get("ordered") if pipe.order == "auto" else None
    select_info["layout"] = layout or "input"
    write_fp = fingerprint("write", select_fp, plan.ingest_fp, [r.key for r in refs], pipe.target_file_bytes,
                           pipe.include_scores, plan.schema.to_string(show_schema_metadata=False),
                           [s.fingerprint for s in pipe.specs], layout)
    light = pipe.source.__class__(**pipe.source.get_params())
    file_tasks, where = [], []
    for kind in ("rejected",) if layout else ("data", "rejected"):
        planned = plan_files(summaries, kind, pipe.target_file_bytes)
        where += preferred_workers(planned, [s[f"{'selected' if kind == 'data' else 'rejected'}_bytes"]
                                             for s in summaries], holders)
        for k, (lo, hi, idx, starts) in enumerate(planned):
            staged = run.staged_output(write_fp, kind, k)
            file_tasks.append(FileTask(
                str(run.root), kind, k, lo, hi, [refs[i] for i in idx], [plan.shards[i] for i in idx], starts, light,
                plan.schema, select_fp, last_step, extra, str(staged), pipe.specs, pipe.include_scores,
                stats_specs if kind == "data" else []))
    results = executor.map(write_file, file_tasks, desc="write", workers=where)
    staged = {"data": [], "rejected": []}
    totals: dict = {}
    for task, res in zip(file_tasks, results):
        staged[task.kind].append(Path(task.staged))
        _add_stats(totals, res)
    if layout:
        staged.update(_write_ordered(pipe, plan, run, executor, refs, select_fp, last_step, extra, write_fp,
                                     light, stats_specs, select_info, totals))
    diagnostics = {spec.name: spec.scorer.summarize_selection(totals[spec.name])
                   for spec in stats_specs if spec.name in totals}
    staged["quarantine"] = stage_quarantine(run, plan.ingest_fp, [s.key for s in plan.shards],
                                            run.staged_output(write_fp, "quarantine", 0))
    if select_info.get("ranking_pieces"):
        staged["ranking"] = [Path(p) for p in select_info["ranking_pieces"]]
    written = ["curriculum/schedule.json"] if select_info.get("phase_tokens") else []
    before_publish()
    outputs = ownership.publish_files(run, run_id, staged, written)
    return outputs, diagnostics


def _add_stats(totals: dict, result: dict) -> None:
    for name, d in result.get("stats", {}).items():
        acc = totals.setdefault(name, {})
        for k, v in d.items():
            acc[k] = acc[k] + np.asarray(v) if k in acc else np.asarray(v)


def _write_ordered(pipe, plan, run, executor, refs, select_fp, last_step, extra, write_fp, light, stats_specs,
                   select_info, totals) -> list[Path]:
    """data/ in the selected order: a shuffle of the selected rows by output offset."""
    with_repeat = bool((select_info.get("budget") or {}).get("epochs"))
    folder = run.path(".staging", "write", write_fp[:16], "scatter")
    base = FileTask(str(run.root), "data", 0, 0, 0, [], [], [], light, plan.schema, select_fp, last_step, extra, "",
                    pipe.specs, pipe.include_scores, stats_specs)
    phase_tokens = select_info.get("phase_tokens", [])
    tasks = [ScatterTask(base, ref, shard, str(folder), pipe.target_file_bytes, select_info.get("kept_bytes", 0),
                         with_repeat, phase_tokens) for ref, shard in zip(refs, plan.shards)]
    for res in executor.map(scatter_shard, tasks, desc="write (scatter)", labels=[s.label for s in plan.shards]):
        _add_stats(totals, res)
    schema = ordered_schema(base, with_repeat)
    outputs = {"data": (folder, [0])}
    for phase in range(len(phase_tokens)):
        outputs[f"curriculum/phase={phase}"] = (phase_folder(str(folder), phase), [])
    gathers, kinds = [], []
    for kind, (where, default) in outputs.items():
        indices = sorted(int(d.name.split("-")[1]) for d in where.glob("file-*")) if where.exists() else []
        for k in indices or default:
            gathers.append(GatherTask(str(run.root), str(where), k, str(run.staged_output(write_fp, kind, k)), schema,
                                      plain_columns(pipe.source)))
            kinds.append(kind)
    executor.map(gather_file, gathers, desc="write (gather)")
    staged: dict[str, list[Path]] = {}
    for kind, g in zip(kinds, gathers):
        staged.setdefault(kind, []).append(Path(g.staged))
    if phase_tokens:
        run.write_json(select_info["curriculum"], run.path("curriculum", "schedule.json"))
    return staged


def _has_selection_stats(scorer) -> bool:
    from ..scorers.base import Scorer

    return type(scorer).selection_stats is not Scorer.selection_stats

