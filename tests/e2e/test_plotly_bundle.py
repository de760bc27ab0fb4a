"""The vendored Plotly partial bundle: it holds every trace type the pages ask for, it is the
plotly.js version the pages are tested with, and the server sends it with a year-long cache.

The trace types the pages use are read from static/js/*.js (every `type: "..."` value that names a
plotly.js trace type); the types the bundle holds come from the bundle itself, loaded as the server
serves it in the real browser (`Plotly.PlotSchema.get().traces`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

from test_pages_http import fetch

from app.routes import pages

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "static" / "vendor"
# A same-origin page that runs no script of its own: a page whose scripts are still fetching would
# write into elements that set_content has removed.
BLANK = "/api/health"

# Every trace type of plotly.js 4.1.1 (its lib/index.js registers these, scatter through lib/core).
PLOTLY_TRACE_TYPES = frozenset("""
    bar barpolar box candlestick carpet choropleth choroplethmap cone contour contourcarpet densitymap
    funnel funnelarea heatmap histogram histogram2d histogram2dcontour icicle image indicator isosurface
    mesh3d ohlc parcats parcoords pie quiver sankey scatter scatter3d scattercarpet scattergeo scattergl
    scattermap scatterpolar scatterpolargl scattersmith scatterternary splom streamtube sunburst surface
    table treemap violin volume waterfall
""".split())


def trace_types_in_pages() -> set[str]:
    """The plotly.js trace types named by `type: "..."` in the pages' scripts."""
    found = set()
    for path in (REPO / "static" / "js").rglob("*.js"):
        text = path.read_text()
        # A computed `type:` would hide a trace type from this scan: every one must be a literal.
        computed = re.findall(r"\btype:\s*(?![\"'])([^,}\s]+)", text)
        assert not computed, f"{path.name}: `type:` set from an expression {computed}; list it here explicitly"
        found |= {value for value in re.findall(r"\btype:\s*[\"']([a-z0-9]+)[\"']", text) if value in PLOTLY_TRACE_TYPES}
    return found


def served_plotly_url(server) -> str:
    page = fetch(server.url + "/runs/rabc")[2].decode()
    return re.search(r'data-plotly-url="([^"]+)"', page).group(1)


def test_the_pages_use_scatter_scattergl_and_heatmap():
    # The scan itself works: these are the trace types of run.js, mapview.js and compare.js today.
    assert trace_types_in_pages() == {"scatter", "scattergl", "heatmap"}


def test_bundle_holds_every_trace_type_the_pages_use(server, page):
    page.goto(server.url + BLANK)
    page.add_script_tag(url=server.url + served_plotly_url(server))
    registered = set(page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)"))
    used = trace_types_in_pages()
    missing = used - registered
    assert not missing, f"the pages draw {sorted(missing)}, which the bundle lacks: add them to TRACES in static/vendor/build_plotly.sh and rebuild"
    # Nothing else rides along (scatter is always in: plotly.js's core registers it).
    assert registered == used | {"scatter"}, f"the bundle has traces no page uses: {sorted(registered - used)}"


def test_bundle_draws_each_trace_type(server, page):
    page.goto(server.url + BLANK)
    page.set_content('<div id="gl" style="width:400px;height:300px"></div><div id="svg" style="width:400px;height:300px"></div>')
    page.add_script_tag(url=server.url + served_plotly_url(server))
    drawn = page.evaluate("""async () => {
        const gl = document.getElementById('gl'), svg = document.getElementById('svg');
        await Plotly.newPlot(gl, [{type: 'scattergl', mode: 'markers', x: [0, 1, 2], y: [2, 0, 1]}]);
        await Plotly.newPlot(svg, [{type: 'heatmap', z: [[1, 2], [3, 4]]},
                                   {type: 'scatter', mode: 'lines', x: [0, 1], y: [0, 1]}]);
        return {types: [...gl._fullData, ...svg._fullData].map(trace => trace.type),
                canvases: gl.querySelectorAll('canvas').length,
                heatmapImages: svg.querySelectorAll('.hm image').length,
                lines: svg.querySelectorAll('.scatterlayer .js-line').length};
    }""")
    assert drawn["types"] == ["scattergl", "heatmap", "scatter"]
    assert drawn["canvases"] >= 1 and drawn["heatmapImages"] == 1 and drawn["lines"] == 1


def test_bundle_is_the_pinned_plotly_version(server, page):
    version = pages.PLOTLY_JS_VERSION
    build = json.loads((VENDOR / "plotly-build" / "package.json").read_text())
    lock = json.loads((VENDOR / "plotly-build" / "package-lock.json").read_text())
    assert build["dependencies"]["plotly.js"] == version
    assert lock["packages"]["node_modules/plotly.js"]["version"] == version
    assert pages.PLOTLY_JS == VENDOR / f"plotly-{version}-latentmap.min.js"
    url = served_plotly_url(server)
    assert url.startswith(f"/vendor/plotly.min.js?v={version}-")
    body = fetch(server.url + url)[2]
    assert body.startswith(f"/**\n* plotly.js (latentmap - minified) v{version}\n".encode())
    page.goto(server.url + BLANK)
    page.add_script_tag(url=server.url + url)
    assert page.evaluate("() => Plotly.version") == version


def test_bundle_is_served_cached_for_a_year(server):
    vendored = pages.PLOTLY_JS.read_bytes()
    url = served_plotly_url(server)
    status, headers, body = fetch(server.url + url, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == vendored
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-type"].startswith("text/javascript")
    status, headers, body = fetch(server.url + url)
    assert status == 200 and body == vendored and "content-encoding" not in headers
    etag = headers["etag"]
    assert etag == '"' + hashlib.sha256(vendored).hexdigest()[:20] + '"'
    assert fetch(server.url + url, {"If-None-Match": etag})[0] == 304
    assert fetch(server.url + url, method="HEAD")[0] == 200
    # The URL changes with the bundle's content, so a rebuilt bundle is never taken from a stale cache.
    assert url.endswith("-" + hashlib.sha256(vendored).hexdigest()[:10])
