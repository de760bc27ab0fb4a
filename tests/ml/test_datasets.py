"""Dataset loading: bundled digits, IDX (MNIST-style), CIFAR-10 batches and image folders, all on tiny generated files."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ml.datasets.locations as locations
from ml.datasets import DatasetError, list_datasets, load_dataset
from ml.datasets.folder import target_size
from ml.datasets.idx import read_idx, read_idx_shape


@pytest.fixture(autouse=True)
def isolated_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every search place at empty temp folders, so tests never see this machine's datasets."""
    system = tmp_path / "system"
    monkeypatch.setattr(locations, "SYSTEM_DATASETS_DIR", system)
    monkeypatch.setattr(locations, "DEFAULT_TORCHVISION_ROOT", tmp_path / "cache")
    monkeypatch.delenv(locations.DATASETS_DIR_ENV, raising=False)
    return system


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """The IDX format: magic (0, 0, 0x08 = unsigned byte, ndim), big-endian uint32 sizes, raw bytes."""
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def write_idx_dataset(directory: Path, compress: bool, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        write_idx(directory / stem, array, compress)
    return arrays


def test_digits_are_1797_grey_8x8_images_labelled_0_to_9() -> None:
    dataset = load_dataset("digits")
    assert dataset.images.shape == (1797, 8, 8, 1)
    assert dataset.images.dtype == np.uint8
    assert dataset.images.max() == 255
    assert sorted(set(dataset.labels.tolist())) == list(range(10))
    assert dataset.class_names == [str(d) for d in range(10)]
    assert dataset.train_mask is None
    image = dataset.image(0)
    assert (image.mode, image.size) == ("L", (8, 8))
    assert np.array_equal(np.asarray(image), dataset.images[0, ..., 0])


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_idx_files_in_datasets_dir(tmp_path: Path, compress: bool) -> None:
    arrays = write_idx_dataset(tmp_path / "data" / "fashion-mnist", compress)
    dataset = load_dataset("fashion-mnist", datasets_dir=tmp_path / "data", download=False)
    assert dataset.images.shape == (17, 28, 28, 1)
    assert np.array_equal(dataset.images[:12, ..., 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(dataset.images[12:, ..., 0], arrays["t10k-images-idx3-ubyte"])
    expected_labels = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    assert dataset.labels.dtype == np.int64
    assert np.array_equal(dataset.labels, expected_labels)
    assert dataset.train_mask.tolist() == [True] * 12 + [False] * 5
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[9] == "Ankle boot"
    assert len(dataset.class_names) == 10


def test_datasets_dir_defaults_to_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_idx_dataset(tmp_path / "env" / "mnist", compress=True)
    monkeypatch.setenv(locations.DATASETS_DIR_ENV, str(tmp_path / "env"))
    dataset = load_dataset("mnist", download=False)
    assert len(dataset) == 17
    assert dataset.class_names == [str(d) for d in range(10)]


def test_mnist_from_system_dir_and_torchvision_layout(tmp_path: Path, isolated_places: Path) -> None:
    write_idx_dataset(isolated_places / "mnist", compress=True, n_train=3, n_test=2)
    assert len(load_dataset("mnist", datasets_dir=tmp_path / "empty", download=False)) == 5
    write_idx_dataset(tmp_path / "data" / "torchvision" / "MNIST" / "raw", compress=False, n_train=4, n_test=1)
    # <datasets_dir>/mnist comes first, then the system dir, then torchvision's root.
    assert len(load_dataset("mnist", datasets_dir=tmp_path / "data", download=False)) == 5
    (isolated_places / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    dataset = load_dataset("mnist", datasets_dir=tmp_path / "data", download=False)
    assert dataset.train_mask.tolist() == [True] * 4 + [False]


def test_truncated_idx_file_is_an_error_naming_it(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path / "data" / "mnist", compress=False)
    broken = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is truncated"):
        load_dataset("mnist", datasets_dir=tmp_path / "data", download=False)


def test_idx_file_with_a_wrong_magic_number_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00")
    with pytest.raises(DatasetError, match=r"labels is not an IDX file of unsigned bytes \(magic number 00000d01\)"):
        read_idx(path)


def test_corrupt_gzip_idx_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz is corrupt"):
        read_idx_shape(path)


def test_missing_dataset_names_every_place_looked_in(tmp_path: Path, isolated_places: Path) -> None:
    with pytest.raises(DatasetError) as raised:
        load_dataset("fashion-mnist", datasets_dir=tmp_path / "data", download=False)
    message = str(raised.value)
    assert "\n" not in message
    for place in (
        tmp_path / "data" / "fashion-mnist",
        isolated_places / "fashion-mnist",
        tmp_path / "data" / "torchvision" / "FashionMNIST" / "raw",
    ):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "LATENTMAP_DATASETS_DIR" in message
    assert "the download was not attempted (download=False)" in message


def test_unknown_dataset_is_an_error() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'imagenet'; known: digits, fashion-mnist, mnist, cifar10 or folder:PATH"):
        load_dataset("imagenet")


def write_cifar(directory: Path, per_batch: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Six tiny batches in torchvision's layout; returns the expected images (N×32×32×3) and labels."""
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True)
    images, labels = [], []
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        batch_labels = rng.integers(0, 10, per_batch).tolist()
        with open(directory / batch, "wb") as handle:
            pickle.dump({"batch_label": batch, "data": rows, "labels": batch_labels}, handle, protocol=2)
        images.append(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels += batch_labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(directory / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": names, "num_vis": 3072}, handle, protocol=2)
    return np.concatenate(images), np.array(labels)


def test_cifar10_from_batches_folder(tmp_path: Path) -> None:
    images, labels = write_cifar(tmp_path / "data" / "cifar10" / "cifar-10-batches-py")
    dataset = load_dataset("cifar10", datasets_dir=tmp_path / "data", download=False)
    assert dataset.images.shape == (12, 32, 32, 3)
    assert np.array_equal(dataset.images, images)
    assert np.array_equal(dataset.labels, labels)
    assert dataset.train_mask.tolist() == [True] * 10 + [False] * 2
    assert dataset.class_names[3] == "cat"
    # Pixel (0, 0) of image 0 is bytes 0, 1024 and 2048 of its row (R, G, B planes).
    assert dataset.image(0).getpixel((0, 0)) == tuple(int(v) for v in images[0, 0, 0])


def test_cifar10_batch_that_runs_code_is_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data" / "cifar10")
    with open(tmp_path / "data" / "cifar10" / "test_batch", "wb") as handle:
        pickle.dump({"data": print}, handle, protocol=2)
    with pytest.raises(DatasetError, match=r"test_batch is not a readable CIFAR-10 batch: (__builtin__|builtins).print is not allowed"):
        load_dataset("cifar10", datasets_dir=tmp_path / "data", download=False)


def test_list_datasets_reads_headers_only(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path / "data" / "fashion-mnist", compress=True)
    infos = {info.name: info for info in list_datasets(tmp_path / "data")}
    assert list(infos) == ["digits", "fashion-mnist", "mnist", "cifar10"]
    fashion = infos["fashion-mnist"]
    assert (fashion.available, fashion.n_images, fashion.image_shape) == (True, 17, (1, 28, 28))
    assert fashion.location == str(tmp_path / "data" / "fashion-mnist")
    assert infos["mnist"].available is False and infos["mnist"].n_images is None
    assert infos["digits"].to_dict() == {
        "name": "digits",
        "description": infos["digits"].description,
        "available": True,
        "location": None,
        "n_images": 1797,
        "image_shape": [1, 8, 8],
        "has_labels": True,
    }


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_with_class_folders_mixed_sizes_and_a_corrupt_file(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    cat = np.full((10, 12, 3), (200, 10, 10), dtype=np.uint8)
    save_png(root / "cat" / "a.png", cat)
    save_png(root / "cat" / "b.png", cat)
    save_png(root / "dog" / "c.png", np.full((10, 12, 3), 90, np.uint8))
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "dog" / "big.jpg", "JPEG")
    noisy = np.random.default_rng(2).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    save_png(root / "dog" / "broken.png", noisy)
    (root / "dog" / "broken.png").write_bytes((root / "dog" / "broken.png").read_bytes()[:-60])  # cut into the pixel data
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0")
    dataset = load_dataset(f"folder:{root}")
    assert dataset.name == f"folder:{root}"
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.sources == ["cat/a.png", "cat/b.png", "dog/big.jpg", "dog/c.png"]
    assert dataset.labels.tolist() == [0, 0, 1, 1]
    assert dataset.images.shape == (4, 10, 12, 3)  # the most common size, (width 12, height 10)
    assert np.array_equal(dataset.images[0], cat)
    assert np.array_equal(dataset.images[3], np.full((10, 12, 3), 90, np.uint8))
    assert dataset.images[2].max() < 8  # the black 20×20 JPEG, resized
    assert dataset.train_mask is None
    assert [file.path for file in dataset.skipped] == ["dog/broken.png", "dog/notes.txt"]
    assert dataset.skipped[0].reason.startswith("corrupt or truncated PNG image")
    assert dataset.skipped[1].reason == "not a PNG or JPEG image"


def test_flat_grey_folder_is_unlabelled_with_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    save_png(root / "b.png", np.full((5, 5), 7, np.uint8))
    save_png(root / "a.png", np.stack([np.full((5, 5), 9, np.uint8)] * 3, axis=-1))  # RGB but grey
    dataset = load_dataset(f"folder:{root}")
    assert dataset.labels is None and dataset.class_names is None
    assert dataset.sources == ["a.png", "b.png"]
    assert dataset.images.shape == (2, 5, 5, 1)
    assert dataset.images[:, 0, 0, 0].tolist() == [9, 7]
    assert dataset.image(1).mode == "L"


def test_sixteen_bit_grey_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    Image.fromarray(np.array([[0, 257, 65535, 1000]], dtype=np.uint16)).save(root / "a.png")
    dataset = load_dataset(f"folder:{root}")
    assert dataset.images[0, :, :, 0].tolist() == [[0, 1, 255, 4]]


def test_large_images_are_scaled_down_to_fit_64_pixels() -> None:
    assert target_size([(200, 100), (200, 100), (30, 30)]) == (64, 32)
    assert target_size([(30, 30), (28, 28)]) == (30, 30)  # a tie goes to the first seen


def test_empty_or_missing_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"holds no readable PNG or JPEG images \(1 files skipped, e.g. readme.txt: not a PNG or JPEG image\)"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DatasetError, match=r"does not exist"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
