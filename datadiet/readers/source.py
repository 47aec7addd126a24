"""Source: where the corpus is and which columns mean what."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow as pa

from ..errors import InputError, MissingColumnError
from ..params import Component, Interval
from ..registry import get
from .base import Shard, open_fs

FORMATS = ("parquet", "jsonl", "arrow", "hf_disk")


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _glob_root(pattern: str) -> str:
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _has_magic(part):
            return "/".join(parts[:i])
    return posixpath.dirname(pattern)


class Source(Component):
    """The input corpus: local paths, globs or fsspec URLs (Parquet, JSONL[.gz], Arrow IPC,
    ``save_to_disk`` directories), or an in-memory table given with :meth:`from_data`.

    ``text_column`` names the document text; for instruction data give
    ``instruction_column`` and ``response_column`` (the text is then ``template`` filled
    with both, unless ``text_column`` is also present). ``id_column`` gives doc ids; without
    it a doc id is ``<path relative to the input root>:<row>``.

    Text columns must be strings or binary (decoded as UTF-8; rows that are not valid
    UTF-8 are quarantined); with ``cast_text`` numbers, booleans and dates are cast to
    strings, otherwise they are an error before any compute. Transient read errors are
    retried ``read_retries`` times, after ``read_backoff * 2**k`` seconds.

    Example::

        Source(paths="data/*.parquet", text_column="text", id_column="id")
    """

    _constraints = {"rows_per_shard": Interval(int, 1, None), "batch_size": Interval(int, 1, None),
                    "read_retries": Interval(int, 0, 20), "read_backoff": Interval(float, 0, 60)}

    def __init__(
        self,
        paths: str | list[str] | None = None,
        format: Literal["auto", "parquet", "jsonl", "arrow", "hf_disk"] = "auto",
        text_column: str | None = "text",
        instruction_column: str | None = None,
        response_column: str | None = None,
        id_column: str | None = None,
        source_column: str | None = None,
        tokenizer: str | None = None,
        template: str = "{instruction}\n\n{response}",
        rows_per_shard: int = 100_000,
        batch_size: int = 2048,
        storage_options: dict | None = None,
        cast_text: bool = False,
        read_retries: int = 3,
        read_backoff: float = 0.5,
    ):
        self.paths = paths
        self.format = format
        self.text_column = text_column
        self.instruction_column = instruction_column
        self.response_column = response_column
        self.id_column = id_column
        self.source_column = source_column
        self.tokenizer = tokenizer
        self.template = template
        self.rows_per_shard = rows_per_shard
        self.batch_size = batch_size
        self.storage_options = storage_options
        self.cast_text = cast_text
        self.read_retries = read_retries
        self.read_backoff = read_backoff
        self._data: pa.Table | None = None
        self._data_name = "table"

    @classmethod
    def from_data(cls, data: Any, name: str = "table", **params) -> Source:
        """A source over an in-memory ``pyarrow.Table`` or ``datasets.Dataset``."""
        from .memory import as_table

        source = cls(**params)
        source._data = as_table(data)
        source._data_name = name
        return source

    @property
    def in_memory(self) -> bool:
        return self._data is not None

    def validate_params(self, where: str = "source") -> None:
        super().validate_params(where)
        if self._data is None and not self.paths:
            raise InputError(f"{where}: no input given; set 'paths' (or pass --input)")
        if not self.text_column and not (self.instruction_column and self.response_column):
            raise InputError(f"{where}: set text_column, or both instruction_column and response_column")

    # -- discovery --------------------------------------------------------------------

    def required_columns(self) -> list[str]:
        cols = [self.text_column] if self.text_column and not self.instruction_column else []
        if self.instruction_column:
            cols += [self.instruction_column, self.response_column]
        if self.text_column and self.instruction_column:
            cols = [self.instruction_column, self.response_column]
        cols += [c for c in (self.id_column, self.source_column) if c]
        return cols

    def _files(self) -> list[tuple[str, str, str]]:
        """(reader name, path or URL, path relative to its input root) for every input."""
        entries = [self.paths] if isinstance(self.paths, str) else list(self.paths)
        out = []
        for entry in entries:
            fs, path = open_fs(entry, self.storage_options, self.retries)
            try:
                out += self._entry_files(entry, fs, path)
            except InputError:
                raise
            except OSError as exc:
                raise InputError(f"cannot list input {entry!r}: {type(exc).__name__}: {exc}") from None
        return out

    def _entry_files(self, entry: str, fs, path: str) -> list[tuple[str, str, str]]:
        local = fs.protocol in ("file", ("file", "local")) or "file" in (fs.protocol or ())

        def url(p, fs=fs, local=local):
            return p if local else fs.unstrip_protocol(p)

        if _has_magic(path):
            root = _glob_root(path)
            matches = sorted(fs.glob(path))
        elif fs.isdir(path):
            root = path
            hf = get("reader", "hf_disk")
            if hf.is_dataset_dir(fs, path):
                return [("hf_disk", url(path), posixpath.basename(path.rstrip("/")))]
            matches = sorted(p for p in fs.find(path) if self._format_of(p, strict=False))
        elif fs.exists(path):
            root = posixpath.dirname(path)
            matches = [path]
        else:
            raise InputError(f"input not found: {entry!r}")
        if not matches:
            raise InputError(f"no input files match {entry!r}")
        out = []
        for match in matches:
            if fs.isdir(match) and get("reader", "hf_disk").is_dataset_dir(fs, match):
                out.append(("hf_disk", url(match), posixpath.relpath(match, root or "/")))
                continue
            fmt = self._format_of(match, strict=True)
            out.append((fmt, url(match), posixpath.relpath(match, root) if root else match))
        return out

    def _format_of(self, path: str, strict: bool) -> str | None:
        if self.format != "auto":
            return self.format
        name = path.lower()
        for fmt in ("parquet", "jsonl", "arrow"):
            if name.endswith(get("reader", fmt).extensions):
                return fmt
        if strict:
            raise InputError(f"cannot tell the format of {path!r} from its name; set source.format")
        return None

    def shards(self) -> list[Shard]:
        """Every shard of the input, in a stable order (paths as given, globs sorted)."""
        if self._data is not None:
            return get("reader", "memory")().shards_for(self._data, self._data_name, self.rows_per_shard)
        shards = []
        for fmt, path, rel in self._files():
            fs, local_path = open_fs(path, self.storage_options, self.retries)
            reader = get("reader", fmt)()
            try:
                found = reader.discover(fs, local_path, rel, self.rows_per_shard, self.storage_options or {})
            except OSError as exc:
                raise InputError(f"cannot read {rel} ({path}): {type(exc).__name__}: {exc}") from None
            local = path == local_path  # else keep the URL, so that workers open it with its filesystem
            shards += [dataclasses.replace(s, retries=self.retries,
                                           path=s.path if local else fs.unstrip_protocol(s.path)) for s in found]
        return shards

    @property
    def retries(self) -> tuple[int, float]:
        """(attempts, backoff seconds) for transient read errors."""
        return self.read_retries + 1, float(self.read_backoff)

    def text_columns(self) -> list[str]:
        """The columns read as text."""
        if self.instruction_column and self.response_column:
            return [self.instruction_column, self.response_column]
        return [self.text_column] if self.text_column else []

    def file_schemas(self, shards: list[Shard]) -> dict[str, pa.Schema | Exception]:
        """Schema of each distinct input file (the error when it cannot be read)."""
        out: dict[str, pa.Schema | Exception] = {}
        for shard in shards:
            if shard.path in out:
                continue
            reader = get("reader", shard.reader)()
            try:
                fs = open_fs(shard.path, self.storage_options, self.retries)[0] if shard.reader != "memory" else None
                out[shard.path] = reader.schema(fs, shard)
            except Exception as exc:
                out[shard.path] = exc
        return out

    def check_columns(self, shards: list[Shard]) -> pa.Schema:
        """Every readable file must have the configured columns; returns the unified schema.
        Unreadable files are left for the read stage to quarantine."""
        schemas = self.file_schemas(shards)
        good = []
        rel = {s.path: s.rel_path for s in shards}
        for path, schema in schemas.items():
            if isinstance(schema, Exception):
                continue
            if len(schema) == 0:
                continue  # e.g. a JSONL file with no valid line in its head: rows get quarantined
            missing = [c for c in self.required_columns() if c not in schema.names]
            if missing:
                raise MissingColumnError(
                    f"{rel[path]}: column {missing[0]!r} not found (configured as "
                    f"{self._role(missing[0])}); the file has columns: {', '.join(schema.names) or '(none)'}"
                )
            self._check_types(rel[path], schema)
            good.append(schema)
        if not good:
            return pa.schema([])
        try:
            return pa.unify_schemas(good, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"input files have incompatible schemas: {exc}") from None

    def _check_types(self, file: str, schema: pa.Schema) -> None:
        """Text columns must hold text (or, with cast_text, scalars); ids and sources scalars."""
        for column in self.text_columns():
            dtype = schema.field(column).type
            if is_text_type(dtype) or (self.cast_text and is_scalar_type(dtype)):
                continue
            hint = ("; set source.cast_text: true to cast it to strings" if is_scalar_type(dtype)
                    else "; nested values cannot be used as text, even with source.cast_text")
            raise InputError(f"{file}: column {column!r} ({self._role(column)}) has type {dtype}, "
                             f"expected strings or binary UTF-8 text{hint}")
        for column in (self.id_column, self.source_column):
            if column and not is_scalar_type(dtype := schema.field(column).type) and not is_text_type(dtype):
                raise InputError(f"{file}: column {column!r} ({self._role(column)}) has type {dtype}, "
                                 "expected strings or numbers")

    def _role(self, column: str) -> str:
        for role in ("text_column", "instruction_column", "response_column", "id_column", "source_column"):
            if getattr(self, role) == column:
                return role
        return "a column"


def is_text_type(dtype: pa.DataType) -> bool:
    """Strings, binary (decoded as UTF-8), all-null columns and dictionaries of those."""
    if pa.types.is_dictionary(dtype):
        return is_text_type(dtype.value_type)
    return (pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_binary(dtype)
            or pa.types.is_large_binary(dtype) or pa.types.is_null(dtype)
            or str(dtype) in ("string_view", "binary_view"))


def is_scalar_type(dtype: pa.DataType) -> bool:
    """Types with an unambiguous string form: integers, floats, decimals, booleans, dates, times."""
    t = pa.types
    return (t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype) or t.is_boolean(dtype)
            or t.is_temporal(dtype))


def iter_texts(paths: str | list[str], text_column: str = "text", limit: int | None = None,
               **source_params) -> Iterator[str]:
    """Yield the non-empty texts of an input, in order (for proxy training and targets)."""
    from ..stages.ingest import Ingest

    source = Source(paths=paths, text_column=text_column, **source_params)
    source.validate_params()
    ingest = Ingest(source)
    count = 0
    for shard in source.shards():
        for view, _ in ingest.views(shard):
            for text in view.column("text").to_pylist():
                yield text
                count += 1
                if limit is not None and count >= limit:
                    return
