"""Image folders (`folder:PATH`): torchvision's ImageFolder layout (one sub-folder per class) or flat.

Walked by hand rather than with torchvision's ImageFolder, which picks files by extension and
counts hidden folders as classes; here files are accepted by content (PNG/JPEG, fully decoded)
and every file passed over is reported with its reason instead of failing the whole load.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.datasets.base import DatasetError, ImageDataset, SkippedFile
from ml.datasets.images import UnreadableImage, converted, is_grey, open_image
from ml.datasets.packed import is_packed, load_packed

PREFIX = "folder:"
# Images are resized to the most common size, scaled down so that neither side exceeds this:
# the models are small conv nets made for 28–32 px inputs.
MAX_SIDE = 64


@dataclass(frozen=True)
class _Candidate:
    """A file that decoded as an image in the first pass."""

    relative: str
    label: int | None
    size: tuple[int, int]  # (width, height) after EXIF orientation
    grey: bool
    pixels: Image.Image | None  # kept when small, so the second pass need not decode it again


def is_hidden(name: str) -> bool:
    """Dot-files and macOS resource folders: metadata, never images of the dataset."""
    return name.startswith(".") or name == "__MACOSX"


def load_folder(path: str | Path, name: str | None = None) -> ImageDataset:
    """Load the PNG/JPEG images under `path` (sorted by relative path, so the order is stable).

    Class sub-folders give labels (class names = sorted folder names, images found at any depth
    below them); a folder without sub-folders is unlabelled. All images get one size: the most
    common (width, height), ties going to the first in path order, scaled down to fit 64×64.
    Channels: 1 when every image is grey, else 3 (RGB; alpha is dropped).
    images: uint8 N × H × W × C; sources: the relative path of each image.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a folder")
    if is_packed(root):  # the images of an import, stored as arrays
        return load_packed(root, name or f"{PREFIX}{path}")
    class_names, files = _list_files(root)
    candidates, skipped = _decode_all(root, files, labelled=class_names is not None)
    if not candidates:
        detail = f" ({len(skipped)} files skipped, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise DatasetError(f"image folder {root} holds no readable PNG or JPEG images{detail}")
    size = target_size([candidate.size for candidate in candidates])
    mode = "L" if all(candidate.grey for candidate in candidates) else "RGB"
    images, kept = [], []
    for candidate in candidates:
        try:
            image = candidate.pixels if candidate.pixels is not None else open_image(root / candidate.relative)
        except UnreadableImage as error:  # changed on disk since the first pass
            skipped.append(SkippedFile(candidate.relative, error.reason))
            continue
        images.append(np.asarray(_resized(converted(image, mode), size)).reshape(size[1], size[0], -1))
        kept.append(candidate)
    labelled = class_names is not None
    return ImageDataset(
        name=name or f"{PREFIX}{path}",
        images=np.stack(images).astype(np.uint8),
        labels=np.array([candidate.label for candidate in kept], dtype=np.int64) if labelled else None,
        class_names=class_names,
        skipped=sorted(skipped, key=lambda file: file.path),
        sources=[candidate.relative for candidate in kept],
    )


def target_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (width, height), scaled down (keeping its aspect) to fit MAX_SIDE × MAX_SIDE."""
    width, height = Counter(sizes).most_common(1)[0][0]  # ties: Counter keeps first-seen order
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def _list_files(root: Path) -> tuple[list[str] | None, list[tuple[str, int | None]]]:
    """(class names or None, [(relative path, label)]) in sorted order."""
    entries = sorted((entry for entry in os.scandir(root) if not is_hidden(entry.name)), key=lambda entry: entry.name)
    class_dirs = [entry.name for entry in entries if entry.is_dir()]
    if not class_dirs:
        return None, [(entry.name, None) for entry in entries if entry.is_file()]
    files: list[tuple[str, int | None]] = [(entry.name, None) for entry in entries if entry.is_file()]
    for label, class_name in enumerate(class_dirs):
        for directory, subdirs, names in os.walk(root / class_name):
            subdirs[:] = sorted(sub for sub in subdirs if not is_hidden(sub))
            for file_name in sorted(names):
                if not is_hidden(file_name):
                    files.append(((Path(directory) / file_name).relative_to(root).as_posix(), label))
    return class_dirs, sorted(files, key=lambda file: file[0])


def _decode_all(
    root: Path, files: list[tuple[str, int | None]], labelled: bool
) -> tuple[list[_Candidate], list[SkippedFile]]:
    """First pass: decode every file fully, note its size and greyness, keep small ones decoded."""
    candidates, skipped = [], []
    for relative, label in files:
        if labelled and label is None:
            skipped.append(SkippedFile(relative, "not inside a class folder (this folder has class sub-folders)"))
            continue
        try:
            image = open_image(root / relative)
        except UnreadableImage as error:
            skipped.append(SkippedFile(relative, error.reason))
            continue
        small = image.width * image.height <= MAX_SIDE * MAX_SIDE
        candidates.append(_Candidate(relative, label, image.size, is_grey(image), image if small else None))
    return candidates, skipped
