"""The app factory: builds the FastAPI app; heavy resources are opened in the lifespan."""
from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import catalog
from app.dataset_cache import DatasetCache
from app.errors import install_error_handlers
from app.jobs import build_runner
from app.openapi import document_answers
from app.registry import Registry
from app.routes import (augmentations, clusterings, datasets, decoder, exports, health, imports, jobs, maps, methods,
                        pages, projections, runs, search, timeline)
from app.security import install_security
from app.settings import Settings, get_settings

log = logging.getLogger("latentmap")


DEFAULT_DATASET = "digits"


def _preload(datasets: DatasetCache, name: str) -> None:
    try:
        datasets.get(name)
    except Exception:  # the request that needs it reports the problem
        log.exception("could not preload dataset %s", name)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.dependency_overrides.get(get_settings, get_settings)()
    registry = Registry(settings.registry_path).open()
    runner = build_runner(registry, settings)
    interrupted = runner.reconcile()
    if interrupted:
        log.warning("marked %d job(s) interrupted or failed (left running by a previous process)", len(interrupted))
    app.state.registry = registry
    app.state.runner = runner
    app.state.datasets = DatasetCache(registry, settings.datasets_dir, settings.dataset_cache_size)
    runner.start()
    await anyio.to_thread.run_sync(catalog.describe_methods)
    # The embedded default dataset, loaded while the workers start, so that the first *Train* on
    # digits does not wait for it (≈1.5 s on 2 cores: scikit-learn's loader and the image tensors).
    threading.Thread(target=_preload, args=(app.state.datasets, DEFAULT_DATASET), name="latentmap-preload",
                     daemon=True).start()
    try:
        yield
    finally:
        runner.shutdown()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` (else get_settings()) decides the data directory and workers."""
    app = FastAPI(title="latentmap", version="0.1.0", lifespan=lifespan,
                  description="Train autoencoders and contrastive encoders on images and explore their embeddings.")
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    install_security(app)
    for module in (health, methods, datasets, runs, imports, exports, jobs, projections, clusterings, maps, search,
                   augmentations, timeline, decoder, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR, check_dir=False), name="static")
    document_answers(app)
    return app
