"""A run never deletes or replaces files it did not write, never writes into its inputs,
refuses a different run's directory without overwrite, and holds a lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import ConfigError
from datadiet.pipeline import ownership
from datadiet.rundir import RunDir

from ..conftest import ROOT, base_recipe, data_bytes, write_recipe


def _run(paths, out, **extra):
    return datadiet.Pipeline.from_config(base_recipe(paths, out, **extra)).run()


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_inside_input_dataset_is_refused_before_compute(tmp_path, corpus):
    """The reported data-loss command: --input 'ds/data/*.parquet' -o ds."""
    ds = tmp_path / "ds"
    shutil.copytree(corpus, ds / "data")
    before = _snapshot(ds)
    recipe = write_recipe(tmp_path / "r.yaml", base_recipe(ds / "data" / "*.parquet", tmp_path / "unused"))
    proc = subprocess.run([sys.executable, "-m", "datadiet", "run", str(recipe), "--input", str(ds / "data" / "*.parquet"),
                           "-o", str(ds), "--scheduler", "synchronous", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "overlaps the input path" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(ds) == before
    assert not (ds / "scores").exists()


@pytest.mark.parametrize("out_rel", ["corpus", "."])
def test_output_overlapping_input_is_refused(tmp_path, corpus, out_rel):
    with pytest.raises(ConfigError, match="overlaps the input path"):
        _run(corpus / "*.parquet", tmp_path / out_rel)


def test_output_overlapping_target_is_refused(tmp_path, corpus, samples):
    target_dir = tmp_path / "target"
    shutil.copytree(samples / "target", target_dir)
    recipe = base_recipe(corpus / "*.parquet", target_dir,
                         target={"paths": str(target_dir / "prose.jsonl"), "id_column": "id"})
    with pytest.raises(ConfigError, match="target"):
        datadiet.Pipeline.from_config(recipe).validate()


def test_users_parquet_in_output_data_is_left_alone_and_named(tmp_path, corpus):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    mine = out / "data" / "my_own.parquet"
    shutil.copy(next(corpus.glob("*.parquet")), mine)
    before = mine.read_bytes()
    with pytest.raises(ownership.OutputConflictError, match="my_own.parquet"):
        _run(corpus / "*.parquet", out)
    assert mine.read_bytes() == before
    # --overwrite replaces only datadiet runs, never a user's files
    with pytest.raises(ownership.OutputConflictError, match="my_own.parquet"):
        datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", out), overwrite=True).run()
    assert mine.read_bytes() == before


def test_unrelated_files_elsewhere_in_output_are_kept(tmp_path, corpus):
    out = tmp_path / "out"
    out.mkdir()
    (out / "NOTES.md").write_text("my notes")
    first = _run(corpus / "*.parquet", out)
    assert (out / "NOTES.md").read_text() == "my notes"
    assert first.manifest["counts"]["selected_rows"] > 0


def test_different_run_needs_overwrite_then_replaces_only_its_files(tmp_path, corpus):
    out = tmp_path / "out"
    first = _run(corpus / "*.parquet", out, budget={"tokens": 200_000}, output={"path": str(out), "target_file_bytes": 50_000})
    n_first = len(first.manifest["outputs"]["data"])
    assert n_first > 1
    with pytest.raises(ownership.OutputConflictError, match="different datadiet run"):
        _run(corpus / "*.parquet", out, budget={"tokens": 20_000})
    # the refused run changed nothing: the old manifest still describes the old data
    assert json.loads((out / "manifest.json").read_text())["budget"]["limit"] == 200_000
    (out / "extra.txt").write_text("keep me")
    second = datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", out, budget={"tokens": 20_000}),
                                           overwrite=True).run()
    files = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert files == [f"part-{i:05d}.parquet" for i in range(len(second.manifest["outputs"]["data"]))]
    assert sum(pq.read_metadata(out / "data" / f).num_rows for f in files) == second.manifest["counts"]["selected_rows"]
    assert (out / "extra.txt").read_text() == "keep me"
    record = ownership.read_commit_record(RunDir(out))
    assert set(record["files"]) >= {f"data/{f}" for f in files}


def test_same_run_reruns_without_overwrite(tmp_path, corpus):
    out = tmp_path / "out"
    first = _run(corpus / "*.parquet", out)
    second = _run(corpus / "*.parquet", out)
    assert data_bytes(out) and second.manifest["counts"] == {**first.manifest["counts"], "reused_shards": 4}


def test_live_run_lock_refuses_a_second_run(tmp_path, corpus):
    out = tmp_path / "out"
    out.mkdir()
    lock = ownership.RunLock(RunDir(out))
    lock.acquire()
    try:
        with pytest.raises(ownership.OutputConflictError, match=f"pid {os.getpid()}"):
            _run(corpus / "*.parquet", out)
    finally:
        lock.release()
    _run(corpus / "*.parquet", out)


def test_stale_lock_of_dead_process_is_taken_over(tmp_path, corpus):
    out = tmp_path / "out"
    (out / ".datadiet").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (out / ".datadiet" / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    assert _run(corpus / "*.parquet", out).manifest["counts"]["selected_rows"] > 0
    assert not (out / ".datadiet" / "lock").exists()


def test_in_progress_marker_replaces_old_manifest(tmp_path, corpus, monkeypatch):
    out = tmp_path / "out"
    _run(corpus / "*.parquet", out)
    from datadiet.pipeline import runner

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_select", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(corpus / "*.parquet", out)
    assert not (out / "manifest.json").exists()
    assert (out / ".datadiet" / "in_progress.json").exists()
    monkeypatch.undo()
    _run(corpus / "*.parquet", out)
    assert (out / "manifest.json").exists() and not (out / ".datadiet" / "in_progress.json").exists()


def test_temp_files_of_killed_attempts_are_removed(tmp_path, corpus):
    out = tmp_path / "out"
    _run(corpus / "*.parquet", out)
    side = next((out / "scores").rglob("*.parquet"))
    orphans = [side.with_name(f".{side.name}.deadbeef.tmp"), out / ".staging" / ".x.parquet.0123abcd.tmp",
               out / "fits" / "state.npz.tmp"]
    for orphan in orphans:
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"partial")
    user_tmp = out / "scores" / "notes.tmp"
    user_tmp.write_text("not ours by name")
    _run(corpus / "*.parquet", out)
    assert not any(o.exists() for o in orphans)
    assert user_tmp.exists()
    assert not [p for p in out.rglob("*.tmp") if ownership.TEMP_PATTERN.match(p.name)]


def test_python_api_names_missing_filesystem_for_url_input_and_output(tmp_path):
    code = ("import sys; sys.modules['s3fs'] = None\nimport datadiet\n"
            "try:\n    datadiet.Pipeline(source=datadiet.Source(paths='x.parquet'), output='s3://bucket/run')\n"
            "except datadiet.DatadietError as e:\n    print('ERR', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "ERR output: 's3://bucket/run'" in proc.stdout and "datadiet[s3]" in proc.stdout, proc.stderr
    code = ("import sys; sys.modules['s3fs'] = None\nimport datadiet\n"
            "p = datadiet.Pipeline(source=datadiet.Source(paths='s3://bucket/x/*.parquet'), output='out')\n"
            "try:\n    p.validate()\nexcept datadiet.DatadietError as e:\n    print('ERR', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "ERR" in proc.stdout and "s3" in proc.stdout and "Traceback" not in proc.stderr
