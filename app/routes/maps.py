"""What the map page shows of a run: points, neighbours of a point, clustering comparison, reconstructions."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from app import images, run_files, run_metadata
from app.decoder import reconstruction_errors
from app.dependencies import DatasetCacheDep, RegistryDep, RunDep, trained_point
from app.heavy import heavy
from app.records import Analysis, Run
from app.registry import Registry
from app.responses import analysis_out
from app.schemas import (
    AgreementScores,
    Category,
    Comparison,
    Message,
    Neighbor,
    Neighbors,
    Points,
    Reconstructions,
    VsLabels,
)

router = APIRouter(prefix="/api/runs/{run_id}", tags=["maps"])
GZIP_MIN_BYTES = 1024


def _finished(kind: str, run: Run, registry: Registry, wanted: str | None) -> Analysis | None:
    """The run's projection/clustering `wanted` (404/409 when unusable), or its newest finished one."""
    items = registry.list_projections(run.id) if kind == "projection" else registry.list_clusterings(run.id)
    if wanted is None:
        done = [item for item in items if item.status == "succeeded"]
        return done[-1] if done else None
    item = next((item for item in items if item.id == wanted), None)
    if item is None:
        raise HTTPException(404, f"run {run.id} has no {kind} {wanted!r}")
    if item.status != "succeeded":
        raise HTTPException(409, f"{kind} {wanted} is {item.status}, not finished")
    return item


def _cluster_array(run: Run, clustering: Analysis | None) -> np.ndarray | None:
    if clustering is None:
        return None
    array = run_files.cluster_labels(Path(run.run_dir), clustering.id)
    if array is None:
        raise HTTPException(409, f"clustering {clustering.id}'s files are missing from {run.run_dir}")
    return array


@router.get("/points", response_model=Points, responses={404: {"model": Message}, 409: {"model": Message}})
@heavy
def points(run: RunDep, registry: RegistryDep, cache: DatasetCacheDep, request: Request,
           projection: Annotated[str | None, Query(description="projection id; default the newest finished")] = None,
           clustering: Annotated[str | None, Query(description="clustering id; default the newest finished")] = None,
           ) -> Response:
    """Coordinates, labels, clusters and per-point values as base64 little-endian typed arrays
    (gzip-compressed when the client accepts it: the payload is large and compresses well)."""
    chosen = _finished("projection", run, registry, projection)
    if chosen is None:
        raise HTTPException(409, f"run {run.id} has no finished projection yet; wait for its jobs or POST one")
    run_dir = Path(run.run_dir)
    xy = run_files.coords(run_dir, chosen.id)
    if xy is None:
        raise HTTPException(409, f"projection {chosen.id}'s files are missing from {run.run_dir}")
    clustering_row = _finished("clustering", run, registry, clustering)
    clusters = _cluster_array(run, clustering_row)
    point_labels = run_files.labels(run_dir)
    values: dict[str, str] = {}
    preservation, chosen = _preservation(run_dir, chosen, registry)
    if preservation is not None and len(preservation) == len(xy):
        values["neighbourhood_preservation"] = run_files.b64(preservation, "<f4")
    stability = run_files.cluster_stability(run_dir, clustering_row.id) if clustering_row is not None else None
    if stability is not None and len(stability) == len(xy):
        values["stability"] = run_files.b64(stability, "<f4")
    errors = reconstruction_errors(run, lambda: cache.get(run.dataset).images)
    if errors is not None and len(errors) == len(xy):
        values["reconstruction_error"] = run_files.b64(errors, "<f4")
    if point_labels is not None:
        agreement = run_files.knn_agreement(run_dir)
        if agreement is not None and len(agreement) == len(xy):
            values["knn_agreement"] = run_files.b64(agreement, "<f4")
    imported = run_metadata.run_columns(run_dir)
    values.update({name: run_files.b64(column, "<f4") for name, column in imported.numeric.items() if len(column) == len(xy)})
    categories = {name: Category(codes=run_files.b64(codes, "<i4"), names=names)
                  for name, (codes, names) in imported.categorical.items() if len(codes) == len(xy)}
    class_names = run_files.class_names(run_dir) if point_labels is not None else None
    if point_labels is not None and class_names is None:
        try:
            class_names = cache.get(run.dataset).class_names
        except Exception:  # the dataset may have been removed since training; the map still works
            class_names = None
    body = Points(
        run_id=run.id, dataset=run.dataset, n=int(len(xy)),
        projection=analysis_out(chosen), clustering=analysis_out(clustering_row) if clustering_row else None,
        x=run_files.b64(xy[:, 0], "<f4"), y=run_files.b64(xy[:, 1] if xy.shape[1] > 1 else np.zeros(len(xy)), "<f4"),
        label=run_files.b64(point_labels, "<i2") if point_labels is not None else None,
        cluster=run_files.b64(clusters, "<i4") if clusters is not None else None,
        class_names=class_names, values=values, categories=categories,
    ).model_dump_json().encode()
    return _json_response(body, request)


def _preservation(run_dir: Path, projection: Analysis, registry: Registry) -> tuple[np.ndarray | None, Analysis]:
    """The projection's per-point neighbourhood preservation, and the projection; computed the first time
    for a projection made before it existed, whose mean then joins its metrics (the scorecard shows it)."""
    values = run_files.neighbourhood_preservation(run_dir, projection.id)
    if values is None:
        return None, projection
    if "neighbourhood_preservation" not in (projection.metrics or {}):
        metrics = {**(projection.metrics or {}), "neighbourhood_preservation": float(values.mean())}
        registry.update_analysis("projections", projection.id, projection.status, metrics)
        projection = registry.get_projection(projection.id) or projection
    return values, projection


def _json_response(body: bytes, request: Request) -> Response:
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > GZIP_MIN_BYTES:
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/neighbors/{index}", response_model=Neighbors,
            responses={404: {"model": Message}, 409: {"model": Message}})
@heavy
def neighbors(index: int, run: RunDep, registry: RegistryDep,
              k: Annotated[int, Query(ge=1, le=200)] = 10,
              clustering: Annotated[str | None, Query(description="add this clustering's ids; default newest")] = None,
              ) -> Neighbors:
    """Point `index`'s k nearest neighbours in the embedding (Euclidean), nearest first."""
    from ml.analysis.neighbors import neighbors_of

    run_dir, _ = trained_point(run, index, "embedding")
    found, distances = neighbors_of(run_dir, index, k)
    point_labels = run_files.labels(run_dir)
    clusters = _cluster_array(run, _finished("clustering", run, registry, clustering))
    return Neighbors(index=index, neighbors=[
        Neighbor(index=int(i), distance=float(d),
                 label=int(point_labels[i]) if point_labels is not None else None,
                 cluster=int(clusters[i]) if clusters is not None else None)
        for i, d in zip(found, distances)
    ])


def _scores(metrics: dict | None) -> AgreementScores:
    metrics = metrics or {}
    return AgreementScores(ari=metrics.get("ari"), nmi=metrics.get("nmi"), accuracy=metrics.get("accuracy"))


@router.get("/compare", response_model=Comparison,
            responses={404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}})
@heavy
def compare(run: RunDep, registry: RegistryDep,
            a: Annotated[str, Query(description="a clustering of this run")],
            b: Annotated[str, Query(description="a clustering of this run or of another run on the same dataset")],
            ) -> Comparison:
    """Contingency table and agreement (ARI, NMI, matched accuracy) between two clusterings."""
    from ml.analysis.cluster_metrics import compare_clusterings

    first = _finished("clustering", run, registry, a)
    second_row = registry.get_clustering(b)
    if second_row is None:
        raise HTTPException(404, f"no clustering {b!r}")
    second_run = registry.get_run(second_row.run_id)
    assert first is not None and second_run is not None
    if second_run.dataset != run.dataset:
        raise HTTPException(422, f"b: clustering {b} is of dataset {second_run.dataset!r}, not {run.dataset!r}")
    second = _finished("clustering", second_run, registry, b)
    assert second is not None
    first_labels, second_labels = _cluster_array(run, first), _cluster_array(second_run, second)
    assert first_labels is not None and second_labels is not None
    if len(first_labels) != len(second_labels):
        raise HTTPException(422, f"b: clustering {b} has {len(second_labels)} points, {a} has {len(first_labels)}")
    result = compare_clusterings(first_labels, second_labels)
    labelled = run_files.labels(Path(run.run_dir)) is not None
    return Comparison(
        a=analysis_out(first), b=analysis_out(second), ari=result["ari"], nmi=result["nmi"],
        accuracy=result["accuracy"], contingency=result["contingency"], a_ids=result["a_ids"], b_ids=result["b_ids"],
        vs_labels=VsLabels(a=_scores(first.metrics), b=_scores(second.metrics)) if labelled else None,
    )


@router.get("/reconstructions", response_model=Reconstructions, responses={404: {"model": Message}})
@heavy
def reconstructions(run: RunDep,
                    size: Annotated[int, Query(ge=8, le=256, description="longer side in px")] = 64) -> Reconstructions:
    """Sample originals next to their autoencoder reconstructions, as PNG data: URLs."""
    stored = run_files.reconstructions(Path(run.run_dir))
    if stored is None:
        raise HTTPException(404, f"run {run.id} has no reconstructions"
                                 f" ({'training has not finished' if run.status != 'succeeded' else f'{run.method} is not an autoencoder'})")
    return Reconstructions(
        run_id=run.id, indices=[int(i) for i in stored["indices"]],
        originals=[images.data_url(_hwc(p), size) for p in stored["originals"]],
        reconstructions=[images.data_url(_hwc(p), size) for p in stored["reconstructions"]],
    )


def _hwc(pixels: np.ndarray) -> np.ndarray:
    """uint8 H × W × C, whatever layout the file used (H × W, H × W × C)."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array * (255.0 if array.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    return array[..., None] if array.ndim == 2 else array
