"""The app factory: builds the FastAPI app; heavy resources are opened in the lifespan."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.dataset_cache import DatasetCache
from app.errors import install_error_handlers
from app.jobs import LocalJobRunner
from app.registry import Registry
from app.routes import clusterings, datasets, health, jobs, maps, methods, pages, projections, runs
from app.security import install_security
from app.settings import Settings, get_settings

log = logging.getLogger("latentmap")


def _process_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.dependency_overrides.get(get_settings, get_settings)()
    registry = Registry(settings.registry_path).open()
    interrupted = registry.reconcile(_process_alive)
    if interrupted:
        log.warning("marked %d job(s) interrupted (left running by a previous process)", len(interrupted))
    runner = LocalJobRunner(registry, settings.data_dir, settings.datasets_dir, workers=settings.workers,
                            warm_up=settings.warm_up, cancel_grace=settings.cancel_grace_seconds)
    app.state.registry = registry
    app.state.runner = runner
    app.state.datasets = DatasetCache(registry, settings.datasets_dir, settings.dataset_cache_size)
    runner.start()
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
    for module in (health, methods, datasets, runs, jobs, projections, clusterings, maps, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR, check_dir=False), name="static")
    return app
