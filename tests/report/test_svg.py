"""The composition figure: well-formed SVG whose bars are the sources' shares."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

from datadiet.report.svg import BAR_W, composition

NS = "{http://www.w3.org/2000/svg}"


def _parse(uri: str) -> ET.Element:
    head, _, body = uri.partition(",")
    assert head == "data:image/svg+xml;base64"
    return ET.fromstring(base64.b64decode(body))


def test_bars_are_the_shares_and_names_are_escaped():
    by_source = {"web <b>&": {"rows_in": 90, "rows_kept": 40, "tokens_in": 900, "tokens_kept": 0},
                 "books": {"rows_in": 10, "rows_kept": 10, "tokens_in": 3000, "tokens_kept": 2000}}
    svg = _parse(composition(by_source))
    bars = [r for r in svg.iter(f"{NS}rect") if r.get("height") == "22"]
    by_row: dict[tuple[float, str], float] = {}
    for r in bars:
        panel = float(r.get("x")) // (BAR_W + 100)
        by_row[(panel, r.get("y"))] = by_row.get((panel, r.get("y")), 0.0) + float(r.get("width"))
    assert len(by_row) == 4 and all(w == pytest.approx(BAR_W, abs=0.05) for w in by_row.values())
    # rows in: 90 of 100 for web; tokens kept: none for web, so its bar is absent there
    widths = sorted(float(r.get("width")) for r in bars)
    assert widths[-1] == pytest.approx(BAR_W)  # books' whole share of kept tokens
    assert pytest.approx(0.9 * BAR_W, abs=0.05) in widths
    assert len(bars) == 7
    labels = [t.text for t in svg.iter(f"{NS}text")]
    assert "web <b>&" in labels and "books" in labels and "4,000" not in labels and "3,900" in labels


def test_empty_selection_draws_no_bars():
    svg = _parse(composition({"a": {"rows_in": 3, "rows_kept": 0, "tokens_in": 9, "tokens_kept": 0}}))
    assert sum(1 for r in svg.iter(f"{NS}rect") if r.get("height") == "22") == 2
