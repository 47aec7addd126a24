"""Fingerprints: stable short hashes of configuration and inputs (datasets-style chaining:
a stage's fingerprint = hash of its inputs' fingerprints + qualname@version + parameters)."""

from __future__ import annotations

import json
from pathlib import Path

import xxhash


def _default(obj):
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_config"):
        return obj.to_config()
    return repr(obj)


def fingerprint(*parts) -> str:
    """128-bit hex digest of JSON-encoded ``parts`` (keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=_default, separators=(",", ":"))
    return xxhash.xxh3_128_hexdigest(blob.encode("utf-8"))


def component_fingerprint(component, *inputs) -> str:
    cls = type(component)
    return fingerprint(f"{cls.__module__}.{cls.__qualname__}@{cls.version}",
                       component.non_default_params(), *inputs)


def table_fingerprint(table) -> str:
    """Hash of every buffer of an in-memory Arrow table (GB/s with xxh3)."""
    h = xxhash.xxh3_128()
    h.update(table.schema.to_string().encode())
    for column in table.columns:
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(memoryview(buf))
    return h.hexdigest()


def files_fingerprint(paths) -> str:
    """Hash of the named files' bytes (model weights, tokenizers), sorted by name."""
    h = xxhash.xxh3_128()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()
