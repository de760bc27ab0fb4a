"""Maps a dataset name (or `folder:PATH`) to its source: each source is registered here once."""
from __future__ import annotations

from pathlib import Path

from ml.datasets.base import DatasetError, ImageDataset
from ml.datasets.cifar import CIFAR10
from ml.datasets.digits import DIGITS
from ml.datasets.folder import PREFIX as FOLDER_PREFIX
from ml.datasets.folder import load_folder
from ml.datasets.mnist import FASHION_MNIST, MNIST
from ml.datasets.source import DatasetInfo, DatasetSource

SOURCES: dict[str, DatasetSource] = {source.name: source for source in (DIGITS, FASHION_MNIST, MNIST, CIFAR10)}


def load_dataset(name: str, datasets_dir: Path | None = None, download: bool = True) -> ImageDataset:
    """Load dataset `name` (a registered name or `folder:PATH`); raises DatasetError with a message
    a person can act on. `datasets_dir` defaults to $LATENTMAP_DATASETS_DIR; `download` lets
    torchvision fetch a missing dataset."""
    if name.startswith(FOLDER_PREFIX):
        folder = name[len(FOLDER_PREFIX) :]
        if not folder.strip():
            raise DatasetError("folder: needs a path, e.g. folder:/data/my-images")
        return load_folder(folder, name=name)
    source = SOURCES.get(name)
    if source is None:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)} or folder:PATH")
    return source.load(datasets_dir, download)


def list_datasets(datasets_dir: Path | None = None) -> list[DatasetInfo]:
    """Every registered dataset, with whether its files are present (cheap: headers only)."""
    return [source.info(datasets_dir) for source in SOURCES.values()]
