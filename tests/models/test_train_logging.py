"""``datadiet proxy train`` reports its steps, loss, throughput and ETA as it goes."""

from __future__ import annotations

import logging
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datadiet.cli import main
from tests.proxy_fixtures import one_torch_thread, proxy_texts  # noqa: F401


@pytest.mark.slow
def test_proxy_train_logs_steps_loss_and_eta(tmp_path, capsys):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": proxy_texts()[:40]}), path)
    try:
        code = main(["proxy", "train", "--input", str(path), "-o", str(tmp_path / "out"), "--layers", "1",
                     "--width", "32", "--heads", "2", "--context", "32", "--vocab", "300", "--steps", "4",
                     "--batch-size", "2", "--warmup", "1", "--log-every", "2", "--device", "cpu"])
    finally:
        logging.getLogger("datadiet").handlers.clear()
    assert code == 0
    err = capsys.readouterr().err
    steps = re.findall(r"proxy train: step (\d)/4 \| loss [\d.]+ \| lr [\d.e+-]+ \| [\d.,kM]+ tokens/s \| "
                       r"elapsed [\d:]+ \| ETA [\d:]+", err)
    assert steps == ["2", "4"], err
    assert "reading texts from" in err and "BPE tokenizer on 40 texts" in err and "saved" in err
