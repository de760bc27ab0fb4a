"""Base class for datasets read from local files, with torchvision's download as the fallback."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from ml.datasets.base import DatasetError, ImageDataset
from ml.datasets.download import download_with_torchvision
from ml.datasets.locations import DATASETS_DIR_ENV, named_places, torchvision_root
from ml.datasets.source import DatasetInfo


class LocalFilesSource(ABC):
    """A dataset found in the first of several places that holds its complete set of files.

    Subclasses say which files make a complete set (`is_complete`), how to read them (`read`),
    how to describe them from headers alone (`describe`), and where torchvision keeps them.
    """

    name: str
    description: str
    torchvision_class: str  # the class in torchvision.datasets that can download this dataset
    install_hint: str = ""  # an extra way to get the files, shown in the "not found" message

    @abstractmethod
    def torchvision_place(self, root: Path) -> Path:
        """The directory under torchvision's `root` where its download leaves the files."""

    @abstractmethod
    def is_complete(self, directory: Path) -> bool:
        """Whether `directory` holds every file the dataset needs."""

    @abstractmethod
    def read(self, directory: Path) -> ImageDataset:
        """Read the dataset from a complete `directory`."""

    @abstractmethod
    def describe(self, directory: Path) -> tuple[int, tuple[int, int, int]]:
        """(number of images, (C, H, W)) from a complete `directory`, without reading the pixels."""

    def places(self, datasets_dir: Path | None) -> list[Path]:
        """Every directory looked in, in order."""
        return [*named_places(self.name, datasets_dir), self.torchvision_place(torchvision_root(datasets_dir))]

    def find(self, datasets_dir: Path | None) -> Path | None:
        """The first place holding a complete set of files, or None."""
        return next((place for place in self.places(datasets_dir) if self.is_complete(place)), None)

    def load(self, datasets_dir: Path | None, download: bool) -> ImageDataset:
        directory = self.find(datasets_dir)
        download_outcome = "was not attempted (download=False)"
        if directory is None and download:
            failure = download_with_torchvision(self.torchvision_class, torchvision_root(datasets_dir))
            download_outcome = f"failed ({failure})" if failure else "finished but left no complete set of files"
            directory = self.find(datasets_dir)
        if directory is None:
            raise self.missing_error(datasets_dir, download_outcome)
        return self.read(directory)

    def info(self, datasets_dir: Path | None) -> DatasetInfo:
        directory = self.find(datasets_dir)
        n_images, image_shape = None, None
        if directory is not None:
            try:
                n_images, image_shape = self.describe(directory)
            except DatasetError:
                directory = None  # a corrupt set of files is not available; load() will say why
        return DatasetInfo(
            name=self.name,
            description=self.description,
            available=directory is not None,
            location=str(directory) if directory is not None else None,
            n_images=n_images,
            image_shape=image_shape,
            has_labels=True,
        )

    def missing_error(self, datasets_dir: Path | None, download_outcome: str) -> DatasetError:
        places = ", ".join(str(place) for place in self.places(datasets_dir))
        fixes = [f"put the files in {self.name}/ under a directory named by ${DATASETS_DIR_ENV}"]
        if self.install_hint:
            fixes.insert(0, self.install_hint)
        fixes.append("or run once with internet access so that torchvision can download it")
        return DatasetError(
            f"dataset {self.name!r} was not found; looked in: {places}; the download {download_outcome}. "
            f"To fix: {', '.join(fixes)}."
        )
