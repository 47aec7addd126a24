"""Readers: Parquet, JSONL, Arrow IPC, save_to_disk datasets and in-memory tables."""

from __future__ import annotations

from ..registry import import_submodules
from .base import Reader, ReadItem, Shard
from .source import Source, iter_texts

import_submodules(__name__, __path__)

__all__ = ["Reader", "ReadItem", "Shard", "Source", "iter_texts"]
