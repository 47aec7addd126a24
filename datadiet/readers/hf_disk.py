"""Reader for a dataset saved with ``datasets.Dataset.save_to_disk`` (a directory holding
``state.json`` and Arrow stream files). Each data file is one shard."""

from __future__ import annotations

import json
import posixpath

from ..registry import register
from .arrow import ArrowReader
from .base import Shard, file_stat


@register("reader", "hf_disk")
class HfDiskReader(ArrowReader):
    """Reads a ``save_to_disk`` directory through its ``state.json`` file list.

    Example::

        HfDiskReader().discover(fs, "/data/saved_ds", "saved_ds", 100_000, {})
    """

    extensions = ()

    @staticmethod
    def is_dataset_dir(fs, path: str) -> bool:
        return fs.isdir(path) and fs.exists(posixpath.join(path, "state.json"))

    def discover(self, fs, path, rel_path, rows_per_shard, storage_options):
        with fs.open(posixpath.join(path, "state.json"), "r") as fh:
            state = json.load(fh)
        shards = []
        for entry in state.get("_data_files", []):
            file_path = posixpath.join(path, entry["filename"])
            size, mtime = file_stat(fs, file_path)
            shards.append(Shard(reader="hf_disk", path=file_path,
                                rel_path=posixpath.join(rel_path, entry["filename"]),
                                size=size, mtime=mtime, storage_options=storage_options))
        return shards
