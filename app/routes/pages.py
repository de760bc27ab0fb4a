"""The dashboard's HTML pages and the vendored Plotly bundle.

The pages are thin Jinja2 shells: everything they show comes from the JSON API, fetched by the
page's own module under static/js/. So this router needs neither the registry nor torch, and a page
for an unknown run still renders (its script shows a "run not found" message from the API's 404).

Plotly is the vendored partial bundle static/vendor/plotly-<version>-latentmap.min.js (only the
trace types the pages draw; static/vendor/README.md says how it is built), never a CDN, so the
dashboard works offline. It is served under a URL that carries its version and content hash, with a
one-year immutable cache, plus a gzip copy made once.
"""
from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "templates"
STATIC_DIR = REPO_ROOT / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

router = APIRouter(tags=["pages"], include_in_schema=False)

YEAR_SECONDS = 365 * 24 * 3600


PLOTLY_JS_VERSION = "4.1.1"
PLOTLY_JS = STATIC_DIR / "vendor" / f"plotly-{PLOTLY_JS_VERSION}-latentmap.min.js"


@lru_cache(maxsize=1)
def _plotly_bundle() -> tuple[bytes, bytes, str]:
    """(raw, gzipped, etag) of the vendored Plotly bundle, read and compressed once per process."""
    raw = PLOTLY_JS.read_bytes()
    etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
    return raw, gzip.compress(raw, compresslevel=6, mtime=0), etag


@lru_cache(maxsize=64)
def _static_version(relative: str) -> str:
    """A short content hash of a static file, so its URL changes whenever the file does."""
    path = STATIC_DIR / relative
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def plotly_url() -> str:
    """The bundle's URL, with its version and content hash: a rebuilt bundle is never served stale."""
    return f"/vendor/plotly.min.js?v={PLOTLY_JS_VERSION}-{_static_version('vendor/' + PLOTLY_JS.name)}"


def _context(request: Request, page: str, **values: object) -> dict[str, object]:
    return {
        "request": request,
        "page": page,
        "plotly_url": plotly_url(),
        "css_version": _static_version("css/app.css"),
        **values,
    }


@router.get("/", response_class=HTMLResponse)
def home_page(request: Request) -> HTMLResponse:
    """Runs table and the train form."""
    return templates.TemplateResponse(request, "home.html", _context(request, "home", title="Runs"))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    """One run: live training, then the embedding map, scorecard and reconstructions."""
    return templates.TemplateResponse(
        request, "run.html", _context(request, "run", title=f"Run {run_id}", run_id=run_id)
    )


@router.get("/runs/{run_id}/compare", response_class=HTMLResponse)
def compare_page(request: Request, run_id: str) -> HTMLResponse:
    """Two clusterings side by side (`?a=` and `?b=` clustering ids, `b` possibly from another run)."""
    return templates.TemplateResponse(
        request, "compare.html", _context(request, "compare", title=f"Compare clusterings · {run_id}", run_id=run_id)
    )


@router.api_route("/vendor/plotly.min.js", methods=["GET", "HEAD"])
def plotly_js(request: Request) -> Response:
    """The vendored Plotly bundle, cached for a year (the URL carries its version and hash)."""
    try:
        raw, compressed, etag = _plotly_bundle()
    except FileNotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    headers = {
        "Cache-Control": f"public, max-age={YEAR_SECONDS}, immutable",
        "ETag": etag,
        "Vary": "Accept-Encoding",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(compressed, media_type="text/javascript; charset=utf-8", headers=headers)
    return Response(raw, media_type="text/javascript; charset=utf-8", headers=headers)
