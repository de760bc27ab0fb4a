"""What the decoder sees, without torch: the latent code at a map position, and codes between two points.

A map position has no code of its own: it is estimated by inverse-distance weighting (Shepard) of
the codes of the `k` points nearest to it on the map, weights 1 / distance² (a position on a point
gets that point's code exactly). The decoder (ml.decoder, torch) turns codes into images.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ml.methods import specs
from ml.ssl_health import CONTRASTIVE_METHODS

AUTOENCODER_METHODS = (specs.AE.name, specs.DAE.name, specs.SPARSE_AE.name, specs.CAE.name)
IDW_K = 8
IDW_POWER = 2
MAP_MARGIN = 0.05  # a position may lie this fraction of the map's width or height outside its points
RECONSTRUCTION_ERRORS = "reconstruction_errors.npy"


def has_decoder(method: str, method_params: dict[str, Any] | None) -> bool:
    """Whether a run of `method` trained with `method_params` has a decoder: every autoencoder does; a
    contrastive run does when it was trained with a reconstruction_weight above 0 (runs from before that
    parameter existed were not, and their saved params lack it)."""
    if method in AUTOENCODER_METHODS:
        return True
    return method in CONTRASTIVE_METHODS and float((method_params or {}).get("reconstruction_weight", 0)) > 0


def estimate_description(k: int = IDW_K) -> str:
    """How a position's code is estimated, in a few words (the decode endpoint's header says it)."""
    return f"idw k={k} power={IDW_POWER}"


def outside_map(coords: np.ndarray, x: float, y: float, margin: float = MAP_MARGIN) -> str | None:
    """Why (x, y) is too far outside the map's points (N × 2) to estimate a code there, or None."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    pad = (high - low) * margin
    for name, value, lo, hi in (("x", x, low[0] - pad[0], high[0] + pad[0]), ("y", y, low[1] - pad[1], high[1] + pad[1])):
        if not np.isfinite(value) or not lo <= value <= hi:
            return f"{name}={value} is outside the map ({lo:.4g} .. {hi:.4g}, its points' range and a {margin:.0%} margin)"
    return None


def idw_code(coords: np.ndarray, codes: np.ndarray, x: float, y: float, k: int = IDW_K) -> np.ndarray:
    """The code (float32 d) at map position (x, y): inverse-distance weighting (1 / distance²) of the
    codes (N × d) of the k points nearest on the map (coords N × 2); a point's own position gives its code."""
    distances = np.hypot(coords[:, 0] - x, coords[:, 1] - y)
    k = min(k, len(distances))
    nearest = np.argpartition(distances, k - 1)[:k]
    closest = distances[nearest]
    if closest.min() == 0.0:
        return codes[nearest[np.argmin(closest)]].astype(np.float32)
    weights = 1.0 / closest**IDW_POWER
    return (weights @ codes[nearest] / weights.sum()).astype(np.float32)


def line_codes(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` codes (float32 steps × d) evenly spaced on the straight line from code a to code b, both included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    return ((1.0 - t) * a[None, :] + t * b[None, :]).astype(np.float32)
