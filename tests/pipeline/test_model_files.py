"""A corrupt model file fails in validate(), naming the model directory and the file,
before any shard is scored."""

from __future__ import annotations

import shutil
import struct

import pytest

import datadiet
from datadiet.errors import ModelError
from datadiet.models.loading import check_model_dir
from tests.conftest import base_recipe
from tests.proxy_fixtures import gpt2_proxy  # noqa: F401


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _garbage(f):
    f.write_bytes(b"\x00garbage, not a safetensors file" * 10)


def _huge_header(f):
    f.write_bytes(struct.pack("<Q", 1 << 40) + f.read_bytes()[8:])


def _bad_json(f):
    data = f.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    f.write_bytes(data[:8] + b"{" * n + data[8 + n:])


@pytest.mark.parametrize("corrupt,needle", [(_truncate, "truncated"), (_garbage, "does not fit"),
                                            (_huge_header, "does not fit"), (_bad_json, "not JSON")])
def test_corrupt_safetensors_fail_in_validate(tmp_path, corpus, gpt2_proxy, corrupt, needle):  # noqa: F811
    model = tmp_path / "model"
    shutil.copytree(gpt2_proxy.out_dir, model)
    assert check_model_dir(model) == model.resolve()
    corrupt(model / "model.safetensors")
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out", select=[], budget=None)
    recipe["scorers"] = ["length", {"type": "loss", "model": str(model)}]
    with pytest.raises(ModelError) as err:
        datadiet.Pipeline.from_config(recipe).run()
    message = str(err.value)
    assert f"model directory {model.resolve()}" in message and "model.safetensors" in message
    assert needle in message
    assert not (tmp_path / "out" / "scores").exists()
