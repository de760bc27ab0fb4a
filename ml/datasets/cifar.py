"""CIFAR-10: 60,000 colour 32×32 images in torchvision's `cifar-10-batches-py` pickle layout."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.datasets.base import DatasetError, ImageDataset
from ml.datasets.local import LocalFilesSource
from ml.datasets.locations import named_places, torchvision_root

BATCHES_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
IMAGES_PER_BATCH = 10_000
SIDE = 32


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only.

    A pickle can run any code it names; these files come from disk or a download, so only the
    few globals that rebuild a numpy array (what the CIFAR batches hold) are let through.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a dataset file")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            # latin1 turns the Python 2 strings of the original files into str keys, as torchvision does.
            value = _ArrayUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch: {error}") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch: it holds a {type(value).__name__}, not a dict")
    return value


@dataclass(frozen=True)
class CifarSource(LocalFilesSource):
    """CIFAR-10; the result holds the five train batches first, then the test batch."""

    name: str = "cifar10"
    description: str = "CIFAR-10: 60,000 colour 32×32 images, 10 classes"
    torchvision_class: str = "CIFAR10"

    def places(self, datasets_dir: Path | None) -> list[Path]:
        """<place>/cifar-10-batches-py, then <place> itself, for each named place; then torchvision's."""
        nested = [path for place in named_places(self.name, datasets_dir) for path in (place / BATCHES_FOLDER, place)]
        return [*nested, self.torchvision_place(torchvision_root(datasets_dir))]

    def torchvision_place(self, root: Path) -> Path:
        return root / BATCHES_FOLDER

    def is_complete(self, directory: Path) -> bool:
        return all((directory / file).is_file() for file in (*TRAIN_BATCHES, TEST_BATCH, META))

    def describe(self, directory: Path) -> tuple[int, tuple[int, int, int]]:
        # The layout is fixed (10,000 images per batch); reading six pickles just to count them would be slow.
        return IMAGES_PER_BATCH * (len(TRAIN_BATCHES) + 1), (3, SIDE, SIDE)

    def read(self, directory: Path) -> ImageDataset:
        """images: uint8 N × 32 × 32 × 3; labels int64 (N,); train_mask True for the train batches."""
        class_names = _unpickle(directory / META).get("label_names")
        if not isinstance(class_names, list) or not class_names:
            raise DatasetError(f"{directory / META} has no label_names list")
        images, labels, is_train = [], [], []
        for batch in (*TRAIN_BATCHES, TEST_BATCH):
            batch_images, batch_labels = self._read_batch(directory / batch, len(class_names))
            images.append(batch_images)
            labels.append(batch_labels)
            is_train.append(np.full(len(batch_labels), batch != TEST_BATCH))
        return ImageDataset(
            name=self.name,
            images=np.concatenate(images),
            labels=np.concatenate(labels),
            class_names=[str(name) for name in class_names],
            train_mask=np.concatenate(is_train),
        )

    @staticmethod
    def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 n × 32 × 32 × 3, int64 (n,)) from one batch: rows of 3072 bytes, channel-major."""
        batch = _unpickle(path)
        data, labels = batch.get("data"), batch.get("labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
            raise DatasetError(f"{path} has no uint8 data array of rows of {3 * SIDE * SIDE} bytes")
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
        if labels.shape != (len(data),):
            raise DatasetError(f"{path} has {labels.size} labels for {len(data)} images")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise DatasetError(f"{path} has labels outside 0..{n_classes - 1}")
        return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


CIFAR10 = CifarSource()
