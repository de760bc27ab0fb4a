"""What a registered dataset source offers: loading, and a cheap description for listings."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ml.datasets.base import ImageDataset


@dataclass(frozen=True)
class DatasetInfo:
    """One row of `latentmap datasets` / GET /api/datasets, found without loading the images.

    image_shape: (C, H, W) of one image, or None when not known without loading.
    location: the directory the files were found in, or None (bundled, or not available).
    """

    name: str
    description: str
    available: bool
    location: str | None
    n_images: int | None
    image_shape: tuple[int, int, int] | None
    has_labels: bool

    def to_dict(self) -> dict[str, Any]:
        described = asdict(self)
        described["image_shape"] = list(self.image_shape) if self.image_shape else None
        return described


class DatasetSource(Protocol):
    """A named dataset: registered once in `ml.datasets.registry.SOURCES`."""

    name: str
    description: str

    def load(self, datasets_dir: Path | None, download: bool) -> ImageDataset:
        """Read the whole dataset; raises DatasetError with a message a person can act on."""
        ...

    def info(self, datasets_dir: Path | None) -> DatasetInfo:
        """Describe the dataset cheaply (headers only, never the pixels)."""
        ...
