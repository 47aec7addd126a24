"""URL outputs through fsspec: ``memory://`` in process, and a real S3-compatible server
(moto in server mode on 127.0.0.1) for the commit protocol, ownership and kill -9 resume."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

import datadiet
from datadiet.pipeline.ownership import OutputConflictError
from tests.conftest import ROOT, base_recipe, fault_recipe, finish, write_recipe

BUCKET = "runs"


def _pipeline(corpus, output, work_dir, **extra):
    recipe = base_recipe(corpus / "*.parquet", output)
    recipe["source"]["rows_per_shard"] = 200
    recipe["output"]["target_file_bytes"] = 100_000
    recipe["execution"] = {"scheduler": "synchronous", "progress": False, "work_dir": str(work_dir)}
    recipe.update(extra)
    return datadiet.Pipeline.from_config(recipe)


def _local_parts(out, kind):
    return [p.read_bytes() for p in sorted((out / kind).glob("*.parquet"))]


def test_memory_url_output_publishes_content_addressed_parts_and_manifest_last(tmp_path, corpus):
    import fsspec

    url = f"memory://datadiet-test-{os.getpid()}/run"
    result = _pipeline(corpus, url, tmp_path / "work").run()
    local = _pipeline(corpus, tmp_path / "local", tmp_path / "unused").run()
    fs = fsspec.filesystem("memory")
    manifest = json.loads(fs.cat_file(f"{url}/manifest.json"))
    assert result.output_dir == url and manifest["counts"] == local.manifest["counts"]
    data = manifest["outputs"]["data"]
    assert data and all(rel.startswith("data/part-") and len(rel.split("-")[-1]) == len("0123456789abcdef.parquet")
                        for rel in data)
    # the store holds the bytes of a local run's parts, in the same order
    assert [fs.cat_file(f"{url}/{rel}") for rel in data] == _local_parts(tmp_path / "local", "data")
    rejected = [fs.cat_file(f"{url}/{rel}") for rel in manifest["outputs"]["rejected"]]
    assert rejected == _local_parts(tmp_path / "local", "rejected")
    assert fs.exists(f"{url}/report.html") and not fs.exists(f"{url}/.datadiet/in_progress.json")
    assert any(rel.startswith("scores/length/") for rel in manifest["store"]["files"])
    assert len(result.load()) == local.manifest["counts"]["selected_rows"]
    # a rerun uploads nothing: every object is already there under its content name
    again = _pipeline(corpus, url, tmp_path / "work").run()
    assert again.manifest["store"]["uploaded_bytes"] == 0 and again.manifest["outputs"] == manifest["outputs"]


def test_url_output_refuses_foreign_objects_and_another_run_without_overwrite(tmp_path, corpus):
    import fsspec

    fs = fsspec.filesystem("memory")
    url = f"memory://datadiet-test-{os.getpid()}/owned"
    fs.pipe_file(f"{url}/data/users-own.parquet", b"precious")
    with pytest.raises(OutputConflictError, match="data/users-own.parquet"):
        _pipeline(corpus, url, tmp_path / "w1").run()
    assert fs.cat_file(f"{url}/data/users-own.parquet") == b"precious"
    fs.rm_file(f"{url}/data/users-own.parquet")

    first = _pipeline(corpus, url, tmp_path / "w1").run()
    with pytest.raises(OutputConflictError, match="different datadiet run"):
        _pipeline(corpus, url, tmp_path / "w2", seed=5, budget={"documents": 50}).run()
    assert fs.exists(f"{url}/manifest.json"), "a refused run must leave the old run intact"
    second = _overwrite(corpus, url, tmp_path / "w2")
    old = set(first.manifest["store"]["files"]) - set(second.manifest["store"]["files"])
    assert old and not any(fs.exists(f"{url}/{rel}") for rel in old), "the old run's objects are removed"
    assert all(fs.exists(f"{url}/{rel}") for rel in second.manifest["store"]["files"])


def _overwrite(corpus, url, work_dir):
    pipe = _pipeline(corpus, url, work_dir, seed=5, budget={"documents": 50})
    pipe.overwrite = True
    return pipe.run()


def test_url_output_may_not_overlap_a_url_input(tmp_path, corpus):
    from datadiet.errors import ConfigError

    pipe = datadiet.Pipeline(source=datadiet.Source(paths="memory://bucket/ds/data/*.parquet"),
                             output="memory://bucket/ds", scheduler="synchronous")
    with pytest.raises(ConfigError, match="overlaps the input path"):
        from datadiet.pipeline.object_store import check_not_input_url

        check_not_input_url(pipe.output, {"input": pipe.source})


# -- a real S3-compatible server -----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (dev extra) is not installed")
    pytest.importorskip("s3fs", reason="s3fs (dev extra) is not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield env, client
    server.stop()


def _objects(client, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) + 1:]] = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def _published(client, prefix: str) -> dict[str, bytes]:
    """What must not change after a kill and rerun: data/rejected/quarantine objects and counts."""
    objects = _objects(client, prefix)
    kept = {k: v for k, v in objects.items() if k.split("/", 1)[0] in ("data", "rejected", "quarantine")}
    manifest = json.loads(objects["manifest.json"])
    counts = manifest["counts"]
    counts.pop("reused_shards", None)
    assert sorted(kept) == sorted(r for kind in ("data", "rejected", "quarantine")
                                  for r in manifest["outputs"].get(kind, [])), "objects beside the manifest's"
    return {"objects": kept, "counts": counts}


def _start(recipe, url, work_dir, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "datadiet", "run", str(recipe), "-o", url, "--work-dir",
                             str(work_dir), "--scheduler", "synchronous", "-q"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _recipe(tmp_path, corpus):
    return fault_recipe(tmp_path, corpus, rows_per_shard=100, target_file_bytes=30_000)


@pytest.mark.slow
def test_s3_run_killed_at_seeded_moments_resumes_to_identical_objects(tmp_path, corpus, s3_server):
    env, client = s3_server
    recipe = _recipe(tmp_path, corpus)
    started = time.monotonic()
    finish(_start(recipe, f"s3://{BUCKET}/reference", tmp_path / "work-ref", env))
    wall = time.monotonic() - started
    reference = _published(client, "reference")
    assert reference["counts"]["selected_rows"] > 0 and len(reference["objects"]) >= 4

    def mid_publish(prefix):  # some parts uploaded, the manifest (commit marker) not yet
        def seen():
            keys = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
            names = {k["Key"][len(prefix) + 1:] for k in keys}
            return any(n.startswith(("data/", "scores/")) for n in names) and "manifest.json" not in names
        return seen

    rng = random.Random(7)
    moments = [("mid-publish", None), ("seeded time", rng.uniform(0.2, 0.8) * wall),
               ("mid-publish, work dir lost", None)]
    killed = []
    for i, (name, at) in enumerate(moments):
        prefix, work = f"kill-{i}", tmp_path / f"work-{i}"
        proc = _start(recipe, f"s3://{BUCKET}/{prefix}", work, env)
        deadline = time.monotonic() + (at if at is not None else 300)
        condition = mid_publish(prefix)
        while proc.poll() is None:
            if (at is None and condition()) or (at is not None and time.monotonic() >= deadline):
                proc.send_signal(signal.SIGKILL)
                killed.append(name)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
        if at is None and name in killed:
            assert "manifest.json" not in _objects(client, prefix), "killed mid-publish but a manifest exists"
        if "lost" in name:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        finish(_start(recipe, f"s3://{BUCKET}/{prefix}", work, env))
        assert _published(client, prefix) == reference, f"rerun after a kill at {name!r} differs"
        leftovers = [k for k in _objects(client, prefix) if k.startswith(".datadiet/in_progress")]
        assert not leftovers
    print(f"killed at: {killed}")
    assert "mid-publish" in killed, "the publish window was never reached"


def test_s3_output_through_the_cli_and_inspect(tmp_path, corpus, s3_server):
    env, client = s3_server
    recipe = _recipe(tmp_path, corpus)
    finish(_start(recipe, f"s3://{BUCKET}/cli", tmp_path / "work", env))
    objects = _objects(client, "cli")
    manifest = json.loads(objects["manifest.json"])
    table = pq.read_table(io.BytesIO(objects[manifest["outputs"]["data"][0]]))
    assert table.num_rows > 0 and "report.html" in objects
    proc = subprocess.run([sys.executable, "-m", "datadiet", "inspect", f"s3://{BUCKET}/cli"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"kept:         {manifest['counts']['selected_rows']:,}" in proc.stdout
    assert f"s3://{BUCKET}/cli/data" in proc.stdout
    # a second, different run into the same prefix is refused, naming the flag
    other = yaml.safe_load(recipe.read_text())
    other["seed"] = 3
    other = write_recipe(tmp_path / "other.yaml", other)
    proc = _start(other, f"s3://{BUCKET}/cli", tmp_path / "work2", env)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "--overwrite" in stderr and "Traceback" not in stderr
