"""The app serving the full plotly.min.js instead of the partial bundle: the baseline of
`bench/bench_dashboard.py --plotly full|both` (same URL, headers and plotly.js version).

    uvicorn bench.full_plotly_app:create_app --factory
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI


def full_plotly_path() -> Path:
    """plotly.min.js of the installed `plotly` Python package: plotly.js with every trace type."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the full-bundle baseline needs the plotly Python package (its package_data/plotly.min.js)")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def plotly_js_version(path: Path) -> str:
    """The plotly.js version in a bundle's licence banner (`* plotly.js ... v4.1.1`)."""
    head = path.read_bytes()[:300].decode("utf-8", "replace")
    return head.split(" v", 1)[1].split()[0] if " v" in head else "?"


def create_app() -> FastAPI:
    """latentmap's app with the page route's bundle path pointed at the full plotly.min.js."""
    from app.main import create_app as create_latentmap_app
    from app.routes import pages

    pages.PLOTLY_JS = full_plotly_path()
    return create_latentmap_app()
