"""The report of a real run, opened in headless Chromium: it renders, with its images,
no errors, and the run's numbers."""

from __future__ import annotations

import re
from html import escape

import numpy as np
import pytest
from PIL import Image

from tests.report.chromium import chromium, console_errors, open_page
from tests.report.conftest import HOSTILE, HOSTILE_SOURCE


@pytest.mark.slow
def test_report_renders_in_chromium(report_run, tmp_path):
    chromium()
    out, manifest = report_run
    page = out / "report.html"
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=['"](?!data:)""", html), "the page refers to something outside itself"
    assert "<script" not in html.lower()
    probe, dom, stderr = open_page(page, tmp_path)

    assert probe["errors"] == [] and console_errors(stderr) == []
    assert probe["pwned"] == 0
    assert len(probe["imgs"]) >= 4
    for img in probe["imgs"]:
        assert img["done"] and img["w"] > 0 and img["h"] > 0, img

    c = manifest["counts"]
    assert re.search(rf"id=\"kept-rows\">{c['selected_rows']:,}<", dom)
    assert re.search(rf"id=\"rejected-rows\">{c['rejected_rows']:,}<", dom)
    score_columns = [col for name, s in manifest["scorers"].items() if s["type"] != "exact_hash"
                     for col in s["columns"]]
    for col in score_columns:
        assert re.search(rf"<figure class=\"histogram\" data-score=\"{re.escape(col)}\"><img alt=\"histogram of", dom), col
    assert {img["alt"] for img in probe["imgs"]} >= {"composition by source", "score correlation heatmap"}
    for heading in ("Budget and what bound the selection", "Diagnostics without training", "Recipe",
                    "Highest and lowest rows per score", "KL divergence to the target"):
        assert heading in dom

    pixels = np.asarray(Image.open(tmp_path / "screenshot.png").convert("L"))
    assert pixels.std() > 10, "the screenshot is blank"


def test_user_text_is_escaped(report_run):
    out, _ = report_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert escape(HOSTILE[:40]) in html  # the longest document is an example of length.chars
    assert HOSTILE[:20] not in html
    assert escape(HOSTILE_SOURCE) in html and HOSTILE_SOURCE not in html


@pytest.mark.slow
def test_the_probe_sees_a_broken_image(tmp_path):
    chromium()
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><head></head><body><img alt='broken' "
                    "src='data:image/png;base64,AAAA'></body></html>")
    probe, _, _ = open_page(page, tmp_path)
    assert probe["imgs"] == [{"alt": "broken", "w": 0, "h": 0, "done": True}]
    assert probe["errors"], "a broken image must show up as an error"
