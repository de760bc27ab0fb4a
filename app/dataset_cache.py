"""Datasets loaded once in the server process and kept in a small LRU cache."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Hashable

from app.dataset_source import dataset_spec
from app.registry import Registry
from ml.datasets import ImageDataset, load_dataset


RENDERED_MAX_BYTES = 256 * 1024 * 1024


class DatasetCache:
    """`get(name)` loads dataset `name` at most once while it stays among the `size` most recent."""

    def __init__(self, registry: Registry, datasets_dir: Path | None, size: int = 4) -> None:
        self.registry, self.datasets_dir, self.size = registry, datasets_dir, size
        self._items: OrderedDict[str, ImageDataset] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._rendered: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, name: str) -> ImageDataset:
        """The dataset (raises DatasetError with a message for a person when it cannot be loaded)."""
        spec = dataset_spec(name, self.registry)
        with self._lock:
            if spec in self._items:
                self._items.move_to_end(spec)
                return self._items[spec]
            loading = self._loading.setdefault(spec, threading.Lock())
        with loading:  # one load per dataset even when many requests arrive together
            with self._lock:
                if spec in self._items:
                    return self._items[spec]
            dataset = load_dataset(spec, self.datasets_dir, download=False)
            with self._lock:
                self._items[spec] = dataset
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return dataset

    def version(self, name: str) -> str:
        """Changes whenever the images behind `name` may have changed (for ETags)."""
        uploaded = self.registry.get_dataset(name)
        return f"{name}@{uploaded.created}" if uploaded is not None else f"{name}@builtin"

    def rendered(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """Bytes derived from a dataset (e.g. an atlas page), rendered once and kept (LRU, RENDERED_MAX_BYTES)."""
        with self._lock:
            if key in self._rendered:
                self._rendered.move_to_end(key)
                return self._rendered[key]
        data = render()
        with self._lock:
            self._rendered[key] = data
            while sum(len(value) for value in self._rendered.values()) > RENDERED_MAX_BYTES and len(self._rendered) > 1:
                self._rendered.popitem(last=False)
        return data

    def forget(self, name: str) -> None:
        with self._lock:
            self._items.pop(dataset_spec(name, self.registry), None)
