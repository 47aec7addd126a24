"""validate-proxy: Spearman rank correlation of two trained proxies' losses; shapes read
from their config.json match their weights."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from datadiet.cli import main
from datadiet.errors import ModelError
from datadiet.models.loading import count_parameters
from datadiet.planning.proxy_validity import validate_proxy
from datadiet.planning.shapes import shape_from_config
from tests.proxy_fixtures import direct_loss, plain_model, proxy_texts

PROBE = proxy_texts()[60:200]  # paragraphs the proxies were trained on


def short_probe(*proxies) -> list[str]:
    """Probe texts within every proxy's 64-token context, so a plain forward pass scores them whole."""
    tokenizers = [plain_model(p.out_dir)[1] for p in proxies]
    return [t for t in PROBE if all(len(tok(t)["input_ids"]) <= 64 for tok in tokenizers)][:40]


def test_rank_correlation_of_two_proxies(gpt2_proxy, llama_proxy):
    probe = short_probe(gpt2_proxy, llama_proxy)
    assert len(probe) >= 10
    check = validate_proxy(str(gpt2_proxy.out_dir), str(llama_proxy.out_dir), probe, threshold=0.7)
    small = [direct_loss(gpt2_proxy.out_dir, t)[0] for t in probe]
    large = [direct_loss(llama_proxy.out_dir, t)[0] for t in probe]
    expected = spearmanr(small, large).statistic
    assert check.n == len(probe)
    assert check.rho == pytest.approx(expected, abs=1e-6)
    assert check.proxy_mean_loss == pytest.approx(np.mean(small), rel=1e-4)
    assert check.ok == (expected >= 0.7)
    strict = validate_proxy(str(gpt2_proxy.out_dir), str(llama_proxy.out_dir), probe,
                            threshold=min(1.0, expected + 0.01))
    assert not strict.ok and "poor stand-in" in strict.message()


def test_a_proxy_agrees_with_itself(gpt2_proxy):
    check = validate_proxy(str(gpt2_proxy.out_dir), str(gpt2_proxy.checkpoints[-1]), PROBE[:40])
    assert check.rho == pytest.approx(1.0)  # the last checkpoint is the final model
    assert check.ok


def test_cli_warns_below_the_threshold(gpt2_proxy, llama_proxy, tmp_path, capsys):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": PROBE[:40]}), tmp_path / "probe.parquet")
    args = ["validate-proxy", "--proxy", str(gpt2_proxy.out_dir), "--reference", str(llama_proxy.out_dir),
            "--input", str(tmp_path / "probe.parquet"), "--sample", "40", "--json", str(tmp_path / "v.json")]
    assert main(args + ["--threshold", "1.0"]) == 0
    captured = capsys.readouterr()
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["n"] == 40 and "Spearman rho" in captured.out
    assert ("warning: proxy rank correlation" in captured.err) == (result["rho"] < 1.0)
    assert main(args + ["--threshold", "-1"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["validate-proxy", "--proxy", str(tmp_path / "nope"), "--reference", str(llama_proxy.out_dir),
                 "--input", str(tmp_path / "probe.parquet")]) == 2
    assert "nope" in capsys.readouterr().err


def test_missing_model_is_a_model_error(tmp_path, gpt2_proxy):
    with pytest.raises(ModelError, match="missing"):
        validate_proxy(str(tmp_path / "missing"), str(gpt2_proxy.out_dir), PROBE[:5])


def test_shapes_from_the_proxies_config_json(gpt2_proxy, llama_proxy):
    for proxy in (gpt2_proxy, llama_proxy):
        shape = shape_from_config(proxy.out_dir / "config.json")
        assert shape.derived_params == count_parameters(proxy.out_dir)
    assert not shape_from_config(gpt2_proxy.out_dir).gated and shape_from_config(llama_proxy.out_dir).gated
