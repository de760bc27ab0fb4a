"""Safe import of an uploaded .zip of images into a dataset folder (ImageFolder layout or flat).

An upload is untrusted: the archive is refused whole (ArchiveError, nothing written) when it is
not a zip, too big, has too many entries or expands too much; single entries that are unsafe or
not usable images are skipped with a reason. Accepted images are fully decoded and re-saved as
PNG under sanitised names, so what lands on disk is exactly what the dataset loader reads.
Everything is written into a temporary folder next to `target_dir` and renamed into place at
the end: a dataset folder is either complete or absent, and nothing lands outside it.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator

from PIL import Image

from ml.datasets.base import DatasetError, SkippedFile
from ml.datasets.folder import is_hidden, target_size
from ml.datasets.images import MAX_IMAGE_PIXELS, UnreadableImage, is_grey, open_image
from ml.datasets.registry import SOURCES

MIB = 1024 * 1024
CHUNK_BYTES = MIB
# Entries up to this size are exempt from the compression-ratio check: a small blank file can
# compress 1000:1 harmlessly; a bomb needs size to do harm, and the total budget still applies.
RATIO_CHECK_MIN_BYTES = MIB
# Modes the PNG writer stores as they are; anything else (CMYK, YCbCr JPEGs) is saved as RGB.
PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_UNSAFE_CHARACTERS = re.compile(r"[^\w .()+-]+")
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


class ArchiveError(DatasetError):
    """The archive as a whole is refused; nothing was written. The message is for a person."""


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what an uploaded archive may hold (bytes, counts, pixels, ratio)."""

    max_archive_bytes: int = 200 * MIB
    max_files: int = 20_000
    max_total_uncompressed_bytes: int = 1024 * MIB
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_compression_ratio: float = 200.0


@dataclass
class ImportReport:
    """What an import produced.

    images: number of images written; classes: class folder names (sorted; empty when flat);
    skipped: entries passed over, with reasons; image_shape: (C, H, W) that `load_folder` will
    give the imported images (same sizing rule), so listings need not load the folder.
    """

    images: int
    classes: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    image_shape: tuple[int, int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "classes": list(self.classes),
            "skipped": [file.to_dict() for file in self.skipped],
            "image_shape": list(self.image_shape) if self.image_shape else None,
        }


@dataclass(frozen=True)
class _Accepted:
    """An image that passed every check, already re-saved as PNG in the staging folder."""

    parts: tuple[str, ...]  # its path inside the archive, split into folders and file name
    saved: Path
    size: tuple[int, int]  # (width, height)
    grey: bool


def check_dataset_name(name: str) -> str:
    """`name` when it can name an uploaded dataset (its folder under the data directory), else DatasetError."""
    if not DATASET_NAME.fullmatch(name):
        raise DatasetError(
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name.lower() in SOURCES:
        raise DatasetError(f"dataset name {name!r} is taken by a built-in dataset; choose another")
    return name


def import_zip(source: Path | BinaryIO, target_dir: Path, limits: ZipLimits = ZipLimits()) -> ImportReport:
    """Import the images of zip `source` (a path or a binary file) into the new folder `target_dir`.

    A single top-level folder wrapping everything is unwrapped; below it, sub-folders are classes
    (images directly at the top are then skipped, as torchvision's ImageFolder would ignore them),
    else the dataset is flat. Raises ArchiveError when the archive is refused.
    """
    target_dir = Path(target_dir)
    if target_dir.exists():
        raise ArchiveError(f"a dataset named {target_dir.name!r} already exists")
    with _seekable_file(source, limits) as file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError):
            raise ArchiveError("the upload is not a zip archive (or the zip is damaged)") from None
        with archive:
            members = archive.infolist()
            _check_declared(members, limits)
            target_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", suffix=".importing", dir=target_dir.parent))
            try:
                accepted, skipped = _extract_images(archive, members, staging / "incoming", limits)
                classes, placed, unplaced = _arrange(accepted, staging / "dataset")
                skipped += unplaced
                if not placed:
                    raise ArchiveError(_nothing_usable(skipped))
                width, height = target_size([image.size for image in placed])
                image_shape = (1 if all(image.grey for image in placed) else 3, height, width)
                try:
                    os.rename(staging / "dataset", target_dir)
                except OSError:
                    raise ArchiveError(f"a dataset named {target_dir.name!r} already exists") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return ImportReport(images=len(placed), classes=classes, skipped=skipped, image_shape=image_shape)


@contextmanager
def _seekable_file(source: Path | BinaryIO, limits: ZipLimits) -> Iterator[BinaryIO]:
    """A seekable binary file for `source` (zip reading needs to seek); refuses it when too big."""
    if isinstance(source, (str, Path)):
        try:
            size = Path(source).stat().st_size
        except OSError as error:
            raise ArchiveError(f"cannot read the archive {source}: {error.strerror or error}") from None
        _check_archive_size(size, limits)
        with open(source, "rb") as file:
            yield file
    elif source.seekable():
        start = source.tell()
        size = source.seek(0, io.SEEK_END) - start
        source.seek(start)
        _check_archive_size(size, limits)
        yield source
    else:
        data = source.read(limits.max_archive_bytes + 1)  # at most one byte past the limit
        _check_archive_size(len(data), limits)
        yield io.BytesIO(data)


def _check_archive_size(size: int, limits: ZipLimits) -> None:
    if size > limits.max_archive_bytes:
        raise ArchiveError(f"the archive is larger than the limit of {_megabytes(limits.max_archive_bytes)}")


def _check_declared(members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse on what the central directory declares (before anything is read or written)."""
    if len(members) > limits.max_files:
        raise ArchiveError(f"the archive has {len(members):,} entries; the limit is {limits.max_files:,}")
    declared = sum(member.file_size for member in members)
    if declared > limits.max_total_uncompressed_bytes:
        raise ArchiveError(
            f"the archive expands to {_megabytes(declared)}; the limit is {_megabytes(limits.max_total_uncompressed_bytes)}"
        )
    for member in members:
        if member.file_size > RATIO_CHECK_MIN_BYTES and member.file_size > limits.max_compression_ratio * max(member.compress_size, 1):
            raise ArchiveError(
                f"{member.filename} expands {member.file_size / max(member.compress_size, 1):,.0f} times "
                f"(limit {limits.max_compression_ratio:g}); the archive looks like a zip bomb"
            )


def _entry_problem(member: zipfile.ZipInfo) -> str | None:
    """Why an entry is skipped before it is read, or None."""
    name = member.filename
    if stat.S_ISLNK(member.external_attr >> 16):
        return "symbolic link"
    if "\\" in name:
        return "path contains a backslash"
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        return "absolute path"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "path escapes the archive (..)"
    if "__MACOSX" in parts:
        return "macOS metadata"
    if any(is_hidden(part) for part in parts):
        return "hidden file"
    if member.flag_bits & 0x1:
        return "encrypted"
    return None


def _extract_images(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], incoming: Path, limits: ZipLimits
) -> tuple[list[_Accepted], list[SkippedFile]]:
    """Read every entry with a byte budget, decode it fully, re-save accepted images as PNG."""
    incoming.mkdir()
    accepted, skipped = [], []
    budget = limits.max_total_uncompressed_bytes
    for member in members:
        if member.is_dir():
            continue  # folders are implied by the files' paths
        problem = _entry_problem(member)
        if problem is not None:
            skipped.append(SkippedFile(member.filename, problem))
            continue
        try:
            data = _read_member(archive, member, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as error:
            skipped.append(SkippedFile(member.filename, f"corrupt or unreadable entry: {error}"))
            continue
        budget -= len(data)
        try:
            image = open_image(io.BytesIO(data), max_pixels=limits.max_image_pixels)
        except UnreadableImage as error:
            skipped.append(SkippedFile(member.filename, error.reason))
            continue
        saved = incoming / f"{len(accepted)}.png"
        (image if image.mode in PNG_MODES else image.convert("RGB")).save(saved, format="PNG")
        accepted.append(_Accepted(PurePosixPath(member.filename).parts, saved, image.size, is_grey(image)))
    return accepted, skipped


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int) -> bytes:
    """The entry's bytes, read in chunks; refuses the archive when it expands past its declared
    size or the remaining total budget (declared sizes are not trusted)."""
    allowed = min(member.file_size, budget)
    chunks, size = [], 0
    with archive.open(member) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            size += len(chunk)
            if size > allowed:
                raise ArchiveError(f"{member.filename} expands beyond its declared size or the total limit; refused")
            chunks.append(chunk)
    return b"".join(chunks)


def _arrange(accepted: list[_Accepted], dataset: Path) -> tuple[list[str], list[_Accepted], list[SkippedFile]]:
    """Move the staged PNGs to their final sanitised paths under `dataset`.

    Returns (class folder names, images placed, images skipped because they sit beside class folders).
    """
    dataset.mkdir()
    parts = [image.parts for image in accepted]
    while parts and all(len(p) >= 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]  # unwrap a single top-level folder
    has_classes = any(len(p) >= 2 for p in parts)
    class_folders: dict[str, str] = {}
    used: dict[Path, set[str]] = {}
    placed, unplaced = [], []
    for image, inner in zip(accepted, parts):
        if has_classes and len(inner) == 1:
            unplaced.append(SkippedFile("/".join(image.parts), "not inside a class folder (the archive has class folders)"))
            continue
        relative: list[str] = []  # flat datasets have no folders
        if has_classes:
            if inner[0] not in class_folders:
                class_folders[inner[0]] = _unique(_sanitised(inner[0], "class"), used.setdefault(dataset, set()))
            relative = [class_folders[inner[0]], *(_sanitised(folder, "folder") for folder in inner[1:-1])]
        directory = dataset.joinpath(*relative)
        directory.mkdir(parents=True, exist_ok=True)
        stem = _sanitised(PurePosixPath(inner[-1]).stem, "image")
        file_name = _unique(f"{stem}.png", used.setdefault(directory, set()))
        os.replace(image.saved, directory / file_name)
        placed.append(image)
    return sorted(class_folders.values()), placed, unplaced


def _sanitised(name: str, fallback: str) -> str:
    """A safe file or folder name: letters, digits, space and . ( ) + - _; no leading dot; ≤ 100 characters."""
    cleaned = _UNSAFE_CHARACTERS.sub("_", unicodedata.normalize("NFC", name)).strip(" .")
    return cleaned[:100].rstrip(" .") or fallback


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name` with -2, -3, ... before its extension, whichever is not in `used` yet (then marks it used)."""
    path = PurePosixPath(name)
    candidate, number = name, 2
    while candidate.lower() in used:
        candidate = f"{path.stem}-{number}{path.suffix}"
        number += 1
    used.add(candidate.lower())
    return candidate


def _nothing_usable(skipped: list[SkippedFile]) -> str:
    examples = "; ".join(f"{file.path}: {file.reason}" for file in skipped[:3])
    detail = f" ({len(skipped)} entries skipped, e.g. {examples})" if skipped else " (it is empty)"
    return f"the archive holds no usable PNG or JPEG images{detail}"


def _megabytes(size: int) -> str:
    return f"{size / MIB:,.1f} MB"
