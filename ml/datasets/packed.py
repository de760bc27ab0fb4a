"""Packed image folders: the images of an imported embedding, stored as arrays instead of files.

An import brings its images as pixels (a projector sprite, a Parquet image column); they are kept
as `images.npy` (uint8 N × H × W × C), `labels.npy` (int64 N, optional) and `class_names.json` in a
folder of the uploads directory, so every image endpoint serves them like an uploaded folder.
Memory-mapped on load: a large import's images are read only where they are looked at.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ml import artifacts
from ml.datasets.base import DatasetError, ImageDataset

IMAGES_FILE, LABELS_FILE, CLASS_NAMES_FILE = "images.npy", "labels.npy", "class_names.json"


def is_packed(folder: Path) -> bool:
    return (Path(folder) / IMAGES_FILE).is_file()


def write_packed(folder: Path, images: np.ndarray, labels: np.ndarray | None = None,
                 class_names: list[str] | None = None) -> Path:
    """Write a packed image folder (images uint8 N × H × W × C); returns the folder."""
    folder = Path(folder)
    if labels is not None:
        artifacts.write_npy(folder / LABELS_FILE, np.asarray(labels, dtype=np.int64))
        artifacts.write_json(folder / CLASS_NAMES_FILE, list(class_names or []))
    artifacts.write_npy(folder / IMAGES_FILE, np.ascontiguousarray(images, dtype=np.uint8))  # last: marks it complete
    return folder


def load_packed(folder: Path, name: str) -> ImageDataset:
    """The packed images in `folder` (labels and class names when stored)."""
    folder = Path(folder)
    try:
        images = np.load(folder / IMAGES_FILE, mmap_mode="r", allow_pickle=False)
        labels = np.load(folder / LABELS_FILE, allow_pickle=False) if (folder / LABELS_FILE).is_file() else None
        class_names = artifacts.read_json(folder / CLASS_NAMES_FILE) if labels is not None else None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"packed images in {folder} cannot be read: {exc}") from None
    return ImageDataset(name=name, images=images, labels=labels, class_names=class_names)
