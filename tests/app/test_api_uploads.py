"""POST /api/datasets: a good .zip becomes a dataset; unsafe or unusable uploads are refused with a reason."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app


def png(value: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client: TestClient, name: str, data: bytes):
    return client.post("/api/datasets", data={"name": name}, files={"file": ("images.zip", data, "application/zip")})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, settings_factory):
    settings = settings_factory(tmp_path_factory.mktemp("uploads") / "data", upload_max_bytes=20_000)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_class_folder_zip_becomes_a_labelled_dataset(api: TestClient) -> None:
    entries = {f"{label}/{i}.png": png(40 * i + offset) for offset, label in ((0, "cat"), (5, "dog")) for i in range(3)}
    response = upload(api, "pets", make_zip(entries))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "pets" and body["n"] == 6
    assert body["report"]["classes"] == ["cat", "dog"] and body["report"]["skipped"] == []
    listed = {row["name"]: row for row in api.get("/api/datasets").json()}
    assert listed["pets"]["source"] == "uploaded" and listed["pets"]["n"] == 6
    detail = api.get("/api/datasets/pets").json()
    assert detail["n"] == 6 and detail["class_names"] == ["cat", "dog"] and detail["image_shape"] == [1, 8, 8]
    thumbnail = api.get("/api/datasets/pets/images/0?size=8")
    assert np.asarray(Image.open(io.BytesIO(thumbnail.content))).shape == (8, 8)


def test_unsafe_and_unusable_entries_are_skipped_with_reasons(api: TestClient) -> None:
    entries = {"../escape.png": png(1), "ok/a.png": png(2), "ok/b.png": png(3), "ok/notes.txt": b"hello",
               "ok/broken.png": png(4)[:30]}
    response = upload(api, "mixed", make_zip(entries))
    assert response.status_code == 201, response.text
    report = response.json()["report"]
    assert response.json()["n"] == 2
    skipped = {item["path"]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == {"../escape.png", "ok/notes.txt", "ok/broken.png"}


@pytest.mark.parametrize("entries", [
    {"../../evil.png": png(1)},  # path traversal
    {"readme.txt": b"not an image"},  # not an image
    {"a/broken.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 40},  # corrupt PNG
], ids=["traversal", "non-image", "corrupt-png"])
def test_an_archive_with_nothing_usable_is_refused(api: TestClient, entries: dict[str, bytes]) -> None:
    response = upload(api, "nothing", make_zip(entries))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert next(iter(entries)) in detail  # the message names the entry and why it was passed over
    assert "nothing" not in {row["name"] for row in api.get("/api/datasets").json()}


def test_refusals(api: TestClient) -> None:
    good = make_zip({"x/a.png": png(1), "y/b.png": png(2)})
    not_zip = upload(api, "notzip", b"plain text, not a zip")
    assert not_zip.status_code == 422 and "not a zip" in not_zip.json()["detail"]
    too_big = upload(api, "big", good + b"\0" * 25_000)
    assert too_big.status_code == 413 and "20,000 bytes" in too_big.json()["detail"]
    bad_name = upload(api, "Bad Name!", good)
    assert bad_name.status_code == 422 and "a-z, 0-9" in bad_name.json()["detail"]
    builtin = upload(api, "digits", good)
    assert builtin.status_code == 409 and "already exists" in builtin.json()["detail"]
    assert upload(api, "twice", good).status_code == 201
    again = upload(api, "twice", good)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    missing_file = api.post("/api/datasets", data={"name": "nofile"})
    assert missing_file.status_code == 422
