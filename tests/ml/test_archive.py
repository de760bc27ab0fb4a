"""Safe zip import: good archives land as PNG folders; unsafe entries are skipped; bombs are refused."""
from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.datasets import ArchiveError, DatasetError, ZipLimits, check_dataset_name, import_zip, load_dataset


def png_bytes(value: int, size: tuple[int, int] = (6, 4), mode: str = "RGB") -> bytes:
    """A PNG of one colour; size is (width, height)."""
    buffer = io.BytesIO()
    Image.new(mode, size, (value, value // 2, 3) if mode == "RGB" else value).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def test_class_folders_in_a_wrapper_folder_are_imported_as_png(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "pets.zip",
        {
            "pets/": b"",
            "pets/cat/one.png": png_bytes(100),
            "pets/cat/two photo?.jpg": jpeg_bytes(),
            "pets/dog/one.PNG": png_bytes(50),
            "pets/dog/one.jpeg": jpeg_bytes(),
        },
    )
    target = tmp_path / "datasets" / "pets"
    report = import_zip(archive, target)
    assert report.images == 4
    assert report.classes == ["cat", "dog"]
    assert report.skipped == []
    assert files_under(target) == ["cat", "cat/one.png", "cat/two photo_.png", "dog", "dog/one-2.png", "dog/one.png"]
    with Image.open(target / "cat" / "two photo_.png") as saved:
        assert (saved.format, saved.mode, saved.size) == ("PNG", "RGB", (6, 4))
    assert files_under(tmp_path / "datasets") == ["pets", *(f"pets/{name}" for name in files_under(target))]
    dataset = load_dataset(f"folder:{target}")
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.labels.tolist() == [0, 0, 1, 1]
    assert dataset.images[0, 0, 0].tolist() == [100, 50, 3]
    assert report.image_shape == (3, 4, 6) == dataset.image_shape
    assert report.to_dict() == {"images": 4, "classes": ["cat", "dog"], "skipped": [], "image_shape": [3, 4, 6]}


def test_flat_archive_from_a_binary_stream(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "flat.zip", {"b.png": png_bytes(1), "a.png": png_bytes(2, mode="L")})
    with open(archive, "rb") as handle:
        report = import_zip(handle, tmp_path / "flat")
    assert (report.images, report.classes) == (2, [])
    assert files_under(tmp_path / "flat") == ["a.png", "b.png"]
    dataset = load_dataset(f"folder:{tmp_path / 'flat'}")
    assert dataset.labels is None and dataset.sources == ["a.png", "b.png"]
    assert dataset.images[:, 0, 0].tolist() == [[2, 2, 2], [1, 0, 3]]


def test_unsafe_and_unusable_entries_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = png_bytes(9)
    truncated = png_bytes(9, size=(30, 30))[:-40]
    archive_path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ok.png", good)
        archive.writestr("../evil.png", good)
        archive.writestr("/abs.png", good)
        archive.writestr("C:/drive.png", good)
        archive.writestr("back\\slash.png", good)
        archive.writestr("__MACOSX/._ok.png", b"\0\5\26\7")
        archive.writestr(".hidden.png", good)
        archive.writestr("notes.txt", b"hello")
        archive.writestr("truncated.png", truncated)
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "../../outside.png")
    report = import_zip(archive_path, tmp_path / "out" / "mixed")
    reasons = {file.path: file.reason for file in report.skipped}
    assert report.images == 1
    assert {name: reason for name, reason in reasons.items() if name != "truncated.png"} == {
        "../evil.png": "path escapes the archive (..)",
        "/abs.png": "absolute path",
        "C:/drive.png": "absolute path",
        "back\\slash.png": "path contains a backslash",
        "__MACOSX/._ok.png": "macOS metadata",
        ".hidden.png": "hidden file",
        "notes.txt": "not a PNG or JPEG image",
        "link.png": "symbolic link",
    }
    assert reasons["truncated.png"].startswith("corrupt or truncated PNG image")
    assert files_under(tmp_path) == ["mixed.zip", "out", "out/mixed", "out/mixed/ok.png"]


def test_image_over_the_pixel_limit_is_skipped(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"small.png": png_bytes(1, size=(10, 10)), "big.png": png_bytes(1, size=(11, 10))})
    report = import_zip(archive, tmp_path / "a", ZipLimits(max_image_pixels=100))
    assert report.images == 1
    assert [(file.path, file.reason) for file in report.skipped] == [("big.png", "too large: 11×10 pixels (limit 100 pixels)")]


def test_declared_expansion_over_the_limit_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"a.png": png_bytes(1), "zeros.bin": bytes(300_000)})
    assert archive.stat().st_size < 5_000
    with pytest.raises(ArchiveError, match=r"the archive expands to 0.3 MB; the limit is 0.1 MB"):
        import_zip(archive, tmp_path / "bomb", ZipLimits(max_total_uncompressed_bytes=100_000))
    assert files_under(tmp_path) == ["bomb.zip"]


def test_extreme_compression_ratio_is_refused_as_a_zip_bomb(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(3 * 1024 * 1024)})
    with pytest.raises(ArchiveError, match=r"zeros.bin expands [0-9,]+ times \(limit 200\); the archive looks like a zip bomb"):
        import_zip(archive, tmp_path / "bomb")
    assert files_under(tmp_path) == ["bomb.zip"]


def set_declared_size(archive: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of the only entry in both its local and central headers."""
    patched = bytearray(archive)
    local = patched.index(b"PK\x03\x04")
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<I", patched, local + 22, size)
    struct.pack_into("<I", patched, central + 24, size)
    return bytes(patched)


def test_entry_expanding_past_its_declared_size_is_not_trusted(tmp_path: Path) -> None:
    real = make_zip(tmp_path / "real.zip", {"liar.png": png_bytes(1, size=(300, 300))})
    lying = tmp_path / "lying.zip"
    lying.write_bytes(set_declared_size(real.read_bytes(), 100))
    with pytest.raises(ArchiveError, match=r"no usable PNG or JPEG images \(1 entries skipped, e.g. liar.png: corrupt or unreadable entry: Bad CRC-32"):
        import_zip(lying, tmp_path / "liar")
    assert files_under(tmp_path) == ["lying.zip", "real.zip"]


def test_too_many_entries_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", {f"{i}.png": png_bytes(i) for i in range(4)})
    with pytest.raises(ArchiveError, match=r"the archive has 4 entries; the limit is 3"):
        import_zip(archive, tmp_path / "many", ZipLimits(max_files=3))
    assert not (tmp_path / "many").exists()


def test_archive_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.png": png_bytes(1)})
    with pytest.raises(ArchiveError, match=r"the archive is larger than the limit of 0.0 MB"):
        import_zip(archive, tmp_path / "a", ZipLimits(max_archive_bytes=10))


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"the upload is not a zip archive"):
        import_zip(io.BytesIO(png_bytes(1)), tmp_path / "x")
    assert files_under(tmp_path) == []


def test_existing_target_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.png": png_bytes(1)})
    (tmp_path / "pets").mkdir()
    (tmp_path / "pets" / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match=r"a dataset named 'pets' already exists"):
        import_zip(archive, tmp_path / "pets")
    assert files_under(tmp_path) == ["a.zip", "pets", "pets/keep.txt"]


def test_images_beside_class_folders_are_skipped(tmp_path: Path) -> None:
    grey = {name: png_bytes(value, mode="L") for name, value in (("loose.png", 1), ("cat/a.png", 2), ("dog/b.png", 3))}
    report = import_zip(make_zip(tmp_path / "a.zip", grey), tmp_path / "a")
    assert (report.images, report.classes, report.image_shape) == (2, ["cat", "dog"], (1, 4, 6))
    assert [file.to_dict() for file in report.skipped] == [
        {"path": "loose.png", "reason": "not inside a class folder (the archive has class folders)"}
    ]
    assert files_under(tmp_path / "a") == ["cat", "cat/a.png", "dog", "dog/b.png"]


def test_archive_without_images_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"readme.txt": b"hi"})
    with pytest.raises(ArchiveError, match=r"no usable PNG or JPEG images \(1 entries skipped, e.g. readme.txt: not a PNG or JPEG image\)"):
        import_zip(archive, tmp_path / "a")
    assert files_under(tmp_path) == ["a.zip"]


def test_dataset_names_are_checked() -> None:
    assert check_dataset_name("my-pets_2.v1") == "my-pets_2.v1"
    for bad in ("", "../x", ".hidden", "a/b", "a b", "x" * 65):
        with pytest.raises(DatasetError, match=r"is not allowed: use 1-64 letters"):
            check_dataset_name(bad)
    with pytest.raises(DatasetError, match=r"dataset name 'MNIST' is taken by a built-in dataset"):
        check_dataset_name("MNIST")
