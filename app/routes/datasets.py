"""Datasets: the built-in ones, uploads (.zip), thumbnails and atlas sprite sheets."""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from typing import Annotated, Callable

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response

from app import images
from app.dataset_source import is_known
from app.dependencies import DatasetCacheDep, RegistryDep, SettingsDep
from app.heavy import heavy
from app.schemas import Atlas, DatasetDetail, DatasetSummary, DatasetUploaded, Message
from ml.datasets import ArchiveError, ImageDataset, ZipLimits, import_zip, list_datasets

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CACHE_CONTROL = "public, max-age=86400"
UPLOAD_CHUNK = 1024 * 1024


@router.get("", response_model=list[DatasetSummary])
def datasets(registry: RegistryDep, settings: SettingsDep) -> list[DatasetSummary]:
    builtin = [DatasetSummary(name=info.name, source="builtin", available=info.available, n=info.n_images,
                              image_shape=list(info.image_shape) if info.image_shape else None,
                              has_labels=info.has_labels, description=info.description)
               for info in list_datasets(settings.datasets_dir)]
    uploaded = [DatasetSummary(name=record.name, source="uploaded", available=True, n=record.n,
                               has_labels=bool(record.report.get("classes")), description=record.description)
                for record in registry.list_datasets()]
    return builtin + uploaded


@router.post("", response_model=DatasetUploaded, status_code=201,
             responses={409: {"model": Message}, 413: {"model": Message}, 422: {"model": Message}})
@heavy
def upload_dataset(registry: RegistryDep, settings: SettingsDep,
                   file: Annotated[UploadFile, File(description="a .zip of PNG/JPEG images (class sub-folders optional)")],
                   name: Annotated[str, Form(description="lower-case letters, digits, - and _")]) -> DatasetUploaded:
    if not NAME_PATTERN.match(name):
        raise HTTPException(422, f"name {name!r} must be 1-64 characters of a-z, 0-9, - and _, starting with a letter or digit")
    if is_known(name, registry, settings.datasets_dir):
        raise HTTPException(409, f"a dataset named {name!r} already exists; choose another name")
    limits = ZipLimits(max_archive_bytes=settings.upload_max_bytes, max_files=settings.upload_max_files,
                       max_image_pixels=settings.upload_max_image_pixels)
    target = settings.uploads_dir / name
    with tempfile.TemporaryFile() as spooled:
        size = 0
        while chunk := file.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > settings.upload_max_bytes:
                raise HTTPException(413, f"the upload is larger than the limit of {settings.upload_max_bytes:,} bytes")
            spooled.write(chunk)
        spooled.seek(0)
        try:
            report = import_zip(spooled, target, limits)
        except ArchiveError as exc:
            raise HTTPException(422, str(exc)) from None
    try:
        record = registry.add_dataset(name, target, report.images, report.to_dict())
    except KeyError:  # another upload of the same name won the race
        shutil.rmtree(target, ignore_errors=True)
        raise HTTPException(409, f"a dataset named {name!r} already exists; choose another name") from None
    return DatasetUploaded(name=record.name, n=record.n, report=record.report)


def _registered_folder(name: str, registry: RegistryDep) -> bool:
    """A `folder:PATH` dataset that a registered run was trained on (`latentmap train --dataset folder:PATH`).

    Only those: serving any folder a request names would expose every image on the server's disk.
    """
    return name.startswith("folder:") and any(run.dataset == name for run in registry.list_runs())


def _load(name: str, registry: RegistryDep, settings: SettingsDep, cache: DatasetCacheDep) -> ImageDataset:
    if not (is_known(name, registry, settings.datasets_dir) or _registered_folder(name, registry)):
        raise HTTPException(404, f"no dataset named {name!r}; GET /api/datasets lists them")
    return cache.get(name)


@router.get("/{name}", response_model=DatasetDetail, responses={404: {"model": Message}, 422: {"model": Message}})
@heavy
def dataset(name: str, registry: RegistryDep, settings: SettingsDep, cache: DatasetCacheDep) -> DatasetDetail:
    loaded = _load(name, registry, settings, cache)
    return DatasetDetail(name=name, n=len(loaded), image_shape=list(loaded.image_shape), has_labels=loaded.has_labels,
                         class_names=loaded.class_names,
                         atlas=Atlas(tile=images.ATLAS_TILE, columns=images.ATLAS_COLUMNS, per_page=images.ATLAS_PER_PAGE,
                                     pages=images.atlas_pages(len(loaded))))


def _etag(*parts: object) -> str:
    return '"' + hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16] + '"'


def _png(request: Request, etag: str, render: Callable[[], bytes]) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(render(), media_type="image/png", headers=headers)


@router.get("/{name:path}/images/{index}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"model": Message}})
@heavy
def image(name: str, index: int, request: Request, registry: RegistryDep, settings: SettingsDep,
          cache: DatasetCacheDep,
          size: Annotated[int, Query(ge=8, le=512, description="longer side in px")] = images.THUMBNAIL_SIZE) -> Response:
    loaded = _load(name, registry, settings, cache)
    if not 0 <= index < len(loaded):
        raise HTTPException(404, f"dataset {name!r} has images 0..{len(loaded) - 1}, not {index}")
    etag = _etag(cache.version(name), index, size)
    return _png(request, etag, lambda: images.thumbnail_png(loaded, index, size))


@router.get("/{name:path}/atlas", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"model": Message}})
@heavy
def atlas(name: str, request: Request, registry: RegistryDep, settings: SettingsDep, cache: DatasetCacheDep,
          page: Annotated[int, Query(ge=0)] = 0,
          size: Annotated[int, Query(ge=4, le=images.ATLAS_MAX_TILE, description="tile size in px")] = images.ATLAS_TILE,
          ) -> Response:
    loaded = _load(name, registry, settings, cache)
    pages = images.atlas_pages(len(loaded))
    if page >= pages:
        raise HTTPException(404, f"dataset {name!r} has atlas pages 0..{pages - 1}, not {page}")
    etag = _etag(cache.version(name), "atlas", page, size)
    return _png(request, etag, lambda: cache.rendered(("atlas", name, page, size),
                                                      lambda: images.atlas_png(loaded, page, size)))


# A folder dataset's name holds slashes (folder:/path/to/images): its detail route comes last, so that
# ".../images/{index}" and ".../atlas" are never taken for part of a name.
router.add_api_route("/{name:path}", dataset, methods=["GET"], response_model=DatasetDetail, include_in_schema=False,
                     responses={404: {"model": Message}, 422: {"model": Message}})
