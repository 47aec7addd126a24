"""Stop rule: power-law fit on synthetic and real curves, thresholds, plot, bad curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datadiet.cli import main
from datadiet.errors import ConfigError, InputError
from datadiet.planning.stop_rule import fit_stop_rule, power_law, read_curve

E, A, ALPHA = 2.0, 8.0, 0.35


def write_csv(path, steps, losses, extra: dict | None = None):
    cols = {"step": steps, "loss": losses, **(extra or {})}
    lines = [",".join(cols)] + [",".join(str(v) for v in row) for row in zip(*cols.values())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def synthetic(tmp_path):
    steps = np.unique(np.geomspace(10, 5000, 40).round())
    noise = np.random.default_rng(0).normal(0, 0.002, len(steps))
    return write_csv(tmp_path / "loss.csv", steps.astype(int), power_law(steps, E, A, ALPHA) * (1 + noise))


def test_recovers_a_synthetic_power_law_within_5_percent(synthetic):
    rule = fit_stop_rule(read_curve(synthetic, flops_per_step=1e12), threshold=1e-16)
    for name, true in (("E", E), ("A", A), ("alpha", ALPHA)):
        assert rule.params[name] == pytest.approx(true, rel=0.05), name
        assert 0 < rule.stderr[name] < 0.05 * true
    # -dL/dC = alpha A t^(-alpha-1) / c equals the threshold at the stop step
    p, c = rule.params, 1e12
    assert p["alpha"] * p["A"] * rule.stop_step ** (-p["alpha"] - 1) / c == pytest.approx(1e-16, rel=1e-6)
    assert rule.stop_flops == pytest.approx(rule.stop_step * c)
    assert rule.stop_loss == pytest.approx(power_law(rule.stop_step, p["E"], p["A"], p["alpha"]))


def test_threshold_from_the_remaining_budget(synthetic):
    curve = read_curve(synthetic, flops_per_step=1e12)
    rule = fit_stop_rule(curve, remaining_flops=1e16)
    p = rule.params
    last = 5000
    expected = (power_law(last, p["E"], p["A"], p["alpha"]) - power_law(last + 1e4, p["E"], p["A"], p["alpha"])) / 1e16
    assert rule.threshold == pytest.approx(expected)
    # the marginal rate at the stop step is the budget's average rate, so it lies inside the budget
    assert last < rule.stop_step < last + 1e4
    with pytest.raises(ConfigError, match="exactly one"):
        fit_stop_rule(curve)


def test_flops_from_tokens_and_model_size(tmp_path):
    steps = np.arange(10, 110, 10)
    path = write_csv(tmp_path / "c.csv", steps, power_law(steps, E, A, ALPHA), {"tokens": steps * 4096})
    assert read_curve(path, params=1e6).flops_per_step == pytest.approx(6 * 1e6 * 4096)
    with pytest.raises(ConfigError, match="--params"):
        fit_stop_rule(read_curve(path), threshold=1e-9)


def test_too_short_or_flat_curves_are_errors_naming_the_file(tmp_path):
    short = write_csv(tmp_path / "short.csv", [1, 2, 3, 4], [4.0, 3.0, 2.5, 2.2])
    with pytest.raises(InputError, match="short.csv.*at least 5"):
        fit_stop_rule(read_curve(short, flops_per_step=1.0), threshold=1e-3)
    rising = write_csv(tmp_path / "rising.csv", list(range(1, 11)), [2.0 + 0.1 * i for i in range(10)])
    with pytest.raises(InputError, match="rising.csv.*does not decrease"):
        fit_stop_rule(read_curve(rising, flops_per_step=1.0), threshold=1e-3)
    bad = tmp_path / "bad.csv"
    bad.write_text("iteration,value\n1,2\n")
    with pytest.raises(InputError, match="bad.csv.*'step' and 'loss'"):
        read_curve(bad)
    assert main(["stop-rule", str(short), "--flops-per-step", "1", "--threshold", "1e-3"]) == 2


def test_cli_on_a_proxy_training_log(tmp_path, capsys):
    """The JSONL ``datadiet proxy train`` writes; FLOPs per step from the model saved beside it."""
    from datadiet.models.loading import count_parameters

    steps = np.arange(1, 41) * 25
    log = tmp_path / "run" / "training_log.jsonl"
    log.parent.mkdir()
    log.write_text("".join(json.dumps({"step": int(s), "loss": float(power_law(s, E, A, ALPHA)), "lr": 1e-3,
                                       "tokens": int(s) * 512, "seconds": 0.1}) + "\n" for s in steps))
    assert count_parameters(log.parent) == 0  # no model beside it: FLOPs must be given
    assert main(["stop-rule", str(log), "--params", "2M", "--threshold", "1e-15", "--json", str(tmp_path / "r.json"),
                 "--plot", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "stop at:" in out and "alpha = 0.35" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["flops_per_step"] == pytest.approx(6 * 2e6 * 512)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_proxy_log_uses_the_saved_model(gpt2_proxy):
    from datadiet.models.loading import count_parameters

    curve = read_curve(gpt2_proxy.log_path)
    n = count_parameters(gpt2_proxy.out_dir)
    tokens = json.loads(gpt2_proxy.log_path.read_text().splitlines()[-1])["tokens"]
    assert curve.flops_per_step == pytest.approx(6 * n * tokens / curve.steps[-1])
    rule = fit_stop_rule(curve, threshold=1e-12)
    assert rule.params["A"] > 0 and rule.stop_step > 0

