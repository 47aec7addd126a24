"""The report's one view of a run's decisions: per shard, a narrow table (doc_id, source,
n_tokens, row, kept, reason, rank_key, score columns) read from the run directory without
the text. ``load_decisions`` is the only place that knows where those files are."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..hashing import hash_strings
from ..rundir import read_table

IN_PROGRESS = Path(".datadiet", "in_progress.json")
#: scorer types whose columns are identifiers or vectors, not scores to plot
NOT_SCORES = {"exact_hash", "embedding", "dsir_target"}
SAMPLE_SEED = 0x5EED


@dataclass
class ShardFiles:
    """Where one shard's narrow data and decisions are."""

    index: int
    key: str
    narrow: Path
    state: Path | None
    rank_keys: Path | None
    sidecars: dict[Path, list[str]] = field(default_factory=dict)


@dataclass
class RunDecisions:
    """The located decision files of a finished run and the columns they offer."""

    root: Path
    shards: list[ShardFiles]
    score_columns: list[str]
    cluster_columns: list[str]
    ranked: bool


def read_manifest(run_dir: str | Path) -> dict:
    """The manifest of a finished run; a clear error for anything else."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory (expected a datadiet run directory)")
    if (root / IN_PROGRESS).exists():
        raise InputError(f"{root} holds a run that is still in progress or was interrupted "
                         f"({root / IN_PROGRESS} exists); rerun it to completion first")
    path = root / "manifest.json"
    if not path.is_file():
        raise InputError(f"{root} is not a finished datadiet run: no manifest.json")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or "counts" not in manifest:
        raise InputError(f"{path} is not a datadiet manifest (no 'counts')")
    return manifest


def locate(run_dir: str | Path, manifest: dict) -> RunDecisions:
    """Finds each shard's ingest table, final select state and rank keys: from
    ``manifest["decisions"]`` when the run recorded it, else by looking in the run directory."""
    root = Path(run_dir).resolve()
    keys = [i["fingerprint"] for i in manifest.get("inputs", [])]
    recorded = manifest.get("decisions") or {}
    narrow_dir = root / recorded["narrow"] if recorded.get("narrow") else _find_dir(root / "scores" / "_ingest", keys)
    if narrow_dir is None:
        raise InputError(f"{root}: the ingest tables (scores/_ingest/) of this run are missing; rerun it")
    n_steps = len((manifest.get("recipe") or {}).get("select") or [])
    if "state" in recorded:
        state_dir = root / recorded["state"] if recorded["state"] else None
        if state_dir is not None and not state_dir.is_dir():
            state_dir = None
    else:
        state_dir = _find_state(root, keys, manifest) if n_steps else None
    if n_steps and state_dir is None:
        raise InputError(f"{root}: the selection decisions (.staging/select/) of this run are missing or do "
                         "not match its manifest; rerun it to rebuild them")
    keys_dir = root / recorded["rank_keys"] if recorded.get("rank_keys") else (
        state_dir / "keys" if state_dir is not None and (state_dir / "keys").is_dir() else None)
    shards = [ShardFiles(i, k, narrow_dir / f"{k}.parquet", state_dir / f"{k}.parquet" if state_dir else None,
                         keys_dir / f"{k}.parquet" if keys_dir else None) for i, k in enumerate(keys)]
    score_columns, cluster_columns = [], []
    for name, info in (manifest.get("scorers") or {}).items():
        folder = root / "scores" / name / info["fingerprint"][:16]
        if not keys or not (folder / f"{keys[0]}.parquet").exists():
            continue
        schema = pq.read_schema(folder / f"{keys[0]}.parquet")
        wanted = []
        for col in info["columns"]:
            if col not in schema.names:
                continue
            dtype = schema.field(col).type
            if info["type"] == "kmeans" and col.endswith(".cluster"):
                cluster_columns.append(col)
                wanted.append(col)
            elif info["type"] not in NOT_SCORES and (pa.types.is_floating(dtype) or pa.types.is_integer(dtype)) \
                    and not col.endswith("cluster"):
                score_columns.append(col)
                wanted.append(col)
        for s in shards:
            if wanted:
                s.sidecars[folder / f"{s.key}.parquet"] = wanted
    return RunDecisions(root, shards, score_columns, cluster_columns, keys_dir is not None)


def _find_dir(base: Path, keys: list[str]) -> Path | None:
    """The newest folder under ``base`` holding a file for every shard key."""
    if not base.is_dir():
        return None
    found = [d for d in base.iterdir() if d.is_dir() and all((d / f"{k}.parquet").exists() for k in keys)]
    return max(found, key=lambda d: d.stat().st_mtime, default=None)


def _find_state(root: Path, keys: list[str], manifest: dict) -> Path | None:
    """The last select step whose decisions keep exactly the manifest's selected rows."""
    base = root / ".staging" / "select"
    if not base.is_dir():
        return None
    steps = []
    for fp_dir in base.iterdir():
        numbered = sorted((d for d in fp_dir.iterdir() if re.fullmatch(r"step-\d+", d.name)),
                          key=lambda d: int(d.name[5:]))
        if numbered and all((numbered[-1] / f"{k}.parquet").exists() for k in keys):
            steps.append(numbered[-1])
    want = manifest["counts"]["selected_rows"]
    for step in sorted(steps, key=lambda d: -d.stat().st_mtime):
        kept = sum(read_table(step / f"{k}.parquet", columns=["keep"]).column("keep").to_numpy(
            zero_copy_only=False).sum() for k in keys)
        if kept == want:
            return step
    return None


def load_decisions(run_dir: str | Path, manifest: dict, decisions: RunDecisions | None = None,
                   columns: list[str] | None = None) -> Iterator[pa.Table]:
    """One table per shard: doc_id, source, n_tokens, row, shard, kept, reason, rank_key and
    the score (and cluster) columns, or only ``columns`` of them."""
    found = decisions or locate(run_dir, manifest)
    wanted = set(columns) if columns is not None else None
    for s in found.shards:
        narrow = read_table(s.narrow, columns=["doc_id", "source", "n_tokens", "row"])
        n = narrow.num_rows
        cols = {name: narrow.column(name) for name in narrow.column_names}
        cols["shard"] = pa.array(np.full(n, s.index, dtype=np.int32))
        if s.state is not None:
            state = read_table(s.state, columns=["keep", "reason"])
            if state.num_rows != n:
                raise InputError(f"{s.state} has {state.num_rows} rows but its shard has {n}; rerun the run")
            cols["kept"], cols["reason"] = state.column("keep"), state.column("reason")
        else:
            cols["kept"], cols["reason"] = pa.array(np.ones(n, dtype=bool)), pa.nulls(n, pa.string())
        cols["rank_key"] = _rank_keys(s.rank_keys, n)
        for path, names in s.sidecars.items():
            names = [c for c in names if wanted is None or c in wanted]
            if names:
                side = read_table(path, columns=names)
                if side.num_rows != n:
                    raise InputError(f"score sidecar {path} does not match its shard's rows; delete it and rerun")
                cols.update({c: side.column(c) for c in names})
        table = pa.table(cols)
        if wanted is not None:
            table = table.select([c for c in table.column_names if c in wanted or c in ("doc_id", "kept")])
        yield table


def _rank_keys(path: Path | None, n: int) -> pa.Array:
    if path is None or not path.exists():
        return pa.nulls(n, pa.uint64())
    keys = read_table(path, columns=["pos", "key"])
    out = np.zeros(n, dtype=np.uint64)
    valid = np.zeros(n, dtype=bool)
    pos = keys.column("pos").to_numpy()
    out[pos] = keys.column("key").to_numpy()
    valid[pos] = True
    return pa.array(out, mask=~valid)


def sample_mask(doc_ids: pa.ChunkedArray | pa.Array, rate: float) -> np.ndarray:
    """Rows kept by seeded hash sampling at ``rate`` (the same rows on every call)."""
    if rate >= 1:
        return np.ones(len(doc_ids), dtype=bool)
    return hash_strings(doc_ids, SAMPLE_SEED) < np.uint64(int(rate * float(1 << 64)) - 1)


def sample_rate(manifest: dict, max_rows: int) -> float:
    rows = manifest["counts"]["input_rows"] - manifest["counts"]["quarantined_rows"]
    return 1.0 if rows <= max_rows else max_rows / rows
