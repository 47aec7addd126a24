"""Several named targets: two DSIR scorers fitted on different targets, a second-round
scorer reading their columns, and a mixture selector with per-target quotas."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

import datadiet
from datadiet.errors import ConfigError
from tests.conftest import SAMPLES


def _code_target(path: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rows = []
    for name in ("argparse.py", "shutil.py", "tarfile.py", "zipfile.py", "logging/__init__.py"):
        if not (stdlib / name).exists():
            continue
        text = (stdlib / name).read_text(encoding="utf-8")
        rows += [{"id": f"{name}:{i}", "text": text[i:i + 1500]} for i in range(0, min(len(text), 30000), 1500)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tmp_path, targets):
    return {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "id_column": "id", "source_column": "source"},
        "targets": targets,
        "scorers": [
            {"type": "dsir", "name": "dsir_prose", "target": "prose", "num_buckets": 4096},
            {"type": "dsir", "name": "dsir_code", "target": "code", "num_buckets": 4096},
            {"type": "dsir_target", "columns": ["dsir_prose", "dsir_code"]},
        ],
        "select": [{"type": "dsir_mixture", "targets": {"dsir_prose": 0.5, "dsir_code": 0.5}}],
        "budget": {"documents": 200},
        "output": {"path": str(tmp_path / "out")},
        "execution": {"scheduler": "synchronous", "progress": False},
    }


def test_two_targets_with_quotas(tmp_path):
    targets = {"prose": {"paths": str(SAMPLES / "target" / "prose.jsonl"), "id_column": "id"},
               "code": {"paths": str(_code_target(tmp_path / "code.jsonl")), "id_column": "id"}}
    pipe = datadiet.Pipeline.from_config(_recipe(tmp_path, targets))
    plan = pipe.validate()
    assert [[s.name for s in r] for r in plan.rounds] == [["dsir_prose", "dsir_code"], ["dsir_target"]]
    m = pipe.run().manifest
    by_source = m["counts"]["by_source"]
    assert m["counts"]["selected_rows"] <= 200
    assert by_source["prose"]["selected"] >= 80 and by_source["code"]["selected"] >= 80
    assert len(list((tmp_path / "out" / "fits").glob("dsir_*/*/state.npz"))) == 2


def test_unknown_target_name_is_an_error(tmp_path):
    targets = {"prose": {"paths": str(SAMPLES / "target" / "prose.jsonl")}}
    with pytest.raises(ConfigError, match="'code'"):
        datadiet.Pipeline.from_config(_recipe(tmp_path, targets)).run()
