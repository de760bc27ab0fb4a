"""The augmentation inspector: a point's positive pairs under its contrastive run's own transform."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from app import images
from app.dependencies import DatasetCacheDep, RunDep, trained_point
from app.inspector import INSPECTOR, AugmentationInspector, Busy, Pending
from app.schemas import Message
from ml.ssl_health import CONTRASTIVE_METHODS

router = APIRouter(prefix="/api/runs/{run_id}", tags=["maps"])
MAX_PAIRS = 16  # ml.augmentation_pairs.MAX_PAIRS (that module imports torch; the server does not)
RETRY_AFTER_SECONDS = 2


class AugmentationPair(BaseModel):
    a: str = Field(description="the first view, a PNG data: URL")
    b: str = Field(description="the second view, a PNG data: URL")
    similarity: float = Field(description="cosine similarity of the two views' embeddings under the trained encoder")
    similarity_to_original: list[float] = Field(description="cosine similarity of view a and of view b to the clean image")


class NearestOther(BaseModel):
    index: int
    similarity: float = Field(description="cosine similarity of the image to its nearest other image in the embedding")


class AugmentationPairs(BaseModel):
    run_id: str
    index: int
    method: str
    original: str = Field(description="the image, a PNG data: URL")
    pairs: list[AugmentationPair]
    mean_pair_similarity: float
    nearest: NearestOther
    median_similarity: float = Field(description="median cosine similarity of the image to every other image")


def get_inspector() -> AugmentationInspector:
    return INSPECTOR


InspectorDep = Annotated[AugmentationInspector, Depends(get_inspector)]


@router.get("/points/{index}/augmentations", response_model=AugmentationPairs,
            responses={404: {"model": Message}, 409: {"model": Message}, 503: {"model": Message}})
def augmentations(index: int, run: RunDep, cache: DatasetCacheDep, inspector: InspectorDep,
                  pairs: Annotated[int, Query(ge=1, le=MAX_PAIRS, description="how many positive pairs")] = 8,
                  size: Annotated[int, Query(ge=16, le=256, description="longer side of each view in px")] = 96,
                  ) -> AugmentationPairs:
    """Image `index` as the run's view transform makes its positive pairs, with each pair's cosine
    similarity under the trained encoder, beside the image's similarity to its nearest other image.

    Runs in the inspector's own worker process (not a training worker), one request at a time;
    the same point always gets the same pairs (seeded by the run's seed and the index), cached.
    An answer not ready within a few seconds (the first starts the process) is a 503 with
    Retry-After while the work goes on: asking again later gets it from the cache.
    """
    if run.method not in CONTRASTIVE_METHODS:
        raise HTTPException(409, f"run {run.id} was trained with {run.method}, which makes no augmented views; "
                                 f"the augmentation inspector needs a contrastive run ({', '.join(CONTRASTIVE_METHODS)})")
    run_dir, n = trained_point(run, index, "trained encoder")
    try:
        dataset = cache.get(run.dataset)
    except Exception as exc:  # the dataset may have been removed since training
        raise HTTPException(409, f"the images of dataset {run.dataset!r} are not available: {exc}") from None
    if len(dataset) != n:
        raise HTTPException(409, f"dataset {run.dataset!r} now has {len(dataset)} images, the run embedded {n}")
    try:
        answer = inspector.pairs(run_dir, dataset.images[index], index, pairs)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    except Pending as exc:  # the work goes on; the page asks again after Retry-After
        raise HTTPException(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except Busy as exc:
        raise HTTPException(503, str(exc)) from None
    similarity = [float(value) for value in answer["pair_similarity"]]
    return AugmentationPairs(
        run_id=run.id, index=index, method=run.method, original=images.data_url(dataset.images[index], size),
        pairs=[AugmentationPair(a=images.data_url(view_a, size), b=images.data_url(view_b, size), similarity=value,
                                similarity_to_original=[float(v) for v in to_original])
               for (view_a, view_b), value, to_original in zip(answer["views"], similarity, answer["original_similarity"])],
        mean_pair_similarity=sum(similarity) / len(similarity),
        nearest=NearestOther(index=answer["nearest_index"], similarity=answer["nearest_similarity"]),
        median_similarity=answer["median_similarity"],
    )
