"""Compare page: two linked maps, the contingency heatmap (a click shows the cell's points on both
maps and their images) and the agreement scores."""
from __future__ import annotations

from typing import Any

import pytest
from e2e_support import screenshot


@pytest.fixture(scope="module")
def two_clusterings(server, trained_run) -> tuple[str, str]:
    """The run's default k-means plus an agglomerative clustering with 6 clusters (made here through the API)."""
    run_id = trained_run["run_id"]
    first = server.get(f"/api/runs/{run_id}")["clusterings"][0]["id"]
    created = server.post(f"/api/runs/{run_id}/clusterings", {"method": "agglomerative", "params": {"n_clusters": 6}})
    second = created["clustering_id"]

    def finished() -> bool:
        items = {item["id"]: item for item in server.get(f"/api/runs/{run_id}")["clusterings"]}
        assert items[second]["status"] in ("queued", "running", "succeeded"), items[second]
        return items[second]["status"] == "succeeded"

    server.wait_for(finished, 120, "the agglomerative clustering")
    return first, second


def open_compare(page: Any, server: Any, run_id: str, a: str, b: str) -> None:
    page.goto(f"{server.url}/runs/{run_id}/compare?a={a}&b={b}")
    page.wait_for_function("(window.__latentmap.drawn || 0) >= 2 && document.querySelector('#heatmap').dataset.ready === '1'",
                           timeout=60_000)


def test_compare_page_shows_two_maps_heatmap_and_scores(server, page, trained_run, two_clusterings):
    run_id = trained_run["run_id"]
    a, b = two_clusterings
    open_compare(page, server, run_id, a, b)
    expected = server.get(f"/api/runs/{run_id}/compare?a={a}&b={b}")

    assert page.locator("#map-a canvas").count() >= 1 and page.locator("#map-b canvas").count() >= 1
    assert page.locator("#pick-a").input_value() == a and page.locator("#pick-b").input_value() == b
    scores = page.locator("#compare-scores").inner_text()
    assert f"{expected['ari']:.3f}" in scores and f"{expected['nmi']:.3f}" in scores
    assert f"{100 * expected['accuracy']:.1f}%" in scores
    assert "A vs labels" in scores and "B vs labels" in scores
    # The heatmap is the contingency matrix: one row per A cluster, one column per B cluster, same total.
    matrix = page.evaluate("() => document.querySelector('#heatmap').data[0].z")
    assert len(matrix) == len(expected["a_ids"]) and len(matrix[0]) == len(expected["b_ids"]) == 6
    assert sum(map(sum, matrix)) == 1797
    screenshot(page, "compare")


def test_heatmap_cell_highlights_points_in_both_maps(server, page, trained_run, two_clusterings):
    a, b = two_clusterings
    open_compare(page, server, trained_run["run_id"], a, b)
    # Click the fullest cell, at its centre on screen.
    page.locator("#heatmap").scroll_into_view_if_needed()
    cell = page.evaluate("""() => {
        const gd = document.querySelector('#heatmap');
        const z = gd.data[0].z; let best = [0, 0];
        z.forEach((row, i) => row.forEach((v, j) => { if (v > z[best[0]][best[1]]) best = [i, j]; }));
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
        const [i, j] = best;
        return {count: z[i][j], x: box.left + xa._offset + xa.d2p(gd.data[0].x[j]), y: box.top + ya._offset + ya.d2p(gd.data[0].y[i])};
    }""")
    page.mouse.move(cell["x"], cell["y"], steps=2)
    page.mouse.click(cell["x"], cell["y"])
    panel = page.locator("#cell-card [data-role='selection']")
    panel.wait_for(state="visible")
    assert f"{cell['count']:,} points" in panel.locator("[data-role='selection-title']").inner_text()
    assert panel.locator("[data-role='selection-grid'] .tile").count() == min(cell["count"], 240)
    # Both maps draw the same highlighted points on top of their clusters.
    highlighted = page.evaluate("""() => ['a', 'b'].map(side => {
        const map = window.__latentmap.maps[side];
        const trace = map.container.data.find(t => t.name === 'highlighted');
        return trace ? trace.x.length : 0;
    })""")
    assert highlighted == [cell["count"], cell["count"]]
    # Every listed point lies in that cell: the same A cluster and the same B cluster.
    pairs = page.evaluate("""() => {
        const grid = [...document.querySelectorAll('#cell-card [data-role="selection-grid"] .tile')].map(t => Number(t.dataset.index));
        const maps = window.__latentmap.maps;
        return [...new Set(grid.map(i => maps.a.points.cluster[i] + ',' + maps.b.points.cluster[i]))];
    }""")
    assert len(pairs) == 1
    screenshot(page, "compare-cell")


def test_hover_on_one_map_marks_the_point_on_the_other(server, page, trained_run, two_clusterings):
    a, b = two_clusterings
    open_compare(page, server, trained_run["run_id"], a, b)
    target = page.evaluate("""() => {
        const map = window.__latentmap.maps.a;
        for (let i = 0; i < map.points.n; i += 13) { const p = map.screenPosition(i); if (p) return {index: i, x: p.x, y: p.y}; }
    }""")
    page.mouse.move(target["x"], target["y"], steps=3)
    page.locator("#hover-card").wait_for(state="visible")
    hovered = int(page.locator("#hover-card").get_attribute("data-index"))
    ring = page.locator("#map-b .linked-ring")
    ring.wait_for(state="visible")
    expected = page.evaluate("index => window.__latentmap.maps.b.screenPosition(index)", hovered)
    box = ring.bounding_box()
    assert abs(box["x"] + box["width"] / 2 - expected["x"]) <= 2
    assert abs(box["y"] + box["height"] / 2 - expected["y"]) <= 2


def test_compare_without_a_map_shows_scores_and_matrix_then_computes_the_map(tmp_path, page, fresh_server, run_trainer,
                                                                            settings_factory):
    """A run trained from the CLI has clusterings but no projection: the scores and the contingency
    need none, so they show at once; each map says it is missing and offers to compute it."""
    from app import catalog, tasks
    from app.registry import Registry

    data_dir = tmp_path / "data"
    run = run_trainer(data_dir, analyses=False)
    registry = Registry(settings_factory(data_dir).registry_path).open()
    ids = []
    for k in (10, 4):
        params = catalog.validate_clustering("kmeans", {"n_clusters": k})
        clustering_id, job = tasks.queue_clustering(registry, run.run_id, "kmeans", params, "embedding", 0, status="running")
        assert tasks.run_job(tasks.JobContext(registry=registry, job=job, data_dir=data_dir)).status == "succeeded"
        ids.append(clustering_id)
    with fresh_server(data_dir) as server:
        expected = server.get(f"/api/runs/{run.run_id}/compare?a={ids[0]}&b={ids[1]}")
        page.goto(f"{server.url}/runs/{run.run_id}/compare?a={ids[0]}&b={ids[1]}")
        page.wait_for_function("document.querySelector('#heatmap').dataset.ready === '1'", timeout=60_000)
        scores = page.locator("#compare-scores").inner_text()
        assert f"{expected['ari']:.3f}" in scores and f"{expected['nmi']:.3f}" in scores
        matrix = page.evaluate("() => document.querySelector('#heatmap').data[0].z")
        assert len(matrix) == 10 and len(matrix[0]) == 4 and sum(map(sum, matrix)) == 1797
        for side in "ab":
            assert page.locator(f"#missing-{side}").is_visible()
            assert "no finished map" in page.locator(f"#missing-{side}-text").inner_text()
        assert not page.locator("#compare-error").is_visible()
        screenshot(page, "compare-without-map")
        # Computing the map (both sides are this run: one PCA serves both) draws the two maps.
        page.locator("#missing-a-button").click()
        page.wait_for_function("(window.__latentmap.drawn || 0) >= 2", timeout=90_000)
        assert page.locator("#missing-a").is_hidden() and page.locator("#missing-b").is_hidden()
        assert [p["method"] for p in server.get(f"/api/runs/{run.run_id}")["projections"]] == ["pca"]
