"""Run page: the trained map, hover images from the atlas, the point panel with neighbours, box
selection, a new clustering from the page's form, and the view kept in the URL across a reload."""
from __future__ import annotations

import csv
import io
import re
from typing import Any

from e2e_support import screenshot, wait_for_map

# A point's screen position and whether it is inside the plotted area (dataset index → client px).
POSITION = "index => window.__latentmap.map.screenPosition(index)"


def open_run(page: Any, server: Any, run_id: str, query: str = "") -> None:
    page.goto(f"{server.url}/runs/{run_id}{query}")
    wait_for_map(page)


def hover_target(page: Any) -> tuple[int, dict[str, float]]:
    """A point whose nearest other point is far enough that hovering it cannot pick a neighbour."""
    found = page.evaluate("""() => {
        const map = window.__latentmap.map;
        const n = map.points.n;
        const positions = [];
        for (let i = 0; i < n; i += 1) positions.push(map.screenPosition(i));
        for (let i = 0; i < n; i += 1) {
            const p = positions[i];
            if (!p) continue;
            let nearest = Infinity;
            for (let j = 0; j < n && nearest >= 6; j += 1) {
                const q = positions[j];
                if (j !== i && q) nearest = Math.min(nearest, Math.hypot(p.x - q.x, p.y - q.y));
            }
            if (nearest >= 6) return {index: i, x: p.x, y: p.y};
        }
        return null;
    }""")
    assert found is not None, "no isolated point to hover"
    return found["index"], found


def rest_on(page: Any, index: int, position: dict[str, float]) -> None:
    """Move onto a point and stay until the map reports hovering it (Plotly throttles hover to 50 ms)."""
    page.mouse.move(position["x"] - 30, position["y"] - 30)
    page.mouse.move(position["x"], position["y"], steps=4)
    page.wait_for_function(f"document.querySelector('#hover-card').dataset.index === '{index}'", timeout=5_000)


def test_form_run_reaches_a_finished_map(server, page, trained_run):
    run = server.get(f"/api/runs/{trained_run['run_id']}")
    assert run["status"] == "succeeded"
    assert run["config"]["epochs"] == 2 and run["method"] == "dae"
    assert run["config"]["method_params"] == {"noise_std": 0.2}
    assert run["config"]["seed"] == 3
    open_run(page, server, trained_run["run_id"])
    assert page.locator("#map").get_attribute("data-points") == "1797"
    assert page.locator("#run-status").inner_text() == "succeeded"
    # WebGL draws the points: a canvas, no element per point.
    assert page.locator("#map canvas").count() >= 1
    assert page.locator("#map .point, #map circle").count() == 0
    scores = page.locator("#scorecard").inner_text()
    assert "kNN accuracy" in scores and "Trustworthiness" in scores
    assert re.search(r"kNN accuracy\s*\d+\.\d%", scores)
    screenshot(page, "run-map")
    # The Run tab: the loss per epoch, and the autoencoder's originals next to their reconstructions.
    page.click("#tab-run")
    assert page.locator("#panel-run").is_visible()
    page.wait_for_selector("#reconstructions .recon-pair")
    pairs = page.locator("#reconstructions .recon-pair")
    assert pairs.count() >= 4
    assert pairs.first.locator("img").count() == 2
    assert page.evaluate("() => [...document.querySelectorAll('#reconstructions img')].every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_selector("#history-chart .main-svg")
    assert page.evaluate("() => document.querySelector('#history-chart').data[0].x.length") == 2  # two epochs
    screenshot(page, "run-tab")


def test_live_training_can_be_cancelled(server, page):
    created = server.post("/api/runs", {"dataset": "digits", "method": "ae", "epochs": 400, "seed": 1})
    page.goto(f"{server.url}/runs/{created['run_id']}")
    page.locator("#training-panel").wait_for(state="visible")
    # Live progress from the job's events: an epoch count, a loss and a growing curve.
    page.wait_for_function("/^[1-9]\\d* \\/ 400$/.test(document.querySelector('#stat-epoch').textContent)", timeout=120_000)
    page.wait_for_function("document.querySelector('#loss-chart').data && document.querySelector('#loss-chart').data[0].x.length >= 2")
    assert re.fullmatch(r"[\d.e-]+", page.locator("#stat-loss").inner_text())
    assert page.locator("#stat-speed").inner_text() != "—"
    assert page.locator("#run-status").inner_text() == "running"  # the badge follows the job, not the page load
    page.click("#cancel-button")
    page.locator("#run-error").wait_for(state="visible", timeout=60_000)
    assert "cancelled" in page.locator("#run-error").inner_text()
    assert page.locator("#run-status").inner_text() == "cancelled"
    assert page.locator("#map-section").is_hidden()
    job = server.get(f"/api/jobs/{created['job_id']}")
    assert job["status"] == "cancelled"


def test_hover_shows_the_point_image_from_the_atlas(server, page, trained_run):
    open_run(page, server, trained_run["run_id"])
    index, position = hover_target(page)
    rest_on(page, index, position)
    card = page.locator("#hover-card")
    assert card.is_visible()
    page.wait_for_function("document.querySelector('#hover-card .hover-tile').dataset.loaded === '1'")
    assert card.get_attribute("data-index") == str(index)
    assert page.locator("#hover-card [data-fact='index']").inner_text() == str(index)
    tile = page.locator("#hover-card .hover-tile")
    style = tile.evaluate("node => ({image: node.style.backgroundImage, position: node.style.backgroundPosition})")
    assert "/api/datasets/digits/atlas?page=0" in style["image"]
    column, row = index % 64, index // 64
    assert style["position"] == f"{-column * 112}px {-row * 112}px".replace("-0px", "0px")
    # The sprite sheet behind the tile is a decoded image with pixels.
    natural = page.evaluate("() => { const image = window.__latentmap.atlas.images.get(0); return image ? image.naturalWidth : 0; }")
    assert natural == 64 * 32
    # The card's label is the point's true label, as text.
    labels = page.evaluate("index => window.__latentmap.map.points.label[index]", index)
    assert page.locator("#hover-card [data-fact='label']").inner_text() == str(labels)
    page.mouse.move(5, 300)
    card.wait_for(state="hidden")


def test_click_shows_image_and_clickable_neighbours(server, page, trained_run):
    open_run(page, server, trained_run["run_id"])
    index, position = hover_target(page)
    rest_on(page, index, position)
    page.mouse.click(position["x"], position["y"])
    detail = page.locator("#point-detail")
    detail.wait_for(state="visible")
    assert detail.get_attribute("data-index") == str(index)
    assert f"point={index}" in page.url
    page.wait_for_selector("#point-neighbors[data-state='ready']")
    neighbours = page.locator("#point-neighbors .neighbor")
    assert neighbours.count() == 12
    page.wait_for_function("document.querySelector('#point-image').complete && document.querySelector('#point-image').naturalWidth > 0")
    assert "/api/datasets/digits/images/" in page.locator("#point-image").get_attribute("src")
    # The neighbours are the server's, nearest first, none of them the point itself.
    expected = server.get(f"/api/runs/{trained_run['run_id']}/neighbors/{index}?k=12")["neighbors"]
    shown = [int(value) for value in neighbours.evaluate_all("nodes => nodes.map(n => n.dataset.index)")]
    assert shown == [item["index"] for item in expected]
    assert index not in shown
    screenshot(page, "run-point-panel")
    # Clicking a neighbour makes it the selected point.
    first = shown[0]
    neighbours.first.click()
    page.wait_for_function(f"document.querySelector('#point-detail').dataset.index === '{first}'")
    page.wait_for_selector("#point-neighbors[data-state='ready']")
    assert f"point={first}" in page.url


def test_box_selection_fills_the_grid_and_downloads_csv(server, page, trained_run):
    open_run(page, server, trained_run["run_id"])
    page.click("[data-role='modes'] button[data-mode='select']")
    box = page.locator("#map").bounding_box()
    left, top = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    right, bottom = box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.7
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move((left + right) / 2, (top + bottom) / 2, steps=5)
    page.mouse.move(right, bottom, steps=5)
    page.mouse.up()
    panel = page.locator("#panel-selection [data-role='selection']")
    panel.wait_for(state="visible")
    # The points inside the box, computed here from their screen positions, are the ones listed.
    inside = page.evaluate("""([l, t, r, b]) => {
        const map = window.__latentmap.map; const found = [];
        for (let i = 0; i < map.points.n; i += 1) {
            const p = map.screenPosition(i);
            if (p && p.x >= l && p.x <= r && p.y >= t && p.y <= b) found.push(i);
        }
        return found.length;
    }""", [left, top, right, bottom])
    assert inside > 0
    title = panel.locator("[data-role='selection-title']").inner_text()
    selected = int(title.split()[0].replace(",", ""))
    assert abs(selected - inside) <= max(2, inside // 50)  # edge points may round either way
    tiles = panel.locator("[data-role='selection-grid'] .tile")
    assert tiles.count() == min(selected, 240)
    assert panel.locator("[data-role='counts-label'] tbody tr").count() >= 1
    label_total = sum(int(cell.replace(",", "")) for cell in panel.locator("[data-role='counts-label'] tbody td.num:not(.muted)").all_inner_texts())
    assert label_total == selected or panel.locator("[data-role='counts-label'] tbody tr").count() > 12
    screenshot(page, "run-selection")
    with page.expect_download() as download_info:
        panel.locator("[data-role='selection-csv']").click()
    rows = list(csv.reader(io.StringIO(download_info.value.path().read_text())))
    assert rows[0][:5] == ["index", "x", "y", "label", "label_name"]
    assert len(rows) == selected + 1
    assert all(0 <= int(row[0]) < 1797 for row in rows[1:])


def test_new_clustering_from_the_page_appears_in_the_picker(server, page, trained_run):
    open_run(page, server, trained_run["run_id"])
    page.click("#new-analysis-button")
    page.check("#analysis-panel input[value='clustering']")
    page.select_option("#analysis-method", "kmeans")
    page.fill("#analysis-n_clusters", "1")
    page.click("#analysis-submit")
    assert page.locator('#analysis-params [data-field="n_clusters"] .field-error').inner_text() == "must be ≥ 2"
    before = len(server.get(f"/api/runs/{trained_run['run_id']}")["clusterings"])
    assert before >= 1
    page.fill("#analysis-n_clusters", "4")
    page.click("#analysis-submit")
    page.locator("#analysis-panel").wait_for(state="hidden")
    # It shows up in the picker, gets selected and colours the map once finished.
    page.wait_for_function("new URLSearchParams(location.search).get('color') === 'cluster'", timeout=120_000)
    run = server.get(f"/api/runs/{trained_run['run_id']}")
    assert len(run["clusterings"]) == before + 1
    newest = run["clusterings"][-1]
    assert newest["params"]["n_clusters"] == 4 and newest["status"] == "succeeded"
    page.wait_for_function(f"window.__latentmap.map.points.clustering.id === '{newest['id']}'")
    assert page.locator("#clustering-select").input_value() == newest["id"]
    assert f"clustering={newest['id']}" in page.url
    assert page.evaluate("() => new Set(window.__latentmap.map.points.cluster).size") == 4


def test_a_scan_clustering_from_the_page(server, page, trained_run):
    open_run(page, server, trained_run["run_id"])
    page.click("#new-analysis-button")
    page.check("#analysis-panel input[value='clustering']")
    page.select_option("#analysis-method", "scan")
    for name in ("n_clusters", "n_neighbors", "entropy_weight", "epochs", "heads"):
        assert page.locator(f"#analysis-{name}").is_visible()
    page.fill("#analysis-entropy_weight", "-1")
    page.click("#analysis-submit")
    assert page.locator('#analysis-params [data-field="entropy_weight"] .field-error').inner_text() == "must be ≥ 0"
    page.fill("#analysis-entropy_weight", "")
    page.fill("#analysis-epochs", "5")
    screenshot(page, "run-scan-form")
    page.click("#analysis-submit")
    page.locator("#analysis-panel").wait_for(state="hidden")
    page.wait_for_function("new URLSearchParams(location.search).get('color') === 'cluster'", timeout=120_000)
    newest = server.get(f"/api/runs/{trained_run['run_id']}")["clusterings"][-1]
    assert newest["method"] == "scan" and newest["status"] == "succeeded" and newest["params"]["epochs"] == 5
    page.wait_for_function(f"window.__latentmap.map.points.clustering.id === '{newest['id']}'")
    assert page.locator("#clustering-select").input_value() == newest["id"]


def test_view_state_survives_a_reload(server, page, trained_run):
    run = server.get(f"/api/runs/{trained_run['run_id']}")
    projection = trained_run["projection"]
    clustering = run["clusterings"][0]["id"]
    open_run(page, server, trained_run["run_id"], f"?projection={projection}&clustering={clustering}&color=value:knn_agreement&point=7")
    for _ in range(2):
        assert page.locator("#projection-select").input_value() == projection
        assert page.locator("#clustering-select").input_value() == clustering
        assert page.locator("#color-select").input_value() == "value:knn_agreement"
        page.locator("#point-detail").wait_for(state="visible")
        assert page.locator("#point-detail").get_attribute("data-index") == "7"
        page.reload()
        wait_for_map(page)
    # Changing the colouring rewrites the URL, and that too survives a reload.
    page.select_option("#color-select", "label")
    assert "color=label" in page.url
    page.reload()
    wait_for_map(page)
    assert page.locator("#color-select").input_value() == "label"
    assert page.locator("#point-detail").get_attribute("data-index") == "7"


def test_run_page_on_a_full_hd_screen(server, browser, trained_run):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        open_run(page, server, trained_run["run_id"], "?point=12")
        page.locator("#point-detail").wait_for(state="visible")
        map_box = page.locator("#map").bounding_box()
        sidebar = page.locator(".sidebar").bounding_box()
        # The map and the side panel sit next to each other and fit the window without scrolling.
        assert map_box["width"] > 1200 and map_box["height"] > 700
        assert sidebar["x"] >= map_box["x"] + map_box["width"]
        assert map_box["y"] + map_box["height"] <= 1080
        screenshot(page, "run-map-1920")
    finally:
        context.close()


def test_unknown_run_says_so(server, page):
    page.goto(server.url + "/runs/rnothere")
    page.locator("#run-error").wait_for(state="visible")
    assert "no run rnothere" in page.locator("#run-error").inner_text()
