"""Run page of an import with metadata: colour by a metadata column, filter (counts follow, the map,
the box selection and its CSV keep only what passes), search by a metadata value."""
from __future__ import annotations

import csv
import io
import json

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from e2e_support import screenshot, wait_for_map
from sklearn.datasets import load_digits

N = 300


def import_digits_with_metadata(server) -> str:
    digits = load_digits()
    buffer = io.BytesIO()
    pq.write_table(pa.table({
        "embedding": pa.array(digits.data[:N].tolist()), "label": [str(v) for v in digits.target[:N]],
        "x": np.arange(N) % 20 * 1.0, "y": np.arange(N) // 20 * 1.0,  # a 20 × 15 grid: every point visible
        "parity": ["even" if v % 2 == 0 else "odd" for v in digits.target[:N]],
        "ink": digits.data[:N].mean(axis=1), "file": [f"img-{i:04d}.png" for i in range(N)]}), buffer)
    answer = httpx.post(server.url + "/api/imports", files={"file": ("digits.parquet", buffer.getvalue())},
                        data={"options": json.dumps({"name": "digits with metadata"})}, timeout=60)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    server.wait_for(lambda: server.get(f"/api/runs/{run_id}")["status"] == "succeeded", 60, "the import")
    return run_id


def test_colour_filter_and_search_by_metadata(server, page) -> None:
    digits = load_digits()
    odd = int((digits.target[:N] % 2).sum())
    run_id = import_digits_with_metadata(server)
    page.goto(f"{server.url}/runs/{run_id}?color=category:parity")
    wait_for_map(page, timeout=60_000)
    assert page.locator("#color-select").input_value() == "category:parity"
    legend = page.evaluate("Array.from(document.querySelectorAll('#map .legendtext')).map((node) => node.textContent)")
    assert legend == [f"even · {N - odd}", f"odd · {odd}"]
    page.click("#filter-toggle")  # the bar opens from the toolbar
    assert page.locator("#filter-count").inner_text() == f"{N} points"

    page.select_option("#filter-add", "category:parity")
    chip = page.locator(".filter-chip[data-key='category:parity']")
    chip.locator("input[value='1']").uncheck()  # drop the odd ones
    page.wait_for_function(f"document.querySelector('#filter-bar').dataset.shown === '{N - odd}'")
    assert page.locator("#filter-count").inner_text() == f"{N - odd} of {N} points"
    hidden = page.evaluate("(() => { const p = window.__latentmap.map.points; let k = 0;"
                           " for (let i = 0; i < p.n; i += 1) if (Number.isNaN(p.x[i])) k += 1; return k; })()")
    assert hidden == odd
    legend = page.evaluate("Array.from(document.querySelectorAll('#map .legendtext')).map((node) => node.textContent)")
    assert legend == [f"even · {N - odd}", "odd · 0"]  # the legend counts the points shown
    assert "ARI" in page.locator("#filter-scores").inner_text()

    # A second filter: its value counts follow the first (only even digits are left).
    page.select_option("#filter-add", "label")
    label_chip = page.locator(".filter-chip[data-key='label']")
    counts = label_chip.locator(".chip-value").all_inner_texts()
    assert counts[1].split()[-1] == "0" and counts[0].split()[-1] == str(int((digits.target[:N] == 0).sum()))
    label_chip.locator("input[value='0']").uncheck()
    shown = N - odd - int((digits.target[:N] == 0).sum())
    page.wait_for_function(f"document.querySelector('#filter-bar').dataset.shown === '{shown}'")

    # A box over the whole map selects only what passes; the CSV lists the same points.
    page.click("[data-role='modes'] button[data-mode='select']")
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 20, steps=5)
    page.mouse.up()
    panel = page.locator("#panel-selection [data-role='selection']")
    panel.wait_for(state="visible")
    selected = int(panel.locator("[data-role='selection-title']").inner_text().split()[0].replace(",", ""))
    assert 0 < selected <= shown
    with page.expect_download() as download_info:
        panel.locator("[data-role='selection-csv']").click()
    rows = list(csv.reader(io.StringIO(download_info.value.path().read_text())))[1:]
    assert len(rows) == selected
    assert all(digits.target[int(row[0])] % 2 == 0 and digits.target[int(row[0])] != 0 for row in rows)
    screenshot(page, "run-import-filtered")

    page.fill("#point-search", "img-01")
    page.press("#point-search", "Enter")
    page.wait_for_function("document.querySelector('#search-status').dataset.total === '100'")
    assert "100 found" in page.locator("#search-status").inner_text()
