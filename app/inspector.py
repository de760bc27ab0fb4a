"""The augmentation inspector: a contrastive run's transform and encoder on one point, run in the
model process (app.model_worker), one request at a time, answers cached by (run directory, model
file version, index, pairs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.model_worker import MODEL_WORKER, REPLY_SECONDS, Busy, ModelWorker, Pending

__all__ = ["INSPECTOR", "AugmentationInspector", "Busy", "Pending"]


def _inspect(run_dir: str, image: np.ndarray, index: int, pairs: int) -> dict[str, Any]:
    """Runs in the worker: ml.augmentation_pairs, with the reasons a run cannot be inspected as ValueError."""
    from ml.augmentation_pairs import NotInspectable, augmentation_pairs

    try:
        return augmentation_pairs(Path(run_dir), image, index, pairs)
    except (NotInspectable, FileNotFoundError) as exc:  # e.g. the run was deleted meanwhile
        raise ValueError(str(exc)) from None


class AugmentationInspector:
    """`pairs(run_dir, image, index, pairs)` → ml.augmentation_pairs' answer, from the model process or its cache."""

    def __init__(self, worker: ModelWorker = MODEL_WORKER, reply_seconds: float = REPLY_SECONDS) -> None:
        self.worker, self.reply_seconds = worker, reply_seconds

    def pairs(self, run_dir: Path, image: np.ndarray, index: int, pairs: int) -> dict[str, Any]:
        """Raises ValueError (the run cannot be inspected: the reason), Pending (ask again) or Busy."""
        model = Path(run_dir) / "model.pt"
        key = ("augmentations", str(run_dir), model.stat().st_mtime_ns if model.exists() else None, index, pairs)
        return self.worker.ask(key, _inspect, str(run_dir), image, index, pairs, what="this point's views",
                               reply_seconds=self.reply_seconds)

    def close(self) -> None:
        """End the model process (a later request starts a new one)."""
        self.worker.close()

    @property
    def running(self) -> bool:
        return self.worker.running


INSPECTOR = AugmentationInspector()
