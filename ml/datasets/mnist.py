"""MNIST and Fashion-MNIST: 28×28 grey images in IDX files, 60,000 train then 10,000 test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.datasets.base import DatasetError, ImageDataset
from ml.datasets.idx import find_idx_file, read_idx, read_idx_shape
from ml.datasets.local import LocalFilesSource

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_STEMS = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class IdxSource(LocalFilesSource):
    """A dataset in the MNIST IDX layout; the result holds train images first, then test images."""

    name: str
    description: str
    class_names: tuple[str, ...]
    torchvision_class: str  # also the folder name under torchvision's root: <root>/<class>/raw/
    install_hint: str = ""

    def torchvision_place(self, root: Path) -> Path:
        return root / self.torchvision_class / "raw"

    def is_complete(self, directory: Path) -> bool:
        return all(find_idx_file(directory, stem) is not None for stem in IDX_STEMS)

    def describe(self, directory: Path) -> tuple[int, tuple[int, int, int]]:
        train = read_idx_shape(self._file(directory, TRAIN_IMAGES))
        test = read_idx_shape(self._file(directory, TEST_IMAGES))
        if len(train) != 3 or train[1:] != test[1:]:
            raise DatasetError(f"the image files in {directory} do not hold N × H × W images of one size")
        return train[0] + test[0], (1, train[1], train[2])

    def read(self, directory: Path) -> ImageDataset:
        """images: uint8 N × 28 × 28 × 1; labels int64 (N,); train_mask True for the train part."""
        parts = []
        for images_stem, labels_stem in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
            images_path, labels_path = self._file(directory, images_stem), self._file(directory, labels_stem)
            images, labels = read_idx(images_path), read_idx(labels_path)
            if images.ndim != 3:
                raise DatasetError(f"{images_path} holds a {images.ndim}-d array, not N × H × W images")
            if labels.shape != (len(images),):
                raise DatasetError(f"{labels_path} holds {labels.size} labels for {len(images)} images in {images_path}")
            if labels.size and labels.max() >= len(self.class_names):
                raise DatasetError(f"{labels_path} has label {labels.max()}, but {self.name} has {len(self.class_names)} classes")
            parts.append((images, labels))
        (train_images, train_labels), (test_images, test_labels) = parts
        if train_images.shape[1:] != test_images.shape[1:]:
            raise DatasetError(f"train and test images in {directory} differ in size")
        return ImageDataset(
            name=self.name,
            images=np.concatenate([train_images, test_images])[..., None],
            labels=np.concatenate([train_labels, test_labels]).astype(np.int64),
            class_names=list(self.class_names),
            train_mask=np.arange(len(train_images) + len(test_images)) < len(train_images),
        )

    def _file(self, directory: Path, stem: str) -> Path:
        path = find_idx_file(directory, stem)
        if path is None:
            raise DatasetError(f"{directory} has no {stem} (or {stem}.gz)")
        return path


FASHION_MNIST = IdxSource(
    name="fashion-mnist",
    description="Zalando's Fashion-MNIST: 70,000 grey 28×28 clothing images, 10 classes",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    torchvision_class="FashionMNIST",
    install_hint="apt-get install dataset-fashion-mnist",
)

MNIST = IdxSource(
    name="mnist",
    description="MNIST handwritten digits: 70,000 grey 28×28 images, 10 classes",
    class_names=tuple(str(digit) for digit in range(10)),
    torchvision_class="MNIST",
)
