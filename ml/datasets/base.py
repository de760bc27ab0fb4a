"""The one interface every dataset gives: images as a uint8 array, optional labels and split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says what to fix (never a traceback for a person)."""


@dataclass(frozen=True)
class SkippedFile:
    """A file that was passed over while reading a dataset, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class ImageDataset:
    """A set of images with optional labels.

    images: uint8, N × H × W × C (C = 1 for grey, 3 for colour), values 0–255.
    labels: int64 (N,) or None when unlabelled.
    class_names: one name per label value, or None.
    train_mask: bool (N,), True for the official train part, or None when there is no official split.
    skipped: files passed over while reading, each with its reason.
    sources: one relative file path per image (image folders), or None for built-in datasets.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    train_mask: np.ndarray | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    sources: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8 or self.images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be uint8 N×H×W×C with C in (1, 3), got {self.images.dtype} {self.images.shape}")
        if self.labels is not None and self.labels.shape != (len(self.images),):
            raise ValueError("labels must have one entry per image")
        if self.train_mask is not None and self.train_mask.shape != (len(self.images),):
            raise ValueError("train_mask must have one entry per image")
        if self.sources is not None and len(self.sources) != len(self.images):
            raise ValueError("sources must have one entry per image")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W), the shape a model sees one image as."""
        _, height, width, channels = self.images.shape
        return channels, height, width

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def image(self, index: int) -> Image.Image:
        """Image `index` as a PIL image ("L" for grey, "RGB" for colour)."""
        if not 0 <= index < len(self):
            raise IndexError(f"image index {index} is out of range 0..{len(self) - 1}")
        pixels = self.images[index]
        if pixels.shape[-1] == 1:
            return Image.fromarray(pixels[..., 0], mode="L")
        return Image.fromarray(pixels, mode="RGB")
