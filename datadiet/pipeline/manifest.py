"""manifest.json: recipe, versions, inputs, counts, tokens, budget, timings, outputs."""

from __future__ import annotations

import functools
import platform
import time
from importlib import metadata
from pathlib import Path

import pyarrow.parquet as pq

from .. import __version__

PACKAGES = ("pyarrow", "dask", "distributed", "numpy", "datasets", "transformers", "torch", "tokenizers",
            "scikit-learn", "faiss-cpu", "xxhash")


@functools.cache  # package metadata is parsed once per process
def _installed_versions() -> tuple[tuple[str, str], ...]:
    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pass
    return tuple(found)


def versions() -> dict:
    return {"datadiet": __version__, "python": platform.python_version(), **dict(_installed_versions())}


def _quarantine_counts(files: list[str]) -> tuple[dict, int, list[str]]:
    by_source: dict[str, int] = {}
    total, unreadable = 0, []
    for path in files:
        table = pq.read_table(path, columns=["source", "n_rows", "error"])
        for src, n, err in zip(*(table.column(c).to_pylist() for c in ("source", "n_rows", "error"))):
            if n is None:
                unreadable.append(err)
                continue
            by_source[src] = by_source.get(src, 0) + n
            total += n
    return by_source, total, unreadable


def build_manifest(pipe, plan, run, executor, shard_stats, summaries, select_info, outputs, diagnostics, timings):
    q_by_source, quarantined, unreadable = _quarantine_counts(outputs.get("quarantine", []))
    selected = sum(s["selected_rows"] for s in summaries)
    rejected = sum(s["rejected_rows"] for s in summaries)
    by_source: dict[str, dict] = {}
    for s in summaries:
        for src, c in s["by_source"].items():
            d = by_source.setdefault(src, {"input": 0, "selected": 0, "rejected": 0, "quarantined": 0})
            d["selected"] += c["selected"]
            d["rejected"] += c["rejected"]
    for src, n in q_by_source.items():
        by_source.setdefault(src, {"input": 0, "selected": 0, "rejected": 0, "quarantined": 0})["quarantined"] += n
    for d in by_source.values():
        d["input"] = d["selected"] + d["rejected"] + d["quarantined"]
    reasons: dict[str, int] = {}
    for s in summaries:
        for r, n in s["reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
    tokens_in = sum(s["tokens"] for s in shard_stats)
    tokens_sel = sum(s["selected_tokens"] for s in summaries)
    select_info = select_info or {}
    budget_info = select_info.get("budget")
    if budget_info is not None:
        budget_info["exceeds_available"] = budget_info["limit"] >= budget_info.get("available", 0)
        if budget_info["exceeds_available"]:
            budget_info["note"] = (f"the budget ({budget_info['limit']} {budget_info['unit']}) is at least what "
                                   f"was available ({budget_info.get('available', 0)}): everything eligible was selected")
    scorers = {}
    for spec in pipe.specs:
        null_reasons: dict[str, int] = {}
        seconds, rows_scored, skipped = 0.0, 0, 0
        for st in shard_stats:
            info = st["scorers"].get(spec.name, {})
            seconds += info.get("seconds", 0.0)
            rows_scored += info.get("rows_scored") or 0
            skipped += info.get("tokens_skipped") or 0
            for r, n in info.get("null_reasons", {}).items():
                null_reasons[r] = null_reasons.get(r, 0) + n
        scorers[spec.name] = {
            "type": spec.scorer.registry_name, "fingerprint": spec.fingerprint,
            "columns": list(spec.columns()), "null_reasons": null_reasons, "seconds": round(seconds, 4),
            "flops_per_token": spec.scorer.flops_per_token(),
            "flops": spec.scorer.flops_per_token() * (tokens_in - skipped),
            "rows_scored": rows_scored,
            "flops_avoided": spec.scorer.flops_per_token() * skipped,
        }
    timings = {k: round(v, 4) for k, v in timings.items()}
    timings["total"] = round(sum(timings.values()), 4)
    manifest = {
        "datadiet_version": __version__,
        "created_unix": int(time.time()),
        "recipe": pipe.to_config(),
        "versions": versions(),
        "executor": {"type": type(executor).__name__, "workers": executor.n_workers},
        "inputs": [{"path": s.rel_path, "part": list(s.part) if s.part else None, "rows": s.n_rows,
                    "size": s.size, "mtime": s.mtime, "fingerprint": s.key} for s in plan.shards],
        "counts": {
            "input_rows": selected + rejected + quarantined,
            "selected_rows": selected, "rejected_rows": rejected, "quarantined_rows": quarantined,
            "unreadable_files": unreadable, "by_source": dict(sorted(by_source.items())),
            "reused_shards": sum(1 for s in shard_stats if s.get("reused")),
        },
        "tokens": {"input": tokens_in, "selected": tokens_sel, "rejected": tokens_in - tokens_sel},
        "budget": budget_info,
        "order": select_info.get("layout", "input"),
        "decisions": select_info.get("decisions"),
        "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "scorers": scorers,
        "flops": {"selection": sum(s["flops"] for s in scorers.values()),
                  "avoided_by_cascade": sum(s["flops_avoided"] for s in scorers.values())},
        "diagnostics": diagnostics,
        "timings_s": timings,
        "outputs": {k: [str(Path(p).relative_to(run.root)) for p in v] for k, v in outputs.items()},
    }
    if "marginal_gain" in select_info:
        manifest["ranking"] = {"files": manifest["outputs"].get("ranking", []),
                               "marginal_gain": select_info["marginal_gain"]}
    if "curriculum" in select_info:
        manifest["curriculum"] = select_info["curriculum"]
    return manifest
