"""Finished run directories and the texts an evaluation reads from them: the selection
(``RUN/data/*.parquet``) and the pool (the run's inputs, from the recipe in its manifest).

Example::

    run = load_run("out/dsir")
    ids, texts = read_texts(run.pool_source())
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BudgetError, InputError
from ..readers.source import Source


@dataclass
class FinishedRun:
    """A run directory with its manifest; ``pool_paths`` replaces the recipe's input paths."""

    root: Path
    manifest: dict
    pool_paths: str | list[str] | None = None

    @property
    def name(self) -> str:
        return self.root.name

    def source_params(self) -> dict:
        return dict(self.manifest["recipe"]["source"])

    def pool_source(self) -> Source:
        params = self.source_params()
        if self.pool_paths is not None:
            params["paths"] = self.pool_paths
        return Source(**params)

    def selection_source(self) -> Source:
        data = self.root / "data"
        if self.manifest["counts"].get("selected_rows", 0) == 0 or not list(data.glob("*.parquet")):
            raise BudgetError(f"eval: {self.root} selected no rows (no {data}/*.parquet); nothing to train on")
        return Source(**{**self.source_params(), "paths": str(data / "*.parquet")})

    def pool_key(self) -> list:
        """What identifies the pool: input paths, row counts and file fingerprints."""
        return [(i.get("path"), i.get("part"), i.get("rows"), i.get("fingerprint")) for i in self.manifest["inputs"]]


def load_run(path: str | Path, pool_paths: str | list[str] | None = None) -> FinishedRun:
    """The run at ``path``; InputError naming the path when it is not a finished run."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"eval: run directory not found: {root}")
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"eval: {root} is not a finished run (no manifest.json); "
                         "evaluate the output directory of a completed `datadiet run`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"eval: cannot read {manifest_path}: {exc}") from None
    for key in ("recipe", "inputs", "counts"):
        if not isinstance(manifest, dict) or key not in manifest:
            raise InputError(f"eval: {manifest_path} has no {key!r}; it is not a datadiet run manifest")
    if "source" not in manifest["recipe"]:
        raise InputError(f"eval: {manifest_path} has no recipe.source; cannot tell the run's pool")
    return FinishedRun(root, manifest, pool_paths)


def read_texts(source: Source, where: str = "") -> tuple[list[str], list[str]]:
    """(doc ids, texts) of the good rows of ``source``, in input order (rows the pipeline
    would quarantine, such as empty texts, are left out)."""
    from ..stages.ingest import Ingest

    try:
        source.validate_params("source")
        shards = source.shards()
        source.check_columns(shards)
    except InputError as exc:
        raise InputError(f"eval: {where + ': ' if where else ''}{exc}") from None
    ingest = Ingest(source)
    ids: list[str] = []
    texts: list[str] = []
    for shard in shards:
        for view, narrow in ingest.views(shard):
            ids.extend(narrow.column("doc_id").to_pylist())
            texts.extend(view.column("text").to_pylist())
    return ids, texts
