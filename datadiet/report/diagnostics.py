"""Diagnostics without training: KL reduction toward a target, cluster coverage,
near-duplicate share and score drift between the budget and half of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from .summary import RunSummary, summarize

PREFIX_FRACTION = 0.5


def diagnostics(run_dir: str | Path, manifest: dict, summary: RunSummary | None = None) -> dict:
    """The four diagnostics of a finished run (``summary`` saves a pass when already made)."""
    summary = summary or summarize(run_dir, manifest)
    return {
        "kl_reduction": kl_reduction(manifest),
        "cluster_coverage": cluster_coverage(summary),
        "near_duplicate_share": near_duplicate_share(manifest),
        "score_drift": score_drift(summary, manifest),
    }


def kl_reduction(manifest: dict) -> dict:
    """The DSIR KL reduction of each dsir scorer (computed while writing the selection)."""
    recipe = manifest.get("recipe") or {}
    found = {name: manifest.get("diagnostics", {}).get(name)
             for name, s in (manifest.get("scorers") or {}).items() if s.get("type") == "dsir"}
    found = {k: v for k, v in found.items() if v}
    if found:
        return {"available": True, "by_scorer": found}
    if recipe.get("target") or recipe.get("targets"):
        why = ("the recipe has a target but no dsir scorer; the KL needs the selected rows' hashed n-gram "
               "counts, which a dsir scorer gathers while the selection is written (a second pass over "
               "the selected text otherwise): add `- type: dsir` to the scorers to get it")
    else:
        why = "the recipe has no target set to measure the selection against"
    return {"available": False, "reason": why}


def cluster_coverage(summary: RunSummary) -> dict:
    """Share of k-means clusters (with at least one input row) that keep at least one row."""
    if not summary.clusters:
        return {"available": False, "reason": "no kmeans scorer in the recipe"}
    by_column = {c: {"clusters": n, "covered": k, "share": (k / n) if n else None}
                 for c, (n, k) in summary.clusters.items()}
    return {"available": True, "by_column": by_column}


def near_duplicate_share(manifest: dict) -> dict:
    """Rows rejected as (exact, near or semantic) duplicates over the input rows."""
    rows_in = manifest["counts"]["input_rows"]
    dups = {r: n for r, n in (manifest.get("reasons") or {}).items() if "duplicate" in r.lower()}
    total = sum(dups.values())
    return {"rows": total, "input_rows": rows_in, "share": total / rows_in if rows_in else 0.0,
            "by_reason": dups}


def score_drift(summary: RunSummary, manifest: dict) -> dict:
    """How the score distributions of the selection differ from those of its first half
    (the prefix of the ranking that a budget half as large would select)."""
    sample = summary.sample
    if not summary.decisions.ranked or "rank_key" not in sample.column_names:
        return {"available": False, "reason": "the selection has no ranking (no ranker step with a budget)"}
    ranked = sample.column("kept").to_numpy(zero_copy_only=False) & sample.column("rank_key").is_valid().to_numpy(
        zero_copy_only=False)
    kept = sample.filter(pa.array(ranked))
    if kept.num_rows < 4:
        return {"available": False, "reason": f"too few ranked rows kept ({kept.num_rows})"}
    keys = kept.column("rank_key").to_numpy()
    ids = np.asarray(kept.column("doc_id").to_pylist(), dtype=object)
    order = np.lexsort((ids, ~keys))  # key descending, then doc_id ascending: the rank order
    unit = (manifest.get("budget") or {}).get("unit", "documents")
    weight = kept.column("n_tokens").to_numpy()[order] if unit == "tokens" else np.ones(len(order))
    cum = np.cumsum(weight)
    prefix = order[: max(1, int(np.searchsorted(cum, PREFIX_FRACTION * cum[-1], side="right")))]
    columns = {}
    for col in summary.score_columns:
        full = kept.column(col).to_numpy(zero_copy_only=False).astype(np.float64)
        half = full[prefix]
        full, half = full[~np.isnan(full)], half[~np.isnan(half)]
        if len(full) < 2 or len(half) < 1:
            continue
        std = float(full.std())
        columns[col] = {"mean_selection": float(full.mean()), "mean_prefix": float(half.mean()),
                        "std_diff": (float(half.mean()) - float(full.mean())) / std if std > 0 else 0.0,
                        "ks": ks_statistic(half, full)}
    return {"available": True, "prefix_fraction": PREFIX_FRACTION, "unit": unit,
            "rows_selection": int(kept.num_rows), "rows_prefix": int(len(prefix)),
            "sampled": summary.rate < 1, "by_column": columns}


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs."""
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())
