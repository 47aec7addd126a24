"""Reading a curriculum back: the rows of ``OUT/curriculum/phase=k/`` in schedule order.

Example::

    from datadiet.curriculum import read_curriculum, read_schedule
    for phase, batch in read_curriculum("out/run1"):
        ...  # phase 0's rows first (easiest), then phase 1's, ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError


def read_schedule(out: str | Path) -> dict:
    path = Path(out) / "curriculum" / "schedule.json"
    if not path.is_file():
        raise InputError(f"{out} has no curriculum (no {path}); add 'curriculum:' to the recipe")
    return json.loads(path.read_text())


def read_curriculum(out: str | Path, batch_size: int = 4096) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(phase, batch) in the curriculum's order: phase by phase, each in its written order."""
    for phase in read_schedule(out)["phases"]:
        folder = Path(out) / "curriculum" / f"phase={phase['phase']}"
        for path in sorted(folder.glob("*.parquet")):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
                yield phase["phase"], batch
