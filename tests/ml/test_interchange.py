"""ml.interchange: each format read from small files written here, each writer read back, each refusal."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ml.interchange import (EmbeddingTable, InterchangeError, detect_format, read_embeddings, write_parquet,
                            write_projector)
from ml.interchange.projector_config import parse_config

RNG = np.random.default_rng(0)
EMBEDDING = RNG.normal(size=(12, 3)).astype(np.float32)
NAMES = ["cat", "dog", "cat", "eel", "dog", "cat", "eel", "eel", "dog", "cat", "cat", "dog"]
IMAGES = RNG.integers(0, 256, size=(12, 6, 5, 1), dtype=np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(buffer, format="PNG")
    return buffer.getvalue()


# ----- npy ------------------------------------------------------------------------------------
def test_npy_reads_the_array(tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", EMBEDDING.astype(np.float64))
    table = read_embeddings(tmp_path / "e.npy")
    assert table.embedding.dtype == np.float32 and np.array_equal(table.embedding, EMBEDDING)
    assert table.labels is None and table.images is None and table.coords is None


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 3)), "N = 0"), (np.zeros((4, 0)), "d = 0"), (np.zeros(5), "N × d"),
    (np.array([[1.0, np.nan]]), "NaN or infinity"), (np.array([[1.0], [np.inf]]), "row 2"),
])
def test_npy_refusals(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "e.npy", array)
    with pytest.raises(InterchangeError, match=message):
        read_embeddings(tmp_path / "e.npy")


def test_npy_that_is_not_npy(tmp_path: Path) -> None:
    (tmp_path / "e.npy").write_text("1,2,3\n")
    with pytest.raises(InterchangeError, match="not a plain .npy"):
        read_embeddings(tmp_path / "e.npy", "npy")


# ----- CSV / TSV ------------------------------------------------------------------------------
def _csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    lines = ([delimiter.join(header)] if header else []) + [delimiter.join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_numeric_columns_are_dimensions_and_the_rest_metadata(tmp_path: Path) -> None:
    rows = [[*map(float, EMBEDDING[i]), NAMES[i], f"id{i}", i * 10] for i in range(12)]
    path = _csv(tmp_path / "e.csv", ["a", "b", "c", "label", "name", "year"], rows)
    table = read_embeddings(path)
    # "year" is numeric, so it is a dimension too: every numeric column but labels and x/y is.
    assert table.dim == 4 and np.allclose(table.embedding[:, :3], EMBEDDING)
    assert table.class_names == ["cat", "dog", "eel"]
    assert [table.class_names[code] for code in table.labels] == NAMES
    assert table.metadata["name"][3] == "id3" and set(table.metadata) == {"name"}


def test_tsv_without_header_and_with_xy(tmp_path: Path) -> None:
    path = _csv(tmp_path / "e.tsv", [], [list(map(float, row)) for row in EMBEDDING], "\t")
    table = read_embeddings(path)
    assert np.allclose(table.embedding, EMBEDDING) and table.labels is None
    rows = [[*map(float, EMBEDDING[i]), i, -i] for i in range(12)]
    table = read_embeddings(_csv(tmp_path / "xy.csv", ["a", "b", "c", "x", "y"], rows))
    assert table.dim == 3 and np.array_equal(table.coords[:, 1], -np.arange(12, dtype=np.float32))


@pytest.mark.parametrize("header, rows, message", [
    (["a", "b"], [[1, 2], [3, 4, 5]], "ragged row"),
    (["a", "b"], [[1, 2], [3]], "ragged row"),
    (["a", "b"], [[1, 2], [3, "x4"]], "'x4' is not a number"),
    (["a", "b"], [[1, 2], [3, "nan"]], "NaN or infinity"),
    (["a", "b"], [[1, 2], [3, "inf"]], "NaN or infinity"),
    (["a", "b"], [], "N = 0"),
    (["name"], [["x"], ["y"]], "d = 0"),
])
def test_csv_refusals(tmp_path: Path, header: list[str], rows: list[list[object]], message: str) -> None:
    with pytest.raises(InterchangeError, match=message):
        read_embeddings(_csv(tmp_path / "e.csv", header, rows))


def test_csv_missing_labels_column_and_binary_file(tmp_path: Path) -> None:
    path = _csv(tmp_path / "e.csv", ["a"], [[1], [2]])
    with pytest.raises(InterchangeError, match="no column 'kind' for the labels"):
        read_embeddings(path, labels_column="kind")
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(InterchangeError, match="not a text file"):
        read_embeddings(tmp_path / "b.csv")


# ----- Parquet --------------------------------------------------------------------------------
def _parquet(path: Path, **columns: object) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_list_labels_images_xy_and_metadata(tmp_path: Path) -> None:
    images = pa.StructArray.from_arrays([pa.array([_png(image) for image in IMAGES], pa.binary()),
                                         pa.array([f"{i}.png" for i in range(12)])], names=["bytes", "path"])
    path = _parquet(tmp_path / "e.parquet", embedding=pa.array(EMBEDDING.tolist()), label=NAMES,
                    image=images, x=np.arange(12.0), y=np.ones(12), score=np.linspace(0, 1, 12), id=[f"p{i}" for i in range(12)])
    table = read_embeddings(path)
    assert np.array_equal(table.embedding, EMBEDDING) and table.class_names == ["cat", "dog", "eel"]
    assert np.array_equal(table.images, IMAGES) and table.coords.shape == (12, 2)
    assert set(table.metadata) == {"score", "id"} and table.metadata["score"].dtype == np.float64


def test_parquet_fixed_size_vector_and_plain_bytes_images(tmp_path: Path) -> None:
    vector = pa.FixedSizeListArray.from_arrays(pa.array(EMBEDDING.reshape(-1)), 3)
    path = _parquet(tmp_path / "e.parquet", vector=vector, pixels=pa.array([_png(i) for i in IMAGES], pa.binary()))
    table = read_embeddings(path, image_column="pixels")
    assert np.array_equal(table.embedding, EMBEDDING) and np.array_equal(table.images, IMAGES)


@pytest.mark.parametrize("columns, message", [
    ({"features": [[1.0, 2.0]]}, "no embedding column"),
    ({"embedding": [[1.0, 2.0], [1.0]]}, "unequal length: row 1 has 2 values, row 2 has 1"),
    ({"embedding": [[1.0, float("nan")]]}, "NaN or infinity"),
    ({"embedding": [[1.0], None]}, "no embedding at row 2"),
    ({"embedding": [["a"]]}, "not numbers"),
    ({"embedding": [[1.0]], "image": pa.array([b"not an image"], pa.binary())}, "not a PNG or JPEG"),
])
def test_parquet_refusals(tmp_path: Path, columns: dict, message: str) -> None:
    with pytest.raises(InterchangeError, match=message):
        read_embeddings(_parquet(tmp_path / "e.parquet", **columns))


def test_a_file_that_is_not_its_format(tmp_path: Path) -> None:
    (tmp_path / "e.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(InterchangeError, match="not a readable Parquet file"):
        read_embeddings(tmp_path / "e.parquet", "parquet")
    assert detect_format(tmp_path / "e.parquet") == "parquet"  # by suffix when the bytes say nothing
    with open(tmp_path / "e.csv", "wb") as handle:
        np.save(handle, EMBEDDING)
    assert detect_format(tmp_path / "e.csv") == "npy"  # the bytes win over the suffix


# ----- TensorBoard projector ------------------------------------------------------------------
def _tensorboard_folder(folder: Path, metadata: str | None, sprite: tuple[str, list[int]] | None = None,
                        tensor_path: str = "tensors.tsv") -> Path:
    """A projector folder whose config is written by TensorBoard's own proto and text_format."""
    projector_config_pb2 = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    from google.protobuf import text_format

    folder.mkdir(exist_ok=True)
    (folder / "tensors.tsv").write_text("\n".join("\t".join(map(repr, row)) for row in EMBEDDING.tolist()) + "\n")
    config = projector_config_pb2.ProjectorConfig()
    info = config.embeddings.add(tensor_name="features", tensor_path=tensor_path)
    if metadata is not None:
        (folder / "metadata.tsv").write_text(metadata)
        info.metadata_path = "metadata.tsv"
    if sprite is not None:
        info.sprite.image_path, dims = sprite
        info.sprite.single_image_dim.extend(dims)
    (folder / "projector_config.pbtxt").write_text(text_format.MessageToString(config))
    return folder


def _sprite(images: np.ndarray, columns: int) -> Image.Image:
    n, height, width, _ = images.shape
    sheet = Image.new("L", (columns * width, math.ceil(n / columns) * height))
    for index, image in enumerate(images):
        sheet.paste(Image.fromarray(image[..., 0]), ((index % columns) * width, (index // columns) * height))
    return sheet


def test_projector_one_column_metadata_has_no_header_and_sprite_is_row_major(tmp_path: Path) -> None:
    _sprite(IMAGES, 4).save(tmp_path / "sprite.png")
    folder = _tensorboard_folder(tmp_path, "\n".join(NAMES) + "\n", ("sprite.png", [5, 6]))
    table = read_embeddings(folder)
    assert np.allclose(table.embedding, EMBEDDING) and [table.class_names[c] for c in table.labels] == NAMES
    assert np.array_equal(table.images, IMAGES)


def test_projector_two_columns_have_a_header(tmp_path: Path) -> None:
    rows = "\n".join(f"{name}\t{index * 0.5}" for index, name in enumerate(NAMES))
    table = read_embeddings(_tensorboard_folder(tmp_path, f"Class\tweight\n{rows}\n"))
    assert table.class_names == ["cat", "dog", "eel"] and np.allclose(table.metadata["weight"], np.arange(12) * 0.5)
    with pytest.raises(InterchangeError, match="13 metadata rows for 12 points"):
        read_embeddings(_tensorboard_folder(tmp_path, "\n".join(NAMES + ["extra"]) + "\n"))


@pytest.mark.parametrize("metadata, sprite, tensor_path, message", [
    ("a\tb\nx\n", None, "tensors.tsv", "1 metadata rows for 12 points"),
    ("a\tb\n" + "x\t1\n" * 11 + "x\n", None, "tensors.tsv", "ragged row: line 13 has 1 fields"),
    (None, ("sprite.png", [5, 6]), "tensors.tsv", "holds 2×1 = 2 tiles"),
    (None, ("sprite.png", [4, 6]), "tensors.tsv", "not a grid of 4×6 px tiles"),
    (None, ("../sprite.png", [5, 6]), "tensors.tsv", "leads outside the projector folder"),
    (None, None, "/etc/passwd", "leads outside the projector folder"),
    (None, None, "missing.tsv", "names a file that is not in the folder"),
])
def test_projector_refusals(tmp_path: Path, metadata: str | None, sprite: tuple | None, tensor_path: str,
                            message: str) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    _sprite(IMAGES[:2], 2).save(folder / "sprite.png")
    _sprite(IMAGES[:2], 2).save(tmp_path / "sprite.png")
    with pytest.raises(InterchangeError, match=message):
        read_embeddings(_tensorboard_folder(folder, metadata, sprite, tensor_path))


def test_projector_config_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "projector_config.pbtxt").write_text("embeddings { no_such_field: 1 }")
    with pytest.raises(InterchangeError, match="not a projector config"):
        read_embeddings(tmp_path)


# ----- writers: read back by the readers and by TensorBoard's proto -----------------------------
def _table() -> EmbeddingTable:
    labels = np.array([["eel", "dog", "cat"].index(name) for name in NAMES])
    return EmbeddingTable(embedding=EMBEDDING.copy(), labels=labels, class_names=["eel", "dog", "cat"],
                          metadata={"note": np.array([f"n{i}" for i in range(12)], dtype=object)},
                          images=IMAGES.copy(), coords=EMBEDDING[:, :2].copy()).checked("test")


def test_parquet_round_trip_keeps_arrays_and_class_order(tmp_path: Path) -> None:
    original = _table()
    write_parquet(tmp_path / "out.parquet", original, projections={"p1": EMBEDDING[:, 1:]},
                  clusterings={"c1": np.arange(12) % 3})
    back = read_embeddings(tmp_path / "out.parquet")
    assert np.array_equal(back.embedding, original.embedding) and np.array_equal(back.labels, original.labels)
    assert back.class_names == ["eel", "dog", "cat"] and np.array_equal(back.coords, original.coords)
    assert np.array_equal(back.images, original.images) and list(back.metadata["note"]) == list(original.metadata["note"])
    assert np.array_equal(back.metadata["clustering.c1"], np.arange(12) % 3)
    assert np.allclose(back.metadata["projection.p1.y"], EMBEDDING[:, 2])


def test_projector_round_trip_and_tensorboard_reads_the_config(tmp_path: Path) -> None:
    folder = write_projector(tmp_path / "export", _table())
    back = read_embeddings(folder)
    assert np.array_equal(back.embedding, EMBEDDING)
    assert [back.class_names[c] for c in back.labels] == NAMES and np.array_equal(back.images, IMAGES)
    assert list(back.metadata["note"]) == [f"n{i}" for i in range(12)]
    assert (folder / "metadata.tsv").read_text().splitlines()[0] == "label\tnote"  # two columns: a header
    projector_config_pb2 = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    from google.protobuf import text_format

    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector_config_pb2.ProjectorConfig())
    info = config.embeddings[0]
    assert (info.tensor_path, info.metadata_path, info.sprite.image_path) == ("tensors.tsv", "metadata.tsv", "sprite.png")
    assert list(info.sprite.single_image_dim) == [5, 6] and list(info.tensor_shape) == [12, 3]
    assert Image.open(folder / "sprite.png").size == (4 * 5, 4 * 6)  # ceil(sqrt(12)) = 4 tiles a side
    assert parse_config(text_format.MessageToString(config)).embeddings[0].tensor_name == "embedding"


def test_projector_single_column_has_no_header(tmp_path: Path) -> None:
    table = _table()
    table.metadata = {}
    folder = write_projector(tmp_path / "export", table)
    assert (folder / "metadata.tsv").read_text().splitlines() == NAMES
