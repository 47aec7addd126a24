"""report.html: one self-contained page (inline CSS, images as data URIs, no scripts)
describing what a run kept, what it dropped and why."""

from __future__ import annotations

import json
from html import escape

import numpy as np

from . import svg
from .diagnostics import diagnostics as compute_diagnostics
from .diagnostics import kl_reduction, near_duplicate_share
from .examples import fetch_texts
from .summary import RunSummary
from .text import budget_lines, num, pct, recipe_yaml, truncate

MAX_HEATMAP_COLUMNS = 30
NO_DECISIONS = "the run's decisions could not be read"
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}.lead{font-size:1.15em}
.bar{display:inline-block;height:.8em;background:#c8553d;margin-right:.4em}.grid{display:flex;flex-wrap:wrap;gap:.6em}
figure{margin:0}figcaption{font-size:.8em;color:#555;max-width:333px}.note{color:#666;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}.ex{white-space:pre-wrap;overflow-wrap:anywhere;font-family:monospace;font-size:.8em;
max-width:48em}.kept{color:#2a9d5c;font-weight:bold}.dropped{color:#c8553d;font-weight:bold}
details{margin:.3em 0}summary{cursor:pointer}"""


def _plots():
    """The matplotlib module, imported when a plot is drawn (a page whose plots were drawn
    on the workers needs none)."""
    from . import plots

    return plots


def average_ranks(matrix: np.ndarray) -> np.ndarray:
    """Ranks (from 1) within each column, ties given their mean rank, as Spearman's
    correlation needs (``scipy.stats.rankdata(matrix, axis=0)``, without importing scipy)."""
    out = np.empty(matrix.shape, dtype=np.float64)
    for j in range(matrix.shape[1]):
        order = np.argsort(matrix[:, j], kind="stable")
        ordered = matrix[order, j]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(ordered)]
        out[order, j] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return out


def e(value) -> str:
    return escape(str(value), quote=True)


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class='n'>{e(num(c))}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(run_dir, manifest: dict, summary: RunSummary | None, missing: str = "") -> str:
    """The whole page; every piece of user text goes through ``e``. Without a ``summary``
    (the run's decisions could not be read: ``missing`` says why) only the manifest's parts."""
    diag = {**manifest.get("diagnostics", {})}
    if "score_drift" not in diag and summary is not None:
        diag.update(compute_diagnostics(run_dir, manifest, summary))
    diag.setdefault("kl_reduction", kl_reduction(manifest))
    diag.setdefault("near_duplicate_share", near_duplicate_share(manifest))
    if summary is None:
        sections = [_header(manifest), _budget(manifest), _reasons(manifest),
                    f"<h2>Plots</h2><p>Not drawn: {e(missing)}.</p>", _diagnostics(diag), _ranking(manifest),
                    _curriculum(manifest), _scorers(manifest), _recipe(manifest)]
    else:
        sections = [
            _header(manifest), _budget(manifest), _drawn(summary, "sources"), _reasons(manifest), _diagnostics(diag),
            _ranking(manifest), _curriculum(manifest), _histograms(summary), _drawn(summary, "correlation"),
            _examples(run_dir, manifest, summary), _scorers(manifest), _recipe(manifest),
        ]
    body = "\n".join(s for s in sections if s)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>datadiet run report</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _header(m: dict) -> str:
    c, t = m["counts"], m["tokens"]
    out = (m.get("recipe") or {}).get("output", {}).get("path", "")
    unreadable = c.get("unreadable_files") or []
    return (f"<h1>datadiet run report</h1><p class='note'>{e(out)} · datadiet {e(m.get('datadiet_version', '?'))}"
            f" · {e(num((m.get('timings_s') or {}).get('total', 0)))} s</p>"
            f"<p class='lead' id='counts'>{num(c['input_rows'])} rows in: <span class='kept'>"
            f"<span id='kept-rows'>{num(c['selected_rows'])}</span> kept</span> ({pct(c['selected_rows'], c['input_rows'])}),"
            f" <span class='dropped'><span id='rejected-rows'>{num(c['rejected_rows'])}</span> dropped</span>,"
            f" {num(c['quarantined_rows'])} quarantined (unreadable or empty). Tokens: {num(t['selected'])} of "
            f"{num(t['input'])} kept ({pct(t['selected'], t['input'])}).</p>"
            + (f"<p>Unreadable files: {e('; '.join(unreadable))}</p>" if unreadable else ""))


def _budget(m: dict) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in budget_lines(m))
    return f"<h2 id='budget'>Budget and what bound the selection</h2><table>{rows}</table>"


def figure_names(s: RunSummary) -> list[str]:
    """The pieces of the page drawn from the decisions alone (plots with their tables)."""
    return ["sources", "correlation"] + [f"histogram:{c}" for c in s.score_columns]


def draw_figures(s: RunSummary, part: int = 0, parts: int = 1) -> None:
    """Draws every ``parts``-th piece from ``part`` on into ``s.figures``, so that a run can
    draw them on its workers while its output is written, and the page reuses them."""
    for name in figure_names(s)[part::parts]:
        _drawn(s, name)


def _drawn(s: RunSummary, name: str) -> str:
    if name not in s.figures:
        if name.startswith("histogram:"):
            s.figures[name] = _histogram(s, name.split(":", 1)[1])
        else:
            s.figures[name] = {"sources": _sources, "correlation": _correlation}[name](s)
    return s.figures[name]


def _sources(s: RunSummary) -> str:
    if not s.by_source:
        return ""
    total_in = sum(d["tokens_in"] for d in s.by_source.values())
    total_kept = sum(d["tokens_kept"] for d in s.by_source.values())
    rows = [[e(src), d["rows_in"], d["rows_kept"], pct(d["rows_kept"], d["rows_in"]), d["tokens_in"], d["tokens_kept"],
             pct(d["tokens_in"], total_in), pct(d["tokens_kept"], total_kept)] for src, d in s.by_source.items()]
    return (f"<h2 id='sources'>Composition by source</h2><img alt='composition by source' "
            f"src='{svg.composition(s.by_source)}'>"
            + table(["source", "rows in", "rows kept", "kept", "tokens in", "tokens kept", "share of input tokens",
                     "share of kept tokens"], rows, {1, 2, 4, 5})
            + "<p class='note'>Quarantined rows are not counted here (they were never scored).</p>")


def _reasons(m: dict) -> str:
    reasons, total = m.get("reasons") or {}, m["counts"]["rejected_rows"]
    if not reasons:
        return "<h2>Why rows were dropped</h2><p>No row was dropped.</p>"
    rows = "".join(f"<tr><td>{e(r)}</td><td class='n'>{num(n)}</td><td><span class='bar' "
                   f"style='width:{round(200 * n / total) if total else 0}px'></span>{pct(n, total)}</td></tr>"
                   for r, n in reasons.items())
    return f"<h2 id='reasons'>Why rows were dropped</h2><table><tr><th>reason</th><th>rows</th><th>share</th></tr>{rows}</table>"


def _diagnostics(d: dict) -> str:
    parts = ["<h2 id='diagnostics'>Diagnostics without training</h2>"]
    if d.get("unavailable"):
        parts.append(f"<p>{e(d['unavailable'])}.</p>")
    kl = d.get("kl_reduction") or {}
    if kl.get("available"):
        rows = [[e(name), v["kl_target_raw"], v["kl_target_selected"], v["kl_reduction"]]
                for name, v in kl["by_scorer"].items()]
        parts.append("<h3>KL divergence to the target (DSIR hashed n-grams, nats)</h3>"
                     + table(["scorer", "KL(target ‖ pool)", "KL(target ‖ selection)", "reduction"], rows, {1, 2, 3})
                     + "<p class='note'>A positive reduction means the selection's n-gram distribution moved toward "
                       "the target.</p>")
    else:
        parts.append(f"<h3>KL divergence to the target</h3><p>Not computed: {e(kl.get('reason', 'no data'))}.</p>")
    dup = d.get("near_duplicate_share")
    if dup:
        detail = ", ".join(f"{e(r)}: {num(n)}" for r, n in dup["by_reason"].items()) or "no duplicate was found"
        parts.append(f"<h3>Near-duplicate share</h3><p>{num(dup['rows'])} of {num(dup['input_rows'])} input rows "
                     f"({100 * dup['share']:.2f}%) were dropped as duplicates ({detail}).</p>")
    cov = d.get("cluster_coverage") or {}
    if cov.get("available"):
        rows = [[e(c), v["clusters"], v["covered"], pct(v["covered"], v["clusters"])] for c, v in cov["by_column"].items()]
        parts.append("<h3>Cluster coverage</h3>" + table(["cluster column", "clusters", "with a kept row", "coverage"],
                                                         rows, {1, 2}))
    else:
        parts.append(f"<h3>Cluster coverage</h3><p>Not computed: {e(cov.get('reason', NO_DECISIONS))}.</p>")
    drift = d.get("score_drift") or {}
    if drift.get("available"):
        cols = sorted(drift["by_column"].items(), key=lambda kv: -abs(kv[1]["std_diff"]))
        rows = [[e(c), v["mean_selection"], v["mean_prefix"], v["std_diff"], v["ks"]] for c, v in cols]
        parts.append(f"<h3>Score drift between two budgets</h3><p>The selection ({num(drift['rows_selection'])} rows"
                     f"{' sampled' if drift.get('sampled') else ''}) against the prefix of its ranking that a budget "
                     f"{100 * drift['prefix_fraction']:g}% as large would keep ({num(drift['rows_prefix'])} rows), "
                     f"by {e(drift['unit'])}. Largest shifts first.</p>"
                     + table(["score", "mean (selection)", "mean (half budget)", "shift (std units)", "KS statistic"],
                             rows, {1, 2, 3, 4}))
    else:
        parts.append(f"<h3>Score drift between two budgets</h3><p>Not computed: {e(drift.get('reason', NO_DECISIONS))}.</p>")
    return "".join(parts)


def _numeric_list(v) -> bool:
    return isinstance(v, list) and len(v) > 1 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in v)


def _plot_block(title: str, obj) -> str:
    """Plots the numeric series of a manifest entry (a dict of lists, or a list of records)
    and lists its scalar fields; any shape it does not know is shown as JSON."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        keys = [k for k in obj[0] if _numeric_list([r.get(k) for r in obj])]
        obj = {k: [r.get(k) for r in obj] for k in keys}
    if not isinstance(obj, dict):
        return f"<pre>{e(json.dumps(obj, indent=1, default=str)[:4000])}</pre>"
    lists = {k: v for k, v in obj.items() if _numeric_list(v)}
    scalars = {k: v for k, v in obj.items() if not isinstance(v, (list, dict))}
    out = []
    if lists:
        n = max(len(v) for v in lists.values())
        lists = {k: v for k, v in lists.items() if len(v) == n}
        x_key = next((k for k in lists if any(w in k.lower() for w in ("token", "budget", "rows", "step", "x"))), None)
        x = lists.pop(x_key) if x_key and len(lists) > 1 else list(range(n))
        marks = {k: float(v) for k, v in scalars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                 and any(w in k.lower() for w in ("stop", "budget", "limit")) and min(x) <= v <= max(x)}
        out.append(f"<img alt='{e(title)}' src='{_plots().series(title, x_key or 'index', x, lists, marks)}'>")
    if scalars:
        out.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(num(v))}</td></tr>" for k, v in scalars.items())
                   + "</table>")
    for k, v in obj.items():
        if isinstance(v, (dict, list)) and k not in lists and not _numeric_list(v):
            out.append(f"<details><summary>{e(k)}</summary>{_plot_block(f'{title}: {k}', v)}</details>")
    return "".join(out)


def _ranking(m: dict) -> str:
    gain = (m.get("ranking") or {}).get("marginal_gain")
    return f"<h2 id='marginal-gain'>Marginal gain along the ranking</h2>{_plot_block('marginal gain', gain)}" if gain else ""


def _curriculum(m: dict) -> str:
    cur = m.get("curriculum")
    return f"<h2 id='curriculum'>Curriculum pacing</h2>{_plot_block('curriculum', cur)}" if cur else ""


def _split(s: RunSummary, column: str) -> tuple[np.ndarray, np.ndarray]:
    values = s.sample.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    kept = s.sample.column("kept").to_numpy(zero_copy_only=False)
    ok = ~np.isnan(values)
    return values[ok & kept], values[ok & ~kept]


def _sample_note(s: RunSummary) -> str:
    return ("all rows" if s.rate >= 1 else
            f"a seeded hash sample of {num(s.sample.num_rows)} rows ({100 * s.rate:.2g}% of the rows)")


def _histograms(s: RunSummary) -> str:
    if not s.score_columns:
        return ""
    figures = "".join(_drawn(s, f"histogram:{column}") for column in s.score_columns)
    return (f"<h2 id='histograms'>Score distributions: kept vs dropped</h2><p class='note'>From {_sample_note(s)}."
            f"</p><div class='grid'>{figures}</div>")


def _histogram(s: RunSummary, column: str) -> str:
    kept, dropped = _split(s, column)
    if not len(kept) and not len(dropped):
        return ""
    image, clipped = _plots().histogram(column, kept, dropped)
    return (f"<figure class='histogram' data-score='{e(column)}'><img alt='histogram of {e(column)}' "
            f"src='{image}'><figcaption>{e(column)}: mean kept {num(float(kept.mean())) if len(kept) else '-'}"
            f", dropped {num(float(dropped.mean())) if len(dropped) else '-'}"
            f"{'; x range cut at the 0.5-99.5th percentiles' if clipped else ''}</figcaption></figure>")


def _correlation(s: RunSummary) -> str:
    cols = [c for c in s.score_columns if c in s.sample.column_names]
    values = {c: s.sample.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in cols}
    cols = [c for c in cols if np.nanstd(values[c]) > 0][:MAX_HEATMAP_COLUMNS] if s.sample.num_rows else []
    if len(cols) < 2:
        return ""
    matrix = np.column_stack([values[c] for c in cols])
    matrix = matrix[~np.isnan(matrix).any(axis=1)]
    if len(matrix) < 3:
        return ""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(average_ranks(matrix), rowvar=False)
    return (f"<h2 id='correlation'>Score correlations</h2><p class='note'>Spearman rank correlation over "
            f"{_sample_note(s)} (rows with every score present; constant scores left out).</p>"
            f"<img alt='score correlation heatmap' src='{_plots().correlation(cols, np.atleast_2d(corr))}'>")


def _examples(run_dir, m: dict, s: RunSummary) -> str:
    if not s.extremes:
        return ""
    wanted = [(r[1], r[2], r[3]) for ext in s.extremes.values() for r in ext.top + ext.bottom]
    texts, note = fetch_texts(run_dir, m, wanted)
    blocks = []
    chosen = selection_columns(m)
    for column, ext in sorted(s.extremes.items(), key=lambda kv: kv[0] not in chosen):
        if not ext.top:
            continue
        rows = []
        for label, items in (("highest", ext.top), ("lowest", ext.bottom)):
            for value, doc_id, _, _, kept in items:
                text = texts.get(doc_id)
                shown = e(truncate(text)) if text is not None else "<i>text not available</i>"
                status = "<span class='kept'>kept</span>" if kept else "<span class='dropped'>dropped</span>"
                rows.append(f"<tr><td>{label}</td><td class='n'>{e(num(value))}</td><td>{status}</td>"
                            f"<td>{e(doc_id)}</td><td class='ex'>{shown}</td></tr>")
        blocks.append(f"<details class='examples' data-score='{e(column)}'{' open' if column in chosen else ''}>"
                      f"<summary>{e(column)}{' (used by the selection)' if column in chosen else ''}</summary><table>"
                      f"<tr><th></th><th>value</th><th></th><th>doc_id</th><th>text (first 400 characters, 12 lines)</th></tr>"
                      f"{''.join(rows)}</table></details>")
    return (f"<h2 id='examples'>Highest and lowest rows per score</h2><p class='note'>Over all rows. "
            f"{e(note)}</p>{''.join(blocks)}")


def selection_columns(m: dict) -> set[str]:
    """Score columns the recipe's select steps name (rules, score, cluster column)."""
    found = set()
    for step in (m.get("recipe") or {}).get("select") or []:
        if isinstance(step, dict):
            found.update((step.get("rules") or {}).keys())
            found.update(v for k, v in step.items() if k in ("score", "cluster_column") and isinstance(v, str))
    return found


def _scorers(m: dict) -> str:
    rows = [[e(name), e(s["type"]), e(", ".join(s["columns"])), s["seconds"],
             e(", ".join(f"{k}: {v}" for k, v in s["null_reasons"].items()) or "-")]
            for name, s in (m.get("scorers") or {}).items()]
    timings = ", ".join(f"{e(k)} {e(num(v))} s" for k, v in (m.get("timings_s") or {}).items())
    return (("<h2 id='scorers'>Scorers</h2>" + table(["name", "type", "columns", "seconds", "null reasons"], rows, {3})
             if rows else "") + f"<p class='note'>Timings: {timings}</p>")


def _recipe(m: dict) -> str:
    return f"<h2 id='recipe'>Recipe</h2><pre>{e(recipe_yaml(m))}</pre>"
