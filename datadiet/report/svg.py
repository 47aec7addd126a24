"""The composition figure as an SVG data URI: stacked bars are a few rectangles, so the
one figure every run's report has needs no plotting library (drawing it with matplotlib
took about half a second of a worker's time beside the write)."""

from __future__ import annotations

import base64
from html import escape

# matplotlib's tab20, so the page's figures share one palette
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
         "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
         "#17becf", "#9edae5")
LABEL_W, BAR_W, BAR_H, GAP, PANEL_GAP, LEGEND_W, LINE = 78, 300, 22, 10, 24, 260, 14
MAX_NAME = 40


def composition(by_source: dict[str, dict[str, int]]) -> str:
    """Share of each source before and after selection, in rows (left) and tokens (right),
    as stacked bars with a legend; returns ``data:image/svg+xml;base64,...``.

    Example::

        uri = composition({"web": {"rows_in": 9, "rows_kept": 4, "tokens_in": 90, "tokens_kept": 50}})
    """
    names = list(by_source)
    top = 22
    axis_y = top + 2 * BAR_H + GAP + 6
    height = max(axis_y + 26, top + LINE * len(names) + 8)
    panel = LABEL_W + BAR_W + PANEL_GAP
    width = 2 * panel + LEGEND_W
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"font-family='sans-serif' font-size='11'><rect width='100%' height='100%' fill='white'/>"]
    for p, unit in enumerate(("rows", "tokens")):
        x0 = p * panel + LABEL_W
        out.append(f"<text x='{x0 + BAR_W / 2}' y='14' text-anchor='middle' font-size='12'>share of {unit}</text>")
        for b, stage in enumerate(("in", "kept")):
            y = top + b * (BAR_H + GAP)
            total = sum(d[f"{unit}_{stage}"] for d in by_source.values())
            label = "input" if stage == "in" else "kept"
            out.append(f"<text x='{x0 - 6}' y='{y + 9}' text-anchor='end'>{label}</text>"
                       f"<text x='{x0 - 6}' y='{y + 21}' text-anchor='end' fill='#555'>{total:,}</text>")
            left = 0.0
            for k, name in enumerate(names):
                share = by_source[name][f"{unit}_{stage}"] / total if total else 0.0
                if share > 0:
                    out.append(f"<rect x='{x0 + left * BAR_W:.2f}' y='{y}' width='{share * BAR_W:.2f}' "
                               f"height='{BAR_H}' fill='{TAB20[k % 20]}'/>")
                left += share
        out.append(f"<line x1='{x0}' y1='{axis_y}' x2='{x0 + BAR_W}' y2='{axis_y}' stroke='#333'/>")
        for t in range(5):
            x = x0 + t * BAR_W / 4
            out.append(f"<line x1='{x}' y1='{axis_y}' x2='{x}' y2='{axis_y + 4}' stroke='#333'/>"
                       f"<text x='{x}' y='{axis_y + 16}' text-anchor='middle' font-size='10'>{t / 4:g}</text>")
    for k, name in enumerate(names):
        x, y = 2 * panel, top + k * LINE
        shown = name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + "…"
        out.append(f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{TAB20[k % 20]}'/>"
                   f"<text x='{x + 15}' y='{y}'>{escape(shown)}</text>")
    out.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(out).encode("utf-8")).decode("ascii")
