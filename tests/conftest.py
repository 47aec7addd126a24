"""Shared fixtures: the repository's data_samples and helpers to run recipes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A private copy of the sample corpus (4 Parquet shards)."""
    dst = tmp_path / "corpus"
    shutil.copytree(SAMPLES / "corpus", dst)
    return dst


def base_recipe(paths, out, **extra) -> dict:
    recipe = {
        "source": {"paths": str(paths), "text_column": "text", "id_column": "id", "source_column": "source"},
        "scorers": ["length", "compression", "charstats"],
        "select": [
            {"type": "threshold", "rules": {"length.words": {"min": 20}, "charstats.alpha_frac": {"min": 0.4}}},
            {"type": "top_k", "score": "compression.ratio", "keep": "high"},
        ],
        "budget": {"tokens": 100_000},
        "output": {"path": str(out), "target_file_bytes": 200_000},
        "execution": {"scheduler": "synchronous", "progress": False},
        "seed": 0,
    }
    recipe.update(extra)
    return recipe


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def data_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


def read_dir(folder: Path):
    files = sorted(folder.glob("*.parquet"))
    return [pq.read_table(f) for f in files]


def fault_recipe(tmp_path: Path, corpus: Path, rows_per_shard: int, target_file_bytes: int) -> Path:
    """The fault-injection recipe: exact dedup and cheap scorers over many small shards and
    output files, so a kill lands in every stage."""
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "unused")
    recipe["source"]["rows_per_shard"] = rows_per_shard
    recipe["scorers"] = ["exact_hash", "length", "compression", "charstats"]
    recipe["select"].insert(0, {"type": "exact_dedup", "keep": "first"})
    recipe["output"]["target_file_bytes"] = target_file_bytes
    return write_recipe(tmp_path / "recipe.yaml", recipe)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Waits for a ``datadiet`` subprocess, asserts it succeeded, returns its stderr."""
    _, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return stderr
