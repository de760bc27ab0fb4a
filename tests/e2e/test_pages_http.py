"""The page shells over plain HTTP from the real server (no browser needed); the vendored Plotly
bundle has its own tests in test_plotly_bundle.py."""
from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.mark.parametrize("path, title", [("/", "Runs"), ("/runs/r123", "Run r123"), ("/runs/r123/compare?a=c1&b=c2", "Compare clusterings")])
def test_pages_render_with_local_assets_only(server, path, title):
    status, headers, body = fetch(server.url + path)
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = body.decode()
    assert f"<title>{title}" in html
    # Every script and stylesheet comes from this server: the dashboard works offline.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url
    for url in re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<link rel="stylesheet" href="([^"]+)"', html):
        assert fetch(server.url + url)[0] == 200, url


def test_run_id_in_a_page_is_text(server):
    status, _, body = fetch(server.url + "/runs/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    html = body.decode()
    assert status == 200
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="/runs/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"' in html


def test_no_template_or_script_uses_a_cdn():
    # The pages' own scripts, not the vendored Plotly (its never-used geo default names cdn.plot.ly).
    for path in list((REPO / "templates").rglob("*.html")) + list((REPO / "static" / "js").rglob("*.js")):
        text = path.read_text()
        assert "cdn." not in text and "unpkg" not in text and "jsdelivr" not in text, path
