"""Opens a page in headless Chromium and reports what rendered: every image's natural size,
script and resource errors, and a screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

#: runs before anything else on the page; records errors and, once loaded, the images
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', ev => __errors.push(String(ev.message || ('failed to load ' +
  ((ev.target && (ev.target.src || ev.target.href)) || '?')).slice(0, 80))), true);
const __ce = console.error; console.error = (...a) => { __errors.push(a.join(' ')); __ce(...a); };
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight, done: i.complete}));
  const pre = document.createElement('pre'); pre.id = '__probe';
  pre.textContent = JSON.stringify({imgs: imgs, errors: __errors, pwned: window.__pwned || 0});
  document.body.appendChild(pre);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", "--disable-extensions", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000"]


def chromium() -> str:
    """The Chromium binary, or a pytest skip saying why there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")


def open_page(page: Path, workdir: Path) -> tuple[dict, str, str]:
    """(probe result, the DOM after load, Chromium's stderr) for ``page``; also writes
    ``workdir/screenshot.png``."""
    binary = chromium()
    probed = workdir / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    env = {**os.environ, "HOME": str(workdir)}
    profile = [f"--user-data-dir={workdir / 'profile'}"]
    dom = subprocess.run([binary, *FLAGS, *profile, "--dump-dom", probed.as_uri()], capture_output=True,
                         text=True, timeout=120, env=env)
    shot = subprocess.run([binary, *FLAGS, *profile, "--window-size=1300,4000",
                           f"--screenshot={workdir / 'screenshot.png'}", page.as_uri()],
                          capture_output=True, text=True, timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert shot.returncode == 0, shot.stderr[-2000:]
    found = re.search(r'<pre id="__probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not finish loading: {dom.stderr[-2000:]}"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    return probe, dom.stdout, dom.stderr + shot.stderr


def console_errors(stderr: str) -> list[str]:
    """Chromium's log lines for the page's console messages at error level."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("ERROR" in line or "error" in line.lower())]
