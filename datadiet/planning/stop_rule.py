"""Stopping rule for a training run: fit a saturating power law to its loss curve,

    L(t) = E + A t^(-alpha)        (t: training step)

and find the step where the loss decrease per FLOP, ``-dL/dC = alpha A t^(-alpha-1) / c``
for ``c`` FLOPs per step, falls below a threshold ``tau``::

    t* = (alpha A / (c tau)) ^ (1 / (alpha + 1))

``tau`` is given, or derived from a remaining budget ``R`` FLOPs: the average decrease per
FLOP the fit predicts for spending all of it, ``(L(t_last) - L(t_last + R / c)) / R``; past
``t*`` a FLOP buys less than the budget's average return. Parameter uncertainty is the
square root of the fit's covariance diagonal; ``t*``'s comes from it by the delta method.

Inputs: a CSV with ``step`` and ``loss`` columns (optional ``tokens`` or ``flops``), or the
``training_log.jsonl`` that ``datadiet proxy train`` writes (``step``, ``loss``, ``tokens``);
FLOPs per step are ``6 N`` x tokens per step, with ``N`` given or counted from the model
saved beside the log.

Example::

    curve = read_curve("runs/proxy/training_log.jsonl")
    rule = fit_stop_rule(curve, threshold=1e-15)
    rule.stop_step, rule.stop_flops, rule.params, rule.stderr
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError

MIN_POINTS = 5


@dataclass
class LossCurve:
    """Steps and losses of a run, and FLOPs per step when known."""

    path: str
    steps: np.ndarray
    losses: np.ndarray
    flops_per_step: float | None = None
    flops_source: str = ""


@dataclass
class StopRule:
    """The fit ``E + A t^-alpha``, its uncertainty and the step where training stops paying."""

    path: str
    params: dict[str, float]
    stderr: dict[str, float]
    rmse: float
    threshold: float
    threshold_source: str
    flops_per_step: float
    stop_step: float
    stop_step_stderr: float
    stop_flops: float
    stop_loss: float
    last_step: float
    already_past: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        p, s = self.params, self.stderr
        lines = [
            f"fit:        L(t) = E + A t^-alpha over {self.path}",
            f"            E = {p['E']:.4g} ± {s['E']:.2g}, A = {p['A']:.4g} ± {s['A']:.2g}, "
            f"alpha = {p['alpha']:.4g} ± {s['alpha']:.2g} (rmse {self.rmse:.3g})",
            f"threshold:  {self.threshold:.3g} loss per FLOP ({self.threshold_source})",
            f"FLOPs/step: {self.flops_per_step:.3g}",
            f"stop at:    step {self.stop_step:,.0f} ± {self.stop_step_stderr:,.0f}, {self.stop_flops:.3g} FLOPs, "
            f"predicted loss {self.stop_loss:.4g}",
        ]
        if self.already_past:
            lines.append(f"            the run is already past it (last step {self.last_step:,.0f}): stop now")
        return "\n".join(lines + [f"note:       {n}" for n in self.notes])


def power_law(t, e, a, alpha):
    return e + a * np.power(t, -alpha)


def _model_params_beside(path: Path) -> int | None:
    from ..models.loading import count_parameters

    if any(path.parent.glob("*.safetensors")):
        n = count_parameters(path.parent)
        return n or None
    return None


def read_curve(path: str | Path, params: float | None = None, flops_per_step: float | None = None) -> LossCurve:
    """A loss curve from CSV or JSONL (see the module docstring); InputError naming the file
    when it cannot be read or lacks ``step`` / ``loss``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"loss curve not found: {path}")
    try:
        if path.suffix in (".jsonl", ".json"):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        steps = np.array([float(r["step"]) for r in rows])
        losses = np.array([float(r["loss"]) for r in rows])
        tokens = np.array([float(r["tokens"]) for r in rows]) if rows and all("tokens" in r for r in rows) else None
        flops = np.array([float(r["flops"]) for r in rows]) if rows and all("flops" in r for r in rows) else None
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: expected rows with 'step' and 'loss' (CSV header or JSONL keys): "
                         f"{type(exc).__name__}: {exc}") from None
    order = np.argsort(steps, kind="stable")
    steps, losses = steps[order], losses[order]
    curve = LossCurve(str(path), steps, losses)
    if flops_per_step is not None:
        curve.flops_per_step, curve.flops_source = float(flops_per_step), "given"
    elif flops is not None and steps[-1] > 0:
        curve.flops_per_step, curve.flops_source = float(flops[order][-1] / steps[-1]), "flops column"
    elif tokens is not None and steps[-1] > 0:
        n = params if params is not None else _model_params_beside(path)
        if n:
            curve.flops_per_step = 6.0 * n * float(tokens[order][-1] / steps[-1])
            curve.flops_source = f"6 x {n:.4g} params x {tokens[order][-1] / steps[-1]:.4g} tokens/step"
    return curve


def _check_curve(curve: LossCurve) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(curve.losses) & (curve.steps > 0)
    t, y = curve.steps[ok], curve.losses[ok]
    if len(t) < MIN_POINTS:
        raise InputError(f"{curve.path}: {len(t)} usable points (step > 0, finite loss); a power-law fit "
                         f"needs at least {MIN_POINTS}")
    head, tail = y[: max(1, len(y) // 4)].mean(), y[-max(1, len(y) // 4):].mean()
    if not tail < head:
        raise InputError(f"{curve.path}: the loss does not decrease (first quarter mean {head:.4g}, last "
                         f"quarter {tail:.4g}); a saturating power law cannot be fitted")
    return t, y


def fit_power_law(t: np.ndarray, y: np.ndarray, path: str = "curve") -> tuple[np.ndarray, np.ndarray]:
    """(E, A, alpha) and their covariance, least squares from several starting exponents."""
    from scipy.optimize import curve_fit

    best = None
    span = y.max() - y.min()
    for alpha0 in (0.1, 0.3, 0.6, 1.0, 2.0):
        e0 = max(0.0, y.min() - 0.1 * span)
        p0 = (e0, max(1e-12, (y[0] - e0) * t[0] ** alpha0), alpha0)
        try:
            popt, pcov = curve_fit(power_law, t, y, p0=p0, bounds=([0, 0, 1e-4], [np.inf, np.inf, 10]),
                                   maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((power_law(t, *popt) - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, popt, pcov)
    if best is None or best[1][1] <= 0:
        raise InputError(f"{path}: no saturating power law fits this curve")
    return best[1], best[2]


def _stop_step(a: float, alpha: float, c: float, tau: float) -> float:
    return (alpha * a / (c * tau)) ** (1.0 / (alpha + 1.0))


def fit_stop_rule(curve: LossCurve, threshold: float | None = None, remaining_flops: float | None = None) -> StopRule:
    """Fit ``curve`` and place the stopping step (see the module docstring)."""
    t, y = _check_curve(curve)
    if curve.flops_per_step is None:
        raise ConfigError(f"{curve.path}: FLOPs per step unknown; give --params (model size), --flops-per-step, "
                          "or a curve with a 'flops' column")
    if (threshold is None) == (remaining_flops is None):
        raise ConfigError("stop-rule: give exactly one of --threshold (loss per FLOP) or --remaining-flops")
    popt, pcov = fit_power_law(t, y, curve.path)
    e, a, alpha = (float(v) for v in popt)
    c = curve.flops_per_step
    last = float(t[-1])
    if threshold is not None:
        if threshold <= 0:
            raise ConfigError(f"--threshold must be > 0. Got {threshold!r} instead.")
        tau, source = float(threshold), "given"
    else:
        if remaining_flops <= 0:
            raise ConfigError(f"--remaining-flops must be > 0. Got {remaining_flops!r} instead.")
        gain = power_law(last, e, a, alpha) - power_law(last + remaining_flops / c, e, a, alpha)
        tau, source = gain / remaining_flops, f"average return of the remaining {remaining_flops:.3g} FLOPs"
    stop = _stop_step(a, alpha, c, tau)
    err = np.sqrt(np.clip(np.diag(pcov), 0, None)) if np.all(np.isfinite(pcov)) else np.full(3, np.nan)
    grad = np.zeros(3)
    for k in (1, 2):  # t* does not depend on E
        step = 1e-6 * max(abs(popt[k]), 1e-12)
        hi, lo = popt.copy(), popt.copy()
        hi[k] += step
        lo[k] -= step
        grad[k] = (_stop_step(hi[1], hi[2], c, tau) - _stop_step(lo[1], lo[2], c, tau)) / (2 * step)
    stop_err = float(math.sqrt(max(0.0, grad @ pcov @ grad))) if np.all(np.isfinite(pcov)) else float("nan")
    notes = []
    if stop > 100 * last:
        notes.append(f"the stop step is {stop / last:.3g}x beyond the fitted range: an extrapolation")
    rmse = float(np.sqrt(np.mean((power_law(t, e, a, alpha) - y) ** 2)))
    return StopRule(
        path=curve.path, params={"E": e, "A": a, "alpha": alpha},
        stderr={"E": float(err[0]), "A": float(err[1]), "alpha": float(err[2])}, rmse=rmse,
        threshold=tau, threshold_source=source, flops_per_step=c, stop_step=stop, stop_step_stderr=stop_err,
        stop_flops=stop * c, stop_loss=float(power_law(stop, e, a, alpha)), last_step=last,
        already_past=stop <= last, notes=notes,
    )


def plot_stop_rule(curve: LossCurve, rule: StopRule, path: str | Path) -> Path:
    """PNG of the curve, the fit and the stopping step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    p = rule.params
    t = np.geomspace(max(curve.steps[curve.steps > 0].min(), 1e-9), max(rule.stop_step, rule.last_step) * 1.2, 300)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve.steps, curve.losses, ".", label="loss")
    ax.plot(t, power_law(t, p["E"], p["A"], p["alpha"]), "-",
            label=f"E + A t^-α: E={p['E']:.3g}, A={p['A']:.3g}, α={p['alpha']:.3g}")
    ax.axvline(rule.stop_step, color="C3", linestyle="--", label=f"stop: step {rule.stop_step:,.0f}")
    ax.axhline(p["E"], color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
