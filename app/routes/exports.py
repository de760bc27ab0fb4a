"""Export: a run as Parquet or as a zipped TensorBoard projector folder, for download."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.dependencies import DatasetCacheDep, RegistryDep, RunDep
from app.exports import ExportRefused, export_archive, temporary_workspace
from app.heavy import heavy
from app.schemas import Message

router = APIRouter(prefix="/api/runs/{run_id}", tags=["runs"])
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "projector": "application/zip"}


@router.get("/export", response_class=FileResponse,
            responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}},
                       404: {"model": Message}, 409: {"model": Message}})
@heavy
def export(run: RunDep, registry: RegistryDep, cache: DatasetCacheDep,
           format: Annotated[Literal["parquet", "projector"], Query(description="parquet, or projector (a .zip)")] = "parquet",
           ) -> FileResponse:
    """The run's embedding, labels, class names, metadata, images, every projection and clustering."""
    workspace = temporary_workspace()
    try:
        path = export_archive(run, registry, cache.get, format, Path(workspace.name))
    except ExportRefused as exc:
        workspace.cleanup()
        raise HTTPException(409, str(exc)) from None
    except BaseException:
        workspace.cleanup()
        raise
    return FileResponse(path, media_type=MEDIA_TYPES[format], filename=path.name,
                        background=BackgroundTask(workspace.cleanup))
