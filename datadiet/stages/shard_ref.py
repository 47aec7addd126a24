"""A pointer to one shard's narrow data (ingest sidecar + score sidecars) in a run
directory, small enough to ship to every task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ..rundir import RunDir, read_table


@dataclass
class ShardRef:
    """What a select task needs to find one shard's narrow data."""

    index: int
    key: str
    root: str
    ingest_fp: str
    #: score column -> (scorer instance name, sidecar fingerprint)
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)

    def narrow(self, wanted: list[str]) -> pa.Table:
        run = RunDir(self.root)
        table = read_table(run.narrow_table(self.ingest_fp, self.key))
        by_file: dict[Path, list[str]] = {}
        for column in wanted:
            if column in table.column_names:
                continue
            name, fp = self.columns[column]
            by_file.setdefault(run.sidecar(name, fp, self.key), []).append(column)
        for path, cols in sorted(by_file.items()):
            side = read_table(path, columns=["doc_id"] + cols)
            if side.num_rows != table.num_rows or not side.column("doc_id").equals(table.column("doc_id")):
                raise ValueError(f"score sidecar {path} does not match its shard's rows; delete it and rerun")
            for col in cols:
                table = table.append_column(col, side.column(col))
        return table
