"""Imports: embeddings computed elsewhere, uploaded as a file, become a run of kind `imported` (202 + job)."""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from app.dependencies import DatasetCacheDep, RegistryDep, RunnerDep, SettingsDep
from app.heavy import heavy
from app.imports import ImportOptions, ImportRefused, land_import, matched_dataset, read_import
from app.schemas import Message, RunCreated
from ml.datasets import DatasetError, ZipLimits
from ml.interchange import InterchangeError, detect_format
from ml.interchange.archive import unpack_projector_zip

router = APIRouter(prefix="/api/imports", tags=["imports"])

UPLOAD_CHUNK = 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
OPTION_FIELDS = ("format", "name", "labels_column", "image_column", "embedding_column", "dataset")
OPTIONS_HELP = ('JSON object, all optional: {"format": "auto|npy|csv|tsv|parquet|projector", "name", "labels_column",'
                ' "image_column", "embedding_column", "dataset"}')


@router.post("", response_model=RunCreated, status_code=202,
             responses={404: {"model": Message}, 413: {"model": Message}, 422: {"model": Message}})
@heavy
def create_import(registry: RegistryDep, runner: RunnerDep, settings: SettingsDep, cache: DatasetCacheDep,
                  file: Annotated[UploadFile, File(description="a .npy, .csv, .tsv or .parquet file, or a .zip of a"
                                                               " TensorBoard projector folder")],
                  options: Annotated[str, Form(description=OPTIONS_HELP)] = "{}") -> RunCreated:
    """Read and check the upload (every refusal is a 4xx naming the problem, and no run is made), land
    it as a run and queue its import job: scores, the map it came with (x/y), the default analyses."""
    chosen = _options(options)
    source_name = _safe_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="latentmap-import-") as workspace:
        path = Path(workspace) / source_name
        _spool(file, path, settings.upload_max_bytes)
        try:
            if chosen.format in ("auto", "projector") and _is_zip(path):
                limits = ZipLimits(max_archive_bytes=settings.upload_max_bytes, max_files=settings.upload_max_files)
                with open(path, "rb") as handle:
                    path = unpack_projector_zip(handle, Path(workspace) / "unpacked", limits)
                chosen = ImportOptions(**{**chosen.__dict__, "format": "projector"})
            table = read_import(path, chosen)
            dataset = matched_dataset(table, chosen, registry, settings.datasets_dir, cache.get)
            source_format = chosen.format if chosen.format != "auto" else detect_format(path)
        except ImportRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except (InterchangeError, DatasetError) as exc:
            raise HTTPException(422, str(exc)) from None
        follow_ups = {"projection": settings.default_projection, "clustering": settings.default_clustering}
        run_id, job = land_import(registry, settings.data_dir, settings.uploads_dir, table, chosen, dataset,
                                  source_format, source_name, follow_ups=follow_ups)
    runner.submit(job.id)
    return RunCreated(run_id=run_id, job_id=job.id)


def _options(text: str) -> ImportOptions:
    try:
        given: Any = json.loads(text or "{}")
    except ValueError:
        raise HTTPException(422, f"options: not JSON; expected {OPTIONS_HELP}") from None
    if not isinstance(given, dict):
        raise HTTPException(422, f"options: expected {OPTIONS_HELP}")
    unknown = sorted(set(given) - set(OPTION_FIELDS))
    if unknown:
        raise HTTPException(422, f"options: unknown field {unknown[0]!r}; known: {', '.join(OPTION_FIELDS)}")
    for key, value in given.items():
        if value is not None and not isinstance(value, str):
            raise HTTPException(422, f"options.{key}: expected a string, got {type(value).__name__}")
    try:
        return ImportOptions(**{key: value for key, value in given.items() if value not in (None, "")})
    except ImportRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _safe_name(filename: str | None) -> str:
    """The upload's file name, reduced to safe characters (it names the run and tells the format by suffix)."""
    name = re.sub(r"[^\w.-]+", "_", Path(filename or "").name).strip("._")[:120]
    return name or "upload"


def _spool(file: UploadFile, path: Path, limit: int) -> None:
    size = 0
    with open(path, "wb") as handle:
        while chunk := file.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"the upload is larger than the limit of {limit:,} bytes")
            handle.write(chunk)
    if size == 0:
        raise HTTPException(422, "the upload is empty (N = 0)")


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == ZIP_MAGIC
