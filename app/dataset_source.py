"""Turns a dataset name into an `ImageDataset`: uploaded folders (registry) first, then ml's built-ins."""
from __future__ import annotations

from pathlib import Path

from app.registry import Registry
from ml.datasets import ImageDataset, load_dataset


def dataset_spec(name: str, registry: Registry) -> str:
    """The name ml.datasets understands: `folder:PATH` for an uploaded dataset, else `name` itself."""
    uploaded = registry.get_dataset(name)
    return f"folder:{uploaded.path}" if uploaded is not None else name


def open_dataset(name: str, registry: Registry, datasets_dir: Path | None) -> ImageDataset:
    """Load dataset `name`; raises ml.datasets.DatasetError with a message a person can act on."""
    return load_dataset(dataset_spec(name, registry), datasets_dir)


def is_known(name: str, registry: Registry, datasets_dir: Path | None) -> bool:
    """Whether `name` is an uploaded dataset or one of ml's registered datasets."""
    from ml.datasets import SOURCES

    return name in SOURCES or registry.get_dataset(name) is not None
