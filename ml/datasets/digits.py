"""scikit-learn's bundled 8×8 handwritten digits: the embedded default, no download needed."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as load_sklearn_digits

from ml.datasets.base import ImageDataset


def load_digits() -> ImageDataset:
    """1,797 grey 8×8 images, labelled 0–9, no official split."""
    bunch = load_sklearn_digits()
    # The bundled values run 0..16; scale to the 0..255 range every other dataset uses.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return ImageDataset(
        name="digits",
        images=images,
        labels=bunch.target.astype(np.int64),
        class_names=[str(digit) for digit in range(10)],
    )
