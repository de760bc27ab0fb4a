"""Fixtures shared by the ml tests: one torch thread, and the first 480 digits."""
from __future__ import annotations

import pytest

from ml.datasets import ImageDataset, load_dataset


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training on one torch thread, whatever the machine (repeatable and fair to other tests)."""
    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "1")


@pytest.fixture(scope="module")
def small_digits() -> ImageDataset:
    """The first 480 of the 1,797 digits, labelled: quick to train on."""
    digits = load_dataset("digits")
    return ImageDataset(name="digits", images=digits.images[:480], labels=digits.labels[:480], class_names=digits.class_names)
