"""The HTML report in a real browser: headless Chromium renders it, and the DOM it
renders carries the same numbers as the JSON. Skipped where /usr/bin/chromium is
absent (CI installs Debian's `chromium` package)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sensor.sinks.report_html import render_html
from tests.sinks.test_report_html import check_page, collect, sample

CHROMIUM = Path("/usr/bin/chromium")
# No network, no profile state, no background services: the page must stand alone.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("chromium")
    report, series = sample()
    html = folder / "report.html"
    html.write_text(render_html(report, series), encoding="utf-8")
    return html, report


def _chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = folder / "profile"
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=folder)


def test_rendered_dom_carries_the_json_numbers(page):
    html, report = page
    result = _chromium(html.parent, "--dump-dom", html.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<svg" in dom and "Organisations" in dom
    seen = check_page(dom, report)
    # The browser kept every number the page was written with.
    assert len(collect(dom)) == len(collect(html.read_text(encoding="utf-8")))
    assert seen["field"] > 20 and seen["series"] == 12


def test_screenshot_is_a_non_empty_png(page):
    html, _ = page
    shot = html.parent / "report.png"
    result = _chromium(
        html.parent, f"--screenshot={shot}", "--window-size=1280,1600", html.as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
