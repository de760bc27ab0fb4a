"""Home page "Import embeddings": a refused file is explained on the form and makes no run; a good
Parquet file opens its run page, which draws the map the file came with, with its images."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from e2e_support import screenshot, wait_for_map
from PIL import Image
from sklearn.datasets import load_digits

N = 200


def digits_parquet(path: Path) -> Path:
    digits = load_digits()
    pixels = (digits.images[:N] * 16).clip(0, 255).astype(np.uint8)

    def png(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()

    pq.write_table(pa.table({"embedding": pa.array(digits.data[:N].tolist()), "label": [str(v) for v in digits.target[:N]],
                             "image": pa.array([png(image) for image in pixels], pa.binary()),
                             "x": digits.data[:N, 10], "y": digits.data[:N, 20]}), path)
    return path


def test_import_through_the_page_draws_the_map(server, page, tmp_path: Path) -> None:
    runs_before = server.get("/api/runs")
    page.goto(server.url + "/")
    page.wait_for_selector("#import-form[data-ready='1']")

    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b\n1,2\n3\n")
    page.set_input_files("#import-file", str(bad))
    page.click("#import-submit")
    error = page.locator('#import-form [data-field="import_file"] .field-error')
    error.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#import-form [data-field=\"import_file\"] .field-error').textContent.includes('ragged row')")
    screenshot(page, "home-import-refused")
    assert server.get("/api/runs") == runs_before

    # An import is not a training: its run page must never show the training panel, not even briefly.
    page.add_init_script("""new MutationObserver(() => {
        const panel = document.querySelector('#training-panel');
        if (panel && !panel.hidden) window.__trainingPanelShown = true;
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['hidden'] });""")
    page.set_input_files("#import-file", str(digits_parquet(tmp_path / "digits-features.parquet")))
    page.fill("#import-name", "digits features")
    page.click("#import-submit")
    page.wait_for_url("**/runs/r*", timeout=60_000)
    wait_for_map(page, timeout=120_000)
    assert page.locator("#map").get_attribute("data-method") == "imported"
    assert page.locator("#map").get_attribute("data-points") == str(N)
    assert page.locator("#run-heading").inner_text() == "digits features (imported)"
    assert page.evaluate("window.__trainingPanelShown") is None
    assert page.locator("#export-parquet").is_visible()
    screenshot(page, "run-imported")
    run_id = page.url.rstrip("/").split("/")[-1].split("?")[0]
    run = server.get(f"/api/runs/{run_id}")
    assert run["method"] == "imported" and run["config"]["has_images"] and run["dataset"] == f"import-{run_id}"


def test_a_queued_import_draws_its_map_when_its_job_ends(server_with, page, tmp_path: Path) -> None:
    """The run page opened while the import still waits for a worker (its first points request is
    refused: no map yet) follows the job and then draws the map. It must not show that stale refusal,
    which left the map waiting for the next clustering to finish (120 s and more on a busy CI machine)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with server_with(data_dir, LATENTMAP_WORKERS="1") as server:
        busy = server.post("/api/runs", {"dataset": "digits", "method": "ae", "epochs": 5000, "seed": 1})
        server.wait_for(lambda: server.get(f"/api/jobs/{busy['job_id']}")["status"] == "running", 120, "the training to hold the worker")
        page.add_init_script("""window.__overlayTexts = [];
            new MutationObserver(() => {
                const text = document.querySelector('#map-overlay-text');
                if (text && text.textContent) window.__overlayTexts.push(text.textContent);
            }).observe(document, { subtree: true, childList: true, characterData: true });""")
        page.goto(server.url + "/")
        page.wait_for_selector("#import-form[data-ready='1']")
        page.set_input_files("#import-file", str(digits_parquet(tmp_path / "digits-features.parquet")))
        with page.expect_response(lambda response: "/points" in response.url, timeout=60_000) as first_points:
            page.click("#import-submit")
        assert first_points.value.status == 409  # asked before the import's job ran: no map yet
        page.wait_for_function("document.querySelector('#map-overlay').textContent.includes('Importing the embedding')")
        server.post(f"/api/jobs/{busy['job_id']}/cancel", {})
        wait_for_map(page, timeout=120_000)
        assert page.locator("#map").get_attribute("data-method") == "imported"
        assert page.locator("#map").get_attribute("data-points") == str(N)
        assert not [text for text in page.evaluate("window.__overlayTexts") if "no finished projection" in text]
