"""Summaries of an evaluation: mean ± std over seeds per (arm, target), paired differences
against each selection's random arm, the printed table and the plot.

A difference is *beyond seed noise* when every seed agrees on its sign and its mean is more
than twice the larger of the two arms' standard deviations over seeds.

Example::

    summary = summarise(arms, results, targets)
    print(format_table(summary))
    plot(summary, "out/eval/eval.png")
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("loss", "bpb")


def _spread(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}


def metrics_of(score: dict) -> dict:
    """Mean token loss (nats) and bits per byte from a task's target totals."""
    return {"loss": score["nll"] / max(score["tokens"], 1), "bpb": score["nll"] / math.log(2) / max(score["bytes"], 1)}


def summarise(arms, results: list[dict], targets) -> dict:
    """``{"scores": {arm: {target: {metric: spread}}}, "comparisons": [...]}`` from the task results."""
    by_arm: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in sorted(results, key=lambda r: r["seed"]):
        for name, score in r["targets"].items():
            slot = by_arm.setdefault(r["arm"], {}).setdefault(name, {m: [] for m in METRICS})
            for m, v in metrics_of(score).items():
                slot[m].append(v)
    table = {a.name: {t.name: {m: _spread(v) for m, v in by_arm[a.name][t.name].items()} for t in targets}
             for a in arms}
    comparisons = []
    for arm in arms:
        if not arm.baseline:
            continue
        for t in targets:
            entry = {"arm": arm.name, "baseline": arm.baseline, "target": t.name}
            for m in METRICS:
                mine, base = by_arm[arm.name][t.name][m], by_arm[arm.baseline][t.name][m]
                delta = _spread([a - b for a, b in zip(mine, base)])
                noise = max(table[arm.name][t.name][m]["std"], table[arm.baseline][t.name][m]["std"])
                same_sign = all(d < 0 for d in delta["values"]) or all(d > 0 for d in delta["values"])
                delta["lower_in"] = sum(d < 0 for d in delta["values"])
                delta["beyond_noise"] = bool(same_sign and abs(delta["mean"]) > 2 * noise)
                entry[m] = delta
            comparisons.append(entry)
    return {"scores": table, "comparisons": comparisons}


def _pm(spread: dict, digits: int = 3) -> str:
    return f"{spread['mean']:.{digits}f} ± {spread['std']:.{digits}f}"


def format_table(summary: dict, arms, targets, settings: dict) -> str:
    """The text table ``datadiet eval`` prints."""
    s = settings
    lines = [
        f"datadiet eval: {len(s['seeds'])} seed(s) x {s['steps']} steps x {s['batch_size']} x {s['n_ctx']} tokens "
        f"= {s['training_tokens']:,} training tokens per arm; {s['arch']} {s['n_layer']}x{s['n_embd']}, "
        f"vocab {s['vocab_size']}",
    ]
    for t in targets:
        lines.append(f"target {t.name}: {len(t.texts):,} held-out of {t.total_rows:,} rows, "
                     f"{t.n_bytes:,} bytes ({t.path})")
    header = f"{'arm':<22} {'rows':>8} {'tokens':>11}"
    for t in targets:
        header += f"  {t.name + ' loss':>17}  {t.name + ' bpb':>17}"
    lines += ["", header]
    for arm in arms:
        row = f"{arm.name:<22} {round(np.mean(arm.rows)):>8,} {round(np.mean(arm.tokens)):>11,}"
        for t in targets:
            cell = summary["scores"][arm.name][t.name]
            row += f"  {_pm(cell['loss']):>17}  {_pm(cell['bpb']):>17}"
        lines.append(row)
    if summary["comparisons"]:
        lines.append("")
    n = len(s["seeds"])
    for c in summary["comparisons"]:
        loss, bpb = c["loss"], c["bpb"]
        verdict = "beyond seed noise" if loss["beyond_noise"] else "within seed noise"
        lines.append(f"{c['arm']} - {c['baseline']} on {c['target']}: loss {loss['mean']:+.3f} ± {loss['std']:.3f}, "
                     f"bpb {bpb['mean']:+.3f} ± {bpb['std']:.3f} ({loss['lower_in']}/{n} seeds lower; {verdict})")
    return "\n".join(lines)


def plot(summary: dict, arms, targets, path) -> None:
    """Bars of mean loss and bits per byte per arm (± std), one column per target, seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [a.name for a in arms]
    fig, axes = plt.subplots(2, len(targets), figsize=(1.2 + 1.3 * len(names) * len(targets), 6), squeeze=False)
    colors = {"selection": "tab:blue", "random": "tab:gray", "pool": "tab:orange"}
    for j, t in enumerate(targets):
        for i, metric in enumerate(METRICS):
            ax = axes[i][j]
            cells = [summary["scores"][n][t.name][metric] for n in names]
            x = np.arange(len(names))
            ax.bar(x, [c["mean"] for c in cells], yerr=[c["std"] for c in cells], capsize=4,
                   color=[colors.get(a.kind, "tab:blue") for a in arms], alpha=0.8)
            for k, c in enumerate(cells):
                ax.plot([k] * len(c["values"]), c["values"], "k.", markersize=4)
            lo = min(min(c["values"]) for c in cells)
            hi = max(max(c["values"]) for c in cells)
            pad = max(hi - lo, 1e-3)
            ax.set_ylim(lo - pad, hi + 0.5 * pad)
            ax.set_xticks(x, names, rotation=20, ha="right")
            ax.set_ylabel("loss (nats/token)" if metric == "loss" else "bits per byte")
            ax.set_title(f"{t.name}: held-out {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
