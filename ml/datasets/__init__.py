"""Datasets: one interface (`ImageDataset`) over bundled, local/downloaded and folder datasets."""
from ml.datasets.base import DatasetError, ImageDataset, SkippedFile
from ml.datasets.registry import load_dataset

__all__ = ["DatasetError", "ImageDataset", "SkippedFile", "load_dataset"]
