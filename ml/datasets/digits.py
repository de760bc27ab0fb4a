"""scikit-learn's bundled 8×8 handwritten digits: the embedded default, no download needed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.datasets.base import ImageDataset
from ml.datasets.source import DatasetInfo


def load_digits() -> ImageDataset:
    """1,797 grey 8×8 images, labelled 0–9, no official split."""
    # Imported here: scikit-learn takes over a second to import, and listing datasets should not wait for it.
    from sklearn.datasets import load_digits as load_sklearn_digits

    bunch = load_sklearn_digits()
    # The bundled values run 0..16; scale to the 0..255 range every other dataset uses.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return ImageDataset(
        name="digits",
        images=images,
        labels=bunch.target.astype(np.int64),
        class_names=[str(digit) for digit in range(10)],
    )


class DigitsSource:
    """The registered `digits` dataset: bundled with scikit-learn, always available."""

    name = "digits"
    description = "scikit-learn's handwritten digits: 1,797 grey 8×8 images, 10 classes (bundled)"

    def load(self, datasets_dir: Path | None, download: bool) -> ImageDataset:
        return load_digits()

    def info(self, datasets_dir: Path | None) -> DatasetInfo:
        return DatasetInfo(
            name=self.name,
            description=self.description,
            available=True,
            location=None,
            n_images=1797,
            image_shape=(1, 8, 8),
            has_labels=True,
        )


DIGITS = DigitsSource()
