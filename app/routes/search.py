"""Search a run's points by class name or imported metadata value."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query

from app import run_files, run_metadata
from app.dependencies import DatasetCacheDep, RunDep, trained_point
from app.heavy import heavy
from app.schemas import Message, SearchResult

router = APIRouter(prefix="/api/runs/{run_id}", tags=["maps"])


@router.get("/search", response_model=SearchResult, responses={404: {"model": Message}, 409: {"model": Message}})
@heavy
def search(run: RunDep, cache: DatasetCacheDep,
           q: Annotated[str, Query(min_length=1, max_length=200, description="text to find (case-insensitive)")],
           limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000) -> SearchResult:
    """The points whose class name, or the value of any imported text column, contains `q`."""
    run_dir, n = trained_point(run, 0, "points")
    labels = run_files.labels(run_dir)
    class_names = run_files.class_names(run_dir)
    if labels is not None and class_names is None:
        try:
            class_names = cache.get(run.dataset).class_names
        except Exception:  # the dataset may be gone: search the metadata only
            class_names = None
    found = run_metadata.search(run_metadata.run_columns(Path(run_dir)), labels, class_names, n, q)
    return SearchResult(query=q, total=int(len(found)), indices=[int(i) for i in found[:limit]])
