"""Matplotlib figures of a run, each returned as a base64 PNG data URI. Figures are made
with the object API (no pyplot state), so any thread or worker task can draw them."""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

KEPT, DROPPED = "#2a9d5c", "#c8553d"
DPI = 90


def literal(text: str) -> str:
    """User text as a literal matplotlib label (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _figure(**kw) -> Figure:
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _png(fig, tight: bool = True) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def histogram(column: str, kept: np.ndarray, dropped: np.ndarray) -> tuple[str, bool]:
    """Kept vs dropped counts of one score on shared bins; returns (image, clipped), where
    ``clipped`` says the range was cut to the 0.5-99.5th percentiles (outliers in the end bins)."""
    both = np.concatenate([kept, dropped])
    lo, hi = np.percentile(both, [0.5, 99.5]) if len(both) else (0.0, 1.0)
    clipped = bool(len(both) and (both.min() < lo or both.max() > hi))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 31)
    fig = _figure(figsize=(3.7, 2.3))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.16, right=0.97, top=0.88, bottom=0.13)  # fixed margins: one draw, not two
    for values, colour, name in ((dropped, DROPPED, "dropped"), (kept, KEPT, "kept")):
        if len(values):
            ax.hist(np.clip(values, lo, hi), bins=bins, color=colour, alpha=0.55, histtype="stepfilled",
                    label=f"{name} ({len(values):,})")
    ax.set_title(literal(column), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_ylabel("rows", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig, tight=False), clipped


def correlation(columns: list[str], matrix: np.ndarray) -> str:
    """Heatmap of a (Spearman) correlation matrix."""
    size = max(4.0, 0.32 * len(columns) + 2)
    fig = _figure(figsize=(size + 1, size))
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(columns)), [literal(c) for c in columns], rotation=90, fontsize=7)
    ax.set_yticks(range(len(columns)), [literal(c) for c in columns], fontsize=7)
    if len(columns) <= 12:
        for i in range(len(columns)):
            for j in range(len(columns)):
                if not np.isnan(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def series(title: str, x_label: str, x: list[float], ys: dict[str, list[float]], marks: dict[str, float]) -> str:
    """Line plot of one or more series over a shared x, with vertical marks (e.g. a budget)."""
    fig = _figure(figsize=(6, 2.8))
    ax = fig.subplots()
    for label, y in ys.items():
        ax.plot(x, y, label=literal(label), linewidth=1.4)
    for name, at in marks.items():
        ax.axvline(at, color="#555", linestyle="--", linewidth=1)
        ax.annotate(literal(name), (at, 1), xycoords=("data", "axes fraction"), fontsize=7, rotation=90, va="top", ha="right")
    ax.set_title(literal(title), fontsize=9)
    ax.set_xlabel(literal(x_label), fontsize=8)
    ax.tick_params(labelsize=7)
    if len(ys) > 1:
        ax.legend(fontsize=7, frameon=False)
    return _png(fig)
