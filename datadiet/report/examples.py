"""Text of a few rows for the report's examples: read from the run's original input
shards by (shard, row), or else from the written outputs by doc_id."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DatadietError
from ..readers.source import Source
from ..registry import get
from ..stages.ingest import Ingest


def fetch_texts(run_dir: str | Path, manifest: dict, wanted: list[tuple[str, int, int]]) -> tuple[dict[str, str], str]:
    """{doc_id: text} for ``wanted`` (doc_id, shard index, file row), and a note saying
    where the text came from or why some is missing."""
    if not wanted:
        return {}, ""
    try:
        source = Source.from_config(dict(manifest["recipe"]["source"]), where="source")
        texts = _from_inputs(source, manifest, wanted)
        return texts, "" if len(texts) == len({w[0] for w in wanted}) else "some input rows could not be read back"
    except (DatadietError, OSError, KeyError, ValueError, TypeError) as exc:
        reason = f"the input files could not be read back ({exc})"
    texts = _from_outputs(Path(run_dir), manifest, {w[0] for w in wanted})
    note = f"{reason}; text shown from rejected/ (and data/ when it has doc_id)"
    return texts, note


def _from_inputs(source: Source, manifest: dict, wanted: list[tuple[str, int, int]]) -> dict[str, str]:
    keys = [i["fingerprint"] for i in manifest["inputs"]]
    shards = {s.key: s for s in source.shards()}
    missing = [keys[i] for _, i, _ in wanted if keys[i] not in shards]
    if missing:
        raise ValueError(f"{len(set(missing))} input shard(s) changed or moved since the run")
    ingest = Ingest(source)
    texts: dict[str, str] = {}
    for doc_id, index, row in sorted(set(wanted), key=lambda w: (w[1], w[2])):
        shard = shards[keys[index]]
        reader = get("reader", shard.reader)()
        for item in reader.read(shard, source.batch_size, rows=(row, row)):
            if item.batch is None or row not in item.rows:
                continue
            pos = int((item.rows == row).nonzero()[0][0])
            texts[doc_id] = ingest.text(item.batch.slice(pos, 1))[0].as_py() or ""
            break
    return texts


def _from_outputs(root: Path, manifest: dict, ids: set[str]) -> dict[str, str]:
    src = (manifest.get("recipe") or {}).get("source") or {}
    text_cols = [c for c in (src.get("text_column", "text"), src.get("instruction_column"), src.get("response_column"))
                 if c]
    texts: dict[str, str] = {}
    wanted = pa.array(sorted(ids), pa.string())
    for kind in ("rejected", "data"):
        for rel in (manifest.get("outputs") or {}).get(kind, []):
            path = root / rel
            names = pq.read_schema(path).names
            cols = [c for c in text_cols if c in names]
            if "doc_id" not in names or not cols:
                continue
            pf = pq.ParquetFile(path)
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g, columns=["doc_id", *cols])
                hit = table.filter(pc.is_in(table.column("doc_id"), value_set=wanted))
                for i in range(hit.num_rows):
                    texts[hit.column("doc_id")[i].as_py()] = "\n\n".join(
                        str(hit.column(c)[i].as_py() or "") for c in cols)
    return texts
