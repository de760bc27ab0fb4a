"""The decoder of runs that have one (autoencoders; contrastive runs with a reconstruction weight)
for the server: codes → images and each image's reconstruction error, computed in the model
process (app.model_worker; the server never imports torch), with the few most recently used
runs' models kept loaded there."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app import run_files
from app.model_worker import MODEL_WORKER, Busy, ModelWorker, Pending
from app.records import Run
from ml.analysis.decoding import RECONSTRUCTION_ERRORS, has_decoder

# The first decode also starts the model process and imports torch (about 10 s on a busy machine):
# it waits for that rather than asking the page to come back; past this it is a 503 + Retry-After.
DECODE_REPLY_SECONDS = 30.0
LOADED_MODELS = 3  # runs whose decoder stays loaded in the model process (a few MB each)

__all__ = ["DECODER", "Busy", "Decoder", "Pending"]


@lru_cache(maxsize=LOADED_MODELS)
def _with_decoder(run_dir: str, model_mtime_ns: int) -> Any:
    from ml.decoder import load_with_decoder

    return load_with_decoder(Path(run_dir))


def _model_version(run_dir: Path) -> int:
    return (Path(run_dir) / "model.pt").stat().st_mtime_ns


def _decode(run_dir: str, model_mtime_ns: int, codes: np.ndarray) -> np.ndarray:
    """Runs in the model process: uint8 M × H × W × C for codes M × d."""
    from ml.decoder import decode

    try:
        return decode(_with_decoder(run_dir, model_mtime_ns), codes)
    except FileNotFoundError as exc:  # the run was deleted meanwhile
        raise ValueError(str(exc)) from None


def _reconstruction_errors(run_dir: str, model_mtime_ns: int, images: np.ndarray) -> np.ndarray:
    """Runs in the model process: writes reconstruction_errors.npy (float32 N) and returns it."""
    from ml.decoder import write_reconstruction_errors

    return write_reconstruction_errors(Path(run_dir), _with_decoder(run_dir, model_mtime_ns), images)


class Decoder:
    """`images(run_dir, codes)` → decoded images; `start_reconstruction_errors` for runs trained before
    training wrote them."""

    def __init__(self, worker: ModelWorker = MODEL_WORKER, reply_seconds: float = DECODE_REPLY_SECONDS) -> None:
        self.worker, self.reply_seconds = worker, reply_seconds

    def images(self, run_dir: Path, codes: np.ndarray) -> np.ndarray:
        """uint8 M × H × W × C for codes (M × d). Raises ValueError (the run cannot be decoded: why),
        Pending (ask again) or Busy."""
        codes = np.ascontiguousarray(codes, dtype=np.float32)
        version = _model_version(run_dir)
        key = ("decode", str(run_dir), version, codes.shape, codes.tobytes())
        return self.worker.ask(key, _decode, str(run_dir), version, codes, what="the decoded images",
                               reply_seconds=self.reply_seconds)

    def start_reconstruction_errors(self, run_dir: Path, images: np.ndarray) -> None:
        """Have the model process compute and store reconstruction_errors.npy; returns at once (the
        points payload carries them from the next request on)."""
        key = ("reconstruction_errors", str(run_dir), _model_version(run_dir))
        try:
            self.worker.ask(key, _reconstruction_errors, str(run_dir), key[2], images, reply_seconds=0.0)
        except (Busy, ValueError, FileNotFoundError):  # Pending included: it goes on without us
            pass


DECODER = Decoder()


def reconstruction_errors(run: Run, load_images: Callable[[], np.ndarray], decoder: Decoder = DECODER) -> np.ndarray | None:
    """float32 (N,) per-image reconstruction MSE of a finished run with a decoder (written by training).
    For a run trained before training wrote them: None, after asking the model process to compute
    them from the images `load_images()` returns (uint8 N × H × W × C); later requests get them."""
    if not has_decoder(run.method, run.config.get("method_params")) or run.status != "succeeded":
        return None
    run_dir = Path(run.run_dir)
    stored = run_files.load_array(run_dir / RECONSTRUCTION_ERRORS)
    if stored is not None or not (run_dir / "model.pt").exists():
        return stored
    try:
        images = load_images()
    except Exception:  # the dataset may have been removed since training; the map still works
        return None
    decoder.start_reconstruction_errors(run_dir, images)
    return None
