"""Hostile .zip uploads through POST /api/datasets of a real server (uvicorn subprocess): each attack
is refused or its entries skipped with a reason, nothing lands outside the dataset's folder, and
the server's memory stays bounded (peak RSS, VmHWM, measured around the bomb and huge-image uploads).
"""
from __future__ import annotations

import io
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import uuid
import zipfile
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAX_FILES = 2000
MAX_BYTES = 8 * 1024 * 1024
MIB = 1024 * 1024
# The server may grow by this much while it handles the bomb and the huge image (it holds at most the
# upload on disk, one entry's bytes at a time and one decoded image of at most 4096 × 4096 pixels).
MEMORY_BUDGET_MIB = 200
EVIL = f"latentmap-evil-{uuid.uuid4().hex[:8]}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("uploads")
    port = _free_port()
    env = {**os.environ, "LATENTMAP_WARM_UP": "false", "LATENTMAP_UPLOAD_MAX_FILES": str(MAX_FILES),
           "LATENTMAP_UPLOAD_MAX_BYTES": str(MAX_BYTES)}
    env.pop("LATENTMAP_TOKEN", None)
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--data-dir", str(root / "data"),
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "server.log").read_text()
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        client.root, client.pid = root, process.pid  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            client.close()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _png(width: int = 8, height: int = 8, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG header for a width × height grey image with only a few rows of (all-zero) data:
    a few hundred bytes that would need 900 MB once decoded."""
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _upload(server: httpx.Client, name: str, archive: bytes) -> httpx.Response:
    return server.post("/api/datasets", files={"file": (f"{name}.zip", archive, "application/zip")}, data={"name": name})


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def _outside_changes(server: httpx.Client, before: set[str], *datasets: str) -> set[str]:
    """Paths that appeared under the test's root other than the given dataset folders, the registry and the log."""
    root: Path = server.root  # type: ignore[attr-defined]
    allowed = ("data/latentmap.sqlite3", "server.log", *(f"data/datasets/{name}" for name in datasets))
    return {path for path in _tree(root) - before if path != "data/datasets" and not path.startswith(allowed)}


def _reasons(response: httpx.Response) -> dict[str, str]:
    return {item["path"]: item["reason"] for item in response.json()["report"]["skipped"]}


def test_unsafe_entries_are_skipped_and_nothing_lands_outside(server: httpx.Client) -> None:
    root: Path = server.root  # type: ignore[attr-defined]
    before = _tree(root)
    good = _png()
    archive = _zip([
        ("cats/ok1.png", good), ("cats/ok2.png", _png(seed=1)), ("dogs/ok3.png", _png(seed=2)),
        (f"../../../../../../../../tmp/{EVIL}.png", good),
        (f"cats/../../../{EVIL}-2.png", good),
        (f"/tmp/{EVIL}-abs.png", good),
        (f"..\\..\\{EVIL}-win.png", good),
        ("C:/windows/evil.png", good),
        _symlink("dogs/passwd.png", "/etc/passwd"),
        _symlink("dogs/up.png", "../../../../../etc/shadow"),
        ("dogs/.hidden.png", good),
        ("__MACOSX/dogs/._ok3.png", good),
        ("dogs/notes.png", b"this is text, not a PNG"),
        ("dogs/page.html", b"<script>alert(1)</script>"),
        ("dogs/vector.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
        ("dogs/truncated.png", good[: len(good) // 2]),
        ("dogs/truncated.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40),
        ("dogs/huge.png", huge_png()),
    ])
    response = _upload(server, "mixed", archive)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["n"] == 3 and body["report"]["classes"] == ["cats", "dogs"]
    reasons = _reasons(response)
    assert reasons[f"../../../../../../../../tmp/{EVIL}.png"] == "path escapes the archive (..)"
    assert reasons[f"cats/../../../{EVIL}-2.png"] == "path escapes the archive (..)"
    assert reasons[f"/tmp/{EVIL}-abs.png"] == "absolute path"
    assert reasons[f"..\\..\\{EVIL}-win.png"] == "path contains a backslash"
    assert reasons["C:/windows/evil.png"] == "absolute path"
    assert reasons["dogs/passwd.png"] == reasons["dogs/up.png"] == "symbolic link"
    assert reasons["dogs/.hidden.png"] == "hidden file" and reasons["__MACOSX/dogs/._ok3.png"] == "macOS metadata"
    for name in ("dogs/notes.png", "dogs/page.html", "dogs/vector.png"):
        assert reasons[name] == "not a PNG or JPEG image"
    assert reasons["dogs/truncated.png"].startswith("corrupt or truncated")
    assert "truncated" in reasons["dogs/truncated.jpg"] or "not a PNG" in reasons["dogs/truncated.jpg"]
    assert reasons["dogs/huge.png"].startswith("too large") and "900000000 pixels" in reasons["dogs/huge.png"]
    assert len(reasons) == 15

    assert _outside_changes(server, before, "mixed") == set()
    assert not list(Path("/tmp").glob(f"{EVIL}*")) and not list(root.rglob(f"{EVIL}*"))
    files = sorted(str(p.relative_to(root / "data/datasets/mixed")) for p in (root / "data/datasets/mixed").rglob("*"))
    assert files == ["cats", "cats/ok1.png", "cats/ok2.png", "dogs", "dogs/ok3.png"]
    assert not any(path.is_symlink() for path in (root / "data/datasets/mixed").rglob("*"))
    # the stored dataset is usable: it loads and serves thumbnails
    assert server.get("/api/datasets/mixed").json()["n"] == 3
    assert server.get("/api/datasets/mixed/images/2").headers["content-type"] == "image/png"


def test_bombs_and_huge_images_are_refused_with_bounded_memory(server: httpx.Client) -> None:
    pid: int = server.pid  # type: ignore[attr-defined]
    root: Path = server.root  # type: ignore[attr-defined]
    before_tree = _tree(root)
    assert server.get("/api/datasets").status_code == 200
    baseline = _peak_rss_mib(pid)

    # 1) a classic bomb: 300 MB of zeros deflated to about 300 KB (ratio ~1000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb/zeros.png", "w", force_zip64=True) as entry:
            block = b"\x00" * MIB
            for _ in range(300):
                entry.write(block)
    bomb = buffer.getvalue()
    assert len(bomb) < 2 * MIB
    response = _upload(server, "bomb", bomb)
    assert response.status_code == 422 and "zip bomb" in response.json()["detail"], response.text

    # 2) a central directory that declares 6 × 200 MB (refused before anything is read)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(6):
            archive.writestr(f"many/{i}.png", _png(seed=i))
        for info in archive.filelist:
            info.file_size = 200 * MIB
    response = _upload(server, "declared", buffer.getvalue())
    assert response.status_code == 422, response.text
    assert "expands to 1,200.0 MB" in response.json()["detail"], response.text

    # 2b) the opposite lie: an entry declared 1,000 bytes that inflates to 100 MB is cut off and skipped
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("liar/zeros.png", "w", force_zip64=True) as entry:
            for _ in range(100):
                entry.write(b"\x00" * MIB)
        archive.writestr("liar/ok.png", _png())
        archive.filelist[0].file_size = 1000
    response = _upload(server, "liar", buffer.getvalue())
    assert response.status_code == 201, response.text
    assert response.json()["n"] == 1
    assert _reasons(response)["liar/zeros.png"].startswith("corrupt or unreadable entry")

    # 3) the 30,000 × 30,000 px image, alone: refused from its header, never decoded
    response = _upload(server, "huge", _zip([("huge.png", huge_png())]))
    assert response.status_code == 422, response.text
    assert "huge.png: too large" in response.json()["detail"] and "900000000 pixels" in response.json()["detail"]

    # 4) an image just under the pixel limit (4096 × 4096, mostly zeros: 16 KB compressed, 16 MB decoded) is fine
    big = io.BytesIO()
    Image.fromarray(np.zeros((4096, 4096), dtype=np.uint8)).save(big, format="PNG")
    response = _upload(server, "big", _zip([("big/a.png", big.getvalue()), ("big/b.png", _png())]))
    assert response.status_code == 201, response.text

    peak = _peak_rss_mib(pid)
    print(f"server peak RSS: {baseline:.0f} MiB before, {peak:.0f} MiB after the bombs and huge images")
    assert peak - baseline < MEMORY_BUDGET_MIB, (baseline, peak)
    assert _outside_changes(server, before_tree, "big", "liar") == set()
    new_datasets = {p.name for p in (root / "data/datasets").iterdir()}
    assert {"big", "liar"} <= new_datasets and not {"bomb", "declared", "huge"} & new_datasets
    assert not (root / "data/datasets/bomb").exists() and not (root / "data/datasets/huge").exists()
    assert not [p for p in (root / "data/datasets").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_thousands_of_tiny_files(server: httpx.Client) -> None:
    tiny = _png(2, 2)
    many = _zip([(f"tiny/{i:05d}.png", tiny) for i in range(1500)], compression=zipfile.ZIP_STORED)
    started = time.monotonic()
    response = _upload(server, "tiny", many)
    assert response.status_code == 201, response.text
    assert response.json()["n"] == 1500
    print(f"1,500 tiny files imported in {time.monotonic() - started:.1f} s")

    too_many = _zip([(f"t/{i:05d}.txt", b"") for i in range(MAX_FILES + 1)], compression=zipfile.ZIP_STORED)
    response = _upload(server, "toomany", too_many)
    assert response.status_code == 422
    assert f"{MAX_FILES + 1:,} entries" in response.json()["detail"] and f"{MAX_FILES:,}" in response.json()["detail"]
    assert server.get("/api/health").status_code == 200


def test_not_a_zip_and_empty_archives(server: httpx.Client) -> None:
    for payload in (b"", b"PK\x03\x04garbage", b"%PDF-1.4", _png()):
        response = _upload(server, "notzip", payload)
        assert response.status_code == 422 and "not a zip" in response.json()["detail"], response.text
    response = _upload(server, "empty", _zip([]))
    assert response.status_code == 422 and "no usable" in response.json()["detail"]
    response = _upload(server, "onlybad", _zip([("a.png", b"nope"), ("../b.png", _png())]))
    assert response.status_code == 422 and "no usable" in response.json()["detail"]
    assert "a.png: not a PNG or JPEG image" in response.json()["detail"]


def test_an_upload_over_the_byte_limit_is_refused(server: httpx.Client) -> None:
    root: Path = server.root  # type: ignore[attr-defined]
    archive = _zip([("big/noise.bin", os.urandom(MAX_BYTES))], compression=zipfile.ZIP_STORED)
    response = _upload(server, "toolarge", archive)
    assert response.status_code == 413 and f"{MAX_BYTES:,} bytes" in response.json()["detail"]
    assert not (root / "data/datasets/toolarge").exists()
