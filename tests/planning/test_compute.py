"""Compute planner: Chinchilla tokens, budgets, repetition, GPUs, and its CLI errors."""

from __future__ import annotations

import math

import pytest

from datadiet.cli import main
from datadiet.errors import BudgetError, ConfigError
from datadiet.planning.compute import budget_flops, plan_compute
from datadiet.planning.gpus import resolve_gpu
from datadiet.planning.shapes import parse_count


def test_70b_model_wants_1_4t_tokens_at_20_per_param():
    plan = plan_compute(params=70e9)
    assert plan.training_tokens == pytest.approx(1.4e12)
    assert plan.flops == pytest.approx(6 * 70e9 * 1.4e12)  # C = 6ND = 5.88e23
    assert plan.selection_tokens == math.ceil(1.4e12 / 4)  # 4 epochs of repetition allowed


def test_coefficients_are_configurable():
    plan = plan_compute(params=1e9, tokens_per_param=30, max_epochs=2)
    assert plan.training_tokens == pytest.approx(3e10)
    assert plan.selection_tokens == math.ceil(1.5e10)


def test_flop_budget_gives_tokens_and_the_compute_optimal_model():
    flops = 6 * 7e9 * 1e12
    plan = plan_compute(params=7e9, flops=flops)
    assert plan.training_tokens == pytest.approx(1e12)
    # N* = sqrt(C / (6 * 20)), D* = 20 N*
    assert plan.optimal_params_for_budget == pytest.approx(math.sqrt(flops / 120))
    assert plan.optimal_tokens_for_budget == pytest.approx(20 * math.sqrt(flops / 120))


def test_selection_fraction_of_a_corpus():
    plan = plan_compute(params=70e9, corpus_tokens=1e13)
    assert plan.selection_fraction == pytest.approx(1.4e12 / 4 / 1e13)
    small = plan_compute(params=70e9, corpus_tokens=2e11)  # 7 epochs needed: past the ~4 that are nearly free
    assert small.selection_fraction == 1.0
    assert small.epochs == pytest.approx(7.0)
    assert small.selection_tokens == int(2e11)
    assert any("too small" in n for n in small.notes)


def test_flop_budget_without_model_size_is_an_error():
    with pytest.raises(BudgetError, match="model size"):
        plan_compute(params=None, flops=1e21)


def test_gpu_hours_are_peak_times_utilisation():
    h100 = resolve_gpu("H100")
    flops, how = budget_flops(gpu_hours=1000, peak_flops=h100.peak_flops, utilization=0.5)
    assert flops == pytest.approx(1000 * 3600 * 989e12 * 0.5)
    assert "GPU-hours" in how
    with pytest.raises(ConfigError, match="--gpu"):
        budget_flops(gpu_hours=10, peak_flops=None)


def test_known_and_unknown_gpus():
    assert resolve_gpu("a100-80gb").memory_bytes == 80 * 2**30
    assert resolve_gpu("4090").name == "RTX-4090"
    with pytest.raises(ConfigError, match="--gpu-memory.*--gpu-peak-flops"):
        resolve_gpu("MI300X")
    with pytest.raises(ConfigError, match="unknown GPU 'MI300X'"):
        resolve_gpu("MI300X", memory="192GB")
    custom = resolve_gpu("MI300X", memory="192GB", peak_flops=1.3e15)
    assert (custom.memory_bytes, custom.peak_flops) == (192 * 10**9, 1.3e15)


def test_parse_count():
    assert parse_count("7B", "--params") == 7e9
    assert parse_count("1.4T", "x") == 1.4e12
    assert parse_count("125m", "x") == 125e6
    with pytest.raises(ConfigError, match="--params"):
        parse_count("seven", "--params")


def test_cli_errors_name_the_flag(capsys):
    assert main(["plan", "--compute", "--flops", "1e21"]) == 2
    assert "--params" in capsys.readouterr().err
    assert main(["plan", "--compute", "--params", "1B", "--gpu", "MI300X"]) == 2
    assert "--gpu-peak-flops" in capsys.readouterr().err


def test_cli_compute_plan_prints_the_memory_table(capsys):
    assert main(["plan", "--compute", "--params", "7B", "--gpu", "A100-80GB", "--methods", "full",
                 "--precisions", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "140B training tokens" in out
    assert "full    bf16" in out
