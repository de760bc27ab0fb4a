"""HTML and script in labels, file names, dataset paths and run ids are shown as text, never run.

Two ways in: (1) a .zip uploaded through POST /api/datasets whose class folders and file names are
HTML (the import sanitises names, so what reaches the pages is inert text), trained for 1 epoch
through the API; (2) a folder dataset on disk (`folder:PATH`, as `latentmap train` takes it) whose
root and class folder names are raw HTML/JS, trained in-process and registered in the server's
registry like the CLI does: those names reach the pages unchanged. For both runs the home page, the
run page (legend, hover card, point panel after a click) are visited in Chromium; every payload
sets `window.__xss` if it ever runs, and the test asserts it never does and the text shows literally.
"""
from __future__ import annotations

import io
import json
import os
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_support import screenshot, wait_for_map
from PIL import Image

PAYLOADS = [
    "<img src=x onerror=window.__xss=1>",
    "\"><svg onload=window.__xss=2>",
    "<a href=\"javascript:window.__xss=3\">{{7*7}} click",  # no "/": these are folder names
]
ROOT_PAYLOAD = "<svg onload=window.__xss=4>"


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _multipart(fields: dict[str, str], file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n".encode()
             for key, value in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
                 f"Content-Type: application/zip\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _upload(server: Any, name: str, archive: bytes) -> dict[str, Any]:
    body, content_type = _multipart({"name": name}, f"{name}.zip", archive)
    request = urllib.request.Request(server.url + "/api/datasets", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _finished_map(server: Any, run_id: str) -> None:
    """Wait for the run, ask for a PCA map (the default UMAP compiles for minutes on a busy CPU), cancel UMAP."""
    server.wait_for(lambda: server.get(f"/api/runs/{run_id}")["status"] in ("succeeded", "failed"), 180, "training")
    assert server.get(f"/api/runs/{run_id}")["status"] == "succeeded"
    projection = server.post(f"/api/runs/{run_id}/projections", {"method": "pca", "params": {}})["projection_id"]
    for item in server.get(f"/api/runs/{run_id}")["projections"]:
        if item["id"] != projection and item["status"] in ("queued", "running"):
            try:
                server.post(f"/api/jobs/{item['job_id']}/cancel", {})
            except urllib.error.HTTPError:
                pass
    server.wait_for(lambda: next(p for p in server.get(f"/api/runs/{run_id}")["projections"] if p["id"] == projection)["status"]
                    == "succeeded", 180, "the PCA map")


def _train_folder_run(data_dir: Path, folder: Path) -> str:
    """`latentmap train --dataset folder:PATH` + `project --method pca` + `cluster --method kmeans`, in this process."""
    from app import catalog, tasks
    from app.dataset_source import open_dataset
    from app.registry import Registry

    registry = Registry(data_dir / "latentmap.sqlite3").open()
    name = f"folder:{folder}"
    loaded = open_dataset(name, registry, None)
    config = catalog.train_config(name, "ae", loaded.image_shape, len(loaded), {"epochs": 1, "seed": 0}, {})

    def run_here(job: Any, **extra: Any) -> None:
        final = tasks.run_job(tasks.JobContext(registry=registry, job=job, data_dir=data_dir, **extra))
        assert final.status == "succeeded", final.error

    run_id, job = tasks.queue_training(registry, config, data_dir, status="running", worker_pid=os.getpid())
    run_here(job, dataset=loaded)
    _, projection_job = tasks.queue_projection(registry, run_id, "pca", catalog.validate_projection("pca", {}), 0,
                                               status="running", worker_pid=os.getpid())
    run_here(projection_job)
    _, clustering_job = tasks.queue_clustering(registry, run_id, "kmeans", catalog.validate_clustering("kmeans", {"n_clusters": 3}),
                                               "embedding", 0, status="running", worker_pid=os.getpid())
    run_here(clustering_job)
    return run_id


def _never_ran(page: Any) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", "an injected script ran"


def _point_position(page: Any, index: int) -> tuple[float, float]:
    """Where point `index` of the map's first trace is drawn, in page pixels (Plotly's axis mapping)."""
    return tuple(page.evaluate(
        """(index) => {
            const gd = document.querySelector('#map');
            const trace = gd.data.find((t) => t.x && t.x.length && t.showlegend !== false) || gd.data[0];
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.l2p(trace.x[index]), box.top + ya._offset + ya.l2p(trace.y[index])];
        }""", index))


def _visit(page: Any, server: Any, run_id: str, texts: list[str], shot: str) -> None:
    page.goto(server.url + "/")
    row = page.locator("#runs-body tr", has_text=run_id)
    row.wait_for()
    _never_ran(page)

    page.goto(f"{server.url}/runs/{run_id}")
    try:
        wait_for_map(page, timeout=120_000)
    except Exception:
        screenshot(page, shot + "-failed")
        raise AssertionError(f"no map for {run_id}: {server.get(f'/api/runs/{run_id}')}\n{page.locator('main').inner_text()[:2000]}")
    if page.locator("#color-select option[value='label']").count():
        page.select_option("#color-select", "label")
        wait_for_map(page)
    legend = " ".join(page.locator("#map .legendtext").all_text_contents())
    for text in texts:
        assert text in legend, (text, legend)
    _never_ran(page)

    # hover a point: the hover card shows its label as text
    x, y = _point_position(page, 0)
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y)
    card = page.locator("#hover-card")
    card.wait_for(state="visible", timeout=10_000)
    label = card.locator("[data-fact='label']").text_content()
    assert label in texts, (label, texts)
    _never_ran(page)

    # click it: the point panel shows the label as text and loads its neighbours
    page.mouse.click(x, y)
    page.locator("#point-detail").wait_for(state="visible")
    page.wait_for_function("document.querySelector('#point-neighbors').dataset.state !== 'loading'")
    assert label in page.locator("#point-facts").inner_text()
    _never_ran(page)
    for link in page.locator("#map .legendtext a").all():  # Plotly turns <a href> into a link: it must go nowhere
        link.click()
    _never_ran(page)
    screenshot(page, shot)


def test_html_in_names_is_shown_as_text_and_never_runs(server: Any, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    try:
        # (1) an upload: class folders and file names are HTML
        entries = [(f"{payload}/{i}-<img src=x onerror=window.__xss=5>.png", _png(10 * k + i))
                   for k, payload in enumerate(PAYLOADS[:2]) for i in range(6)]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in entries:
                archive.writestr(name, data)
        uploaded = _upload(server, "xss-names", buffer.getvalue())
        classes = uploaded["report"]["classes"]
        assert uploaded["n"] == 12 and len(classes) == 2 and not any(c in name for name in classes for c in "<>\"")
        run_id = server.post("/api/runs", {"dataset": "xss-names", "method": "ae", "epochs": 1})["run_id"]
        _finished_map(server, run_id)
        _visit(page, server, run_id, classes, "escaping-upload")

        # (2) a folder dataset whose root and class names are raw HTML/JS, trained like `latentmap train`
        root = tmp_path / ROOT_PAYLOAD
        for k, payload in enumerate(PAYLOADS):
            (root / payload).mkdir(parents=True)
            for i in range(6):
                (root / payload / f"{i}.png").write_bytes(_png(100 + 10 * k + i))
        raw_run = _train_folder_run(server.data_dir, root)
        _visit(page, server, raw_run, PAYLOADS, "escaping-raw-names")
        page.goto(server.url + "/")
        row = page.locator("#runs-body tr", has_text=raw_run)
        assert ROOT_PAYLOAD in row.inner_text()  # the dataset column shows the path as text
        _never_ran(page)

        # (3) a run id that is HTML, in the URL of the run and compare pages
        evil_id = urllib.parse.quote("<img src=x onerror=window.__xss=6>", safe="")
        for path in (f"/runs/{evil_id}", f"/runs/{evil_id}/compare?a={evil_id}&b=%3Cscript%3Ewindow.__xss%3D7%3C%2Fscript%3E"):
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            assert "<img src=x onerror=window.__xss=6>" in page.locator("header").inner_text()
            _never_ran(page)
        assert dialogs == [], dialogs
        assert errors == [], errors
    finally:
        context.close()
