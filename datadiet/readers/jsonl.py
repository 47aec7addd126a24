"""JSON Lines reader (plain or compressed), parsed in blocks by pyarrow, line by line
only where a block has a bad line, so one bad line never costs the file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.json as pj

from ..registry import register
from .base import Reader, ReadItem, Shard, batch_rows, file_stat, shard_fs

BLOCK_BYTES = 8 << 20
SCHEMA_PROBE_BYTES = 1 << 20


def _compression(path: str) -> str | None:
    return "infer" if path.endswith((".gz", ".bz2", ".xz", ".zst")) else None


@register("reader", "jsonl")
class JsonlReader(Reader):
    """Reads ``.jsonl``/``.json``/``.ndjson`` files, optionally ``.gz``. One shard per file.
    Lines that are not valid UTF-8, not JSON, not an object, or don't fit the schema are
    reported with their 0-based line number.

    Example::

        JsonlReader().read(shard, batch_size=4096, schema=schema)
    """

    extensions = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz",
                  ".jsonl.zst", ".jsonl.bz2", ".jsonl.xz")

    def discover(self, fs, path, rel_path, rows_per_shard, storage_options):
        size, mtime = file_stat(fs, path)
        return [Shard(reader="jsonl", path=path, rel_path=rel_path, size=size, mtime=mtime,
                      storage_options=storage_options)]

    def schema(self, fs, shard: Shard) -> pa.Schema:
        with fs.open(shard.path, "rb", compression=_compression(shard.path)) as fh:
            head = fh.read(SCHEMA_PROBE_BYTES)
        cut = head.rfind(b"\n")
        if cut >= 0 and len(head) == SCHEMA_PROBE_BYTES:
            head = head[: cut + 1]
        rows = []
        for line in head.splitlines():
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if isinstance(obj, dict):
                rows.append(obj)
        if not rows:
            return pa.schema([])
        return pa.Table.from_pylist(rows).schema

    def read(self, shard: Shard, batch_size: int, columns=None, schema=None, rows=None) -> Iterator[ReadItem]:
        fs, path = shard_fs(shard)
        line_no = 0
        try:
            fh = fs.open(path, "rb", compression=_compression(path))
        except Exception as exc:
            yield ReadItem(lost=(None, None, f"cannot open {shard.rel_path}: {exc}"))
            return
        with fh:
            rest = b""
            while True:
                try:
                    chunk = fh.read(BLOCK_BYTES)
                except Exception as exc:  # e.g. a truncated gzip stream
                    yield ReadItem(lost=(line_no, None, f"cannot read {shard.rel_path} after line "
                                                       f"{line_no}: {exc}"))
                    return
                data = rest + chunk
                if chunk:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        rest = data
                        continue
                    block, rest = data[: cut + 1], data[cut + 1:]
                else:
                    block, rest = data, b""
                if block:
                    yield from self._parse_block(block, line_no, schema, batch_size, shard)
                    line_no += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                if not chunk:
                    return

    def _parse_block(self, block: bytes, first_line: int, schema, batch_size, shard) -> Iterator[ReadItem]:
        lines = block.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if all(line.strip() for line in lines) and _valid_utf8(block):
            try:
                opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore") \
                    if schema is not None and len(schema) else None
                table = pj.read_json(io.BytesIO(block), parse_options=opts)
                if schema is not None and len(schema):
                    table = table.select([f.name for f in schema]).cast(schema)
                if table.num_rows == len(lines):
                    yield from _batches(table, first_line, batch_size)
                    return
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
                pass
        yield from self._parse_lines(lines, first_line, schema, batch_size, shard)

    def _parse_lines(self, lines, first_line, schema, batch_size, shard) -> Iterator[ReadItem]:
        good, good_rows, errors = [], [], []
        for offset, raw in enumerate(lines):
            n = first_line + offset
            if not raw.strip():
                errors.append((n, f"{shard.rel_path} line {n + 1}: blank line", ""))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append((n, f"{shard.rel_path} line {n + 1}: invalid UTF-8 at byte {exc.start}",
                               raw.decode("utf-8", errors="replace")))
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                errors.append((n, f"{shard.rel_path} line {n + 1}: not JSON ({exc})", text))
                continue
            if not isinstance(obj, dict):
                errors.append((n, f"{shard.rel_path} line {n + 1}: JSON {type(obj).__name__}, "
                                  "expected an object", text))
                continue
            if schema is not None and len(schema):
                try:
                    pa.Table.from_pylist([obj], schema=schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    errors.append((n, f"{shard.rel_path} line {n + 1}: does not fit the schema ({exc})", text))
                    continue
            good.append(obj)
            good_rows.append(n)
        if errors:
            yield ReadItem(errors=errors)
        if good:
            table = pa.Table.from_pylist(good, schema=schema if schema is not None and len(schema) else None)
            rows = pa.array(good_rows, pa.int64()).to_numpy()
            for start in range(0, table.num_rows, batch_size):
                part = table.slice(start, batch_size)
                for batch in part.to_batches():
                    yield ReadItem(batch=batch, rows=rows[start:start + batch.num_rows])
                    start += batch.num_rows


def _valid_utf8(block: bytes) -> bool:
    """pyarrow's JSON parser does not check UTF-8, so check the block first (C speed)."""
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _batches(table: pa.Table, first_line: int, batch_size: int) -> Iterator[ReadItem]:
    row = first_line
    for batch in table.to_batches(max_chunksize=batch_size):
        yield ReadItem(batch=batch, rows=batch_rows(row, batch.num_rows))
        row += batch.num_rows
