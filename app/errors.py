"""Exception handlers: errors in a person's input become 4xx answers with a message, never a 500."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ml.datasets import DatasetError
from ml.params import ParamError


async def _unprocessable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ParamError, _unprocessable)
    app.add_exception_handler(DatasetError, _unprocessable)
