"""What the decoder of a run sees (an autoencoder's, or a contrastive run's trained with a
reconstruction weight): the image at a map position, and images along the line between two
points' codes (PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from app import images, run_files
from app.decoder import DECODER, Busy, Decoder, Pending
from app.dependencies import RegistryDep, RunDep
from app.heavy import heavy
from app.records import Run
from app.schemas import Message
from ml import artifacts
from ml.analysis.decoding import AUTOENCODER_METHODS, estimate_description, has_decoder, idw_code, line_codes, outside_map

router = APIRouter(prefix="/api/runs/{run_id}", tags=["maps"])
RETRY_AFTER_SECONDS = 2
PNG = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
REFUSALS = {404: {"model": Message}, 409: {"model": Message}, 422: {"model": Message}, 503: {"model": Message}}


def get_decoder() -> Decoder:
    return DECODER


DecoderDep = Annotated[Decoder, Depends(get_decoder)]


def _decodable(run: Run) -> tuple[Path, np.ndarray]:
    """The run directory and codes (float32 N × d) of a finished run with a decoder; 409 otherwise."""
    if not has_decoder(run.method, run.config.get("method_params")):
        raise HTTPException(409, f"run {run.id} was trained with {run.method} without a decoder; decoding needs an"
                                 f" autoencoder run ({', '.join(AUTOENCODER_METHODS)}) or a contrastive run trained"
                                 " with a reconstruction_weight above 0")
    run_dir = Path(run.run_dir)
    codes = run_files.load_array(run_dir / artifacts.EMBEDDINGS)
    if run.status != "succeeded" or codes is None or not (run_dir / artifacts.MODEL).exists():
        raise HTTPException(409, f"run {run.id} has no trained decoder yet (status {run.status})")
    return run_dir, codes


def _decoded_png(decoder: Decoder, run_dir: Path, codes: np.ndarray, size: int, headers: dict[str, str]) -> Response:
    try:
        drawn = decoder.images(run_dir, codes)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    except Pending as exc:  # the work goes on; asking again gets it from the cache
        raise HTTPException(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except Busy as exc:
        raise HTTPException(503, str(exc)) from None
    body = images.png_bytes(images.resized(drawn[0], size)) if len(drawn) == 1 else images.strip_png(drawn, size)
    return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=3600", **headers})


@router.get("/decode", response_class=Response, responses={**PNG, **REFUSALS})
@heavy
def decode(run: RunDep, registry: RegistryDep, decoder: DecoderDep,
           projection: Annotated[str, Query(description="the map (a projection of this run) x and y are on")],
           x: Annotated[float, Query(description="map position, within the map's range (5% margin)")],
           y: Annotated[float, Query(description="map position, within the map's range (5% margin)")],
           size: Annotated[int, Query(ge=8, le=256, description="longer side in px")] = 96) -> Response:
    """The image the decoder draws at a map position. The latent code there is estimated from the
    codes of the 8 points nearest to it on the map by inverse-distance weighting (1 / distance²);
    the X-Latentmap-Estimate header says so."""
    run_dir, codes = _decodable(run)
    item = registry.get_projection(projection)
    if item is None or item.run_id != run.id:
        raise HTTPException(404, f"run {run.id} has no projection {projection!r}")
    coords = run_files.coords(run_dir, projection) if item.status == "succeeded" else None
    if coords is None or coords.ndim != 2 or coords.shape[1] < 2 or len(coords) != len(codes):
        raise HTTPException(409, f"projection {projection} is {item.status}; decoding needs a finished map of 2 or more"
                                 " dimensions")
    reason = outside_map(coords[:, :2], x, y)
    if reason is not None:
        raise HTTPException(422, reason)
    code = idw_code(coords[:, :2], codes, x, y)
    return _decoded_png(decoder, run_dir, code[None, :], size, {"X-Latentmap-Estimate": estimate_description()})


@router.get("/interpolate", response_class=Response, responses={**PNG, **REFUSALS})
@heavy
def interpolate(run: RunDep, decoder: DecoderDep,
                a: Annotated[int, Query(description="index of the first point")],
                b: Annotated[int, Query(description="index of the last point")],
                steps: Annotated[int, Query(ge=2, le=32, description="images along the line, both ends included")] = 8,
                size: Annotated[int, Query(ge=8, le=256, description="longer side of each image in px")] = 64) -> Response:
    """One PNG strip, left to right: the images the decoder draws at `steps` evenly spaced codes on
    the straight line from point a's code to point b's."""
    run_dir, codes = _decodable(run)
    for name, index in (("a", a), ("b", b)):
        if not 0 <= index < len(codes):
            raise HTTPException(404, f"{name}: run {run.id} has points 0..{len(codes) - 1}, not {index}")
    return _decoded_png(decoder, run_dir, line_codes(codes[a], codes[b], steps), size,
                        {"X-Latentmap-Steps": str(steps)})
