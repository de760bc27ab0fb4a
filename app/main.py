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
from app.jobs import LocalJobRunner
from app.processes import job_process_alive
from app.registry import Registry
from app.routes import augmentations, clusterings, datasets, health, jobs, maps, methods, pages, projections, runs
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
    interrupted = registry.reconcile(job_process_alive(registry))
    if interrupted:
        log.warning("marked %d job(s) interrupted (left running by a previous process)", len(interrupted))
    runner = LocalJobRunner(registry, settings.data_dir, settings.datasets_dir, workers=settings.workers,
                            warm_up=settings.warm_up, cancel_grace=settings.cancel_grace_seconds)
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


def document_error_answers(app: FastAPI) -> None:
    """Declare the error answers the app really sends, so clients can rely on the schema:
    every 422 is a Message (`detail` is a sentence, from the routes and the error handlers) or FastAPI's
    request validation errors (`detail` is a list of field errors), and an operation with a request
    body answers 400 (Message) when the body cannot be parsed at all (e.g. it is not UTF-8 JSON).

    Found by fuzzing the schema: routes declared 422 as Message only or as the list only while both
    kinds were sent, and the 400 was undeclared.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "Message" not in components or "HTTPValidationError" not in components:
            return schema
        message = {"$ref": "#/components/schemas/Message"}
        either = {"anyOf": [message, {"$ref": "#/components/schemas/HTTPValidationError"}]}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict):
                    continue
                answers = operation.setdefault("responses", {})
                if "422" in answers:
                    answers["422"]["content"] = {"application/json": {"schema": either}}
                if "requestBody" in operation and "400" not in answers:
                    answers["400"] = {"description": "The request body cannot be parsed",
                                      "content": {"application/json": {"schema": message}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` (else get_settings()) decides the data directory and workers."""
    app = FastAPI(title="latentmap", version="0.1.0", lifespan=lifespan,
                  description="Train autoencoders and contrastive encoders on images and explore their embeddings.")
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    install_security(app)
    for module in (health, methods, datasets, runs, jobs, projections, clusterings, maps, augmentations, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR, check_dir=False), name="static")
    document_error_answers(app)
    return app
