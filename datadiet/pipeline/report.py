"""report.html: a one-page summary of what was kept and why (counts, sources, reasons,
budget, scorers), readable without any tool."""

from __future__ import annotations

from html import escape

from ..rundir import RunDir


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar(part: int, whole: int) -> str:
    width = 0 if not whole else round(200 * part / whole)
    return f'<span class="bar" style="width:{width}px"></span> {part:,}'


def write_report(run: RunDir, manifest: dict) -> None:
    c, t = manifest["counts"], manifest["tokens"]
    sources = [[src, d["input"], d["selected"], d["rejected"], d["quarantined"]]
               for src, d in c["by_source"].items()]
    reasons = "".join(f"<tr><td>{escape(r)}</td><td>{_bar(n, c['rejected_rows'])}</td></tr>"
                      for r, n in manifest["reasons"].items())
    budget = manifest.get("budget") or {}
    scorers = [[name, s["type"], ", ".join(s["columns"]), s["seconds"],
                ", ".join(f"{k}: {v}" for k, v in s["null_reasons"].items()) or "-"]
               for name, s in manifest["scorers"].items()]
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>datadiet run</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}.bar{{display:inline-block;height:.8em;
background:#4a7}}</style></head><body>
<h1>datadiet run</h1>
<p>{c['input_rows']:,} rows in: <b>{c['selected_rows']:,} selected</b>, {c['rejected_rows']:,} rejected,
{c['quarantined_rows']:,} quarantined. Tokens: {t['selected']:,} of {t['input']:,} kept.</p>
<h2>Budget</h2><p>{escape(str(budget.get('note') or budget or 'no budget: every row passing the filters is kept'))}</p>
<h2>By source</h2>{_table(['source', 'input', 'selected', 'rejected', 'quarantined'], sources)}
<h2>Why rows were rejected</h2><table>{reasons or '<tr><td>none</td></tr>'}</table>
<h2>Scorers</h2>{_table(['name', 'type', 'columns', 'seconds', 'null reasons'], scorers)}
<h2>Unreadable files</h2><p>{escape('; '.join(c['unreadable_files']) or 'none')}</p>
</body></html>
"""
    run.write_text(html, run.report)
