"""Datasets: one interface (`ImageDataset`) over bundled, local/downloaded and folder datasets."""
from ml.datasets.archive import ArchiveError, ImportReport, ZipLimits, check_dataset_name, import_zip
from ml.datasets.base import DatasetError, ImageDataset, SkippedFile
from ml.datasets.folder import load_folder
from ml.datasets.registry import SOURCES, list_datasets, load_dataset
from ml.datasets.source import DatasetInfo

__all__ = [
    "ArchiveError",
    "DatasetError",
    "DatasetInfo",
    "ImageDataset",
    "ImportReport",
    "SkippedFile",
    "SOURCES",
    "ZipLimits",
    "check_dataset_name",
    "import_zip",
    "list_datasets",
    "load_dataset",
    "load_folder",
]
