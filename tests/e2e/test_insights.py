"""The run page's insights (issue 13): where the map distorts, where a point's true neighbours sit,
which clusters are stable, what the decoder draws, and how the map formed over training."""
from __future__ import annotations

from typing import Any

from e2e_support import screenshot, wait_for_map


def open_run(page: Any, server: Any, run_id: str, query: str = "") -> None:
    page.goto(f"{server.url}/runs/{run_id}{query}")
    wait_for_map(page, timeout=60_000)


def test_colour_by_distortion_and_the_scorecard_mean(server, page, trained_run):
    run_id, projection = trained_run["run_id"], trained_run["projection"]
    open_run(page, server, run_id, f"?projection={projection}&color=value:neighbourhood_preservation")
    assert page.locator("#color-select").input_value() == "value:neighbourhood_preservation"
    drawn = page.evaluate("""() => {
        const trace = document.querySelector('#map').data[0];
        return {n: trace.marker.color.length, low: Math.min(...trace.marker.color), high: Math.max(...trace.marker.color),
                scale: trace.marker.showscale};
    }""")
    assert drawn["n"] == 1797 and drawn["scale"] is True
    assert 0.0 <= drawn["low"] < drawn["high"] <= 1.0
    mean = next(p for p in server.get(f"/api/runs/{run_id}")["projections"] if p["id"] == projection)["metrics"]["neighbourhood_preservation"]
    assert f"{100 * mean:.1f}%" in page.locator("#scorecard").inner_text()
    screenshot(page, "insight-distortion")


def test_a_clicked_point_marks_its_true_neighbours_on_the_map(server, page, trained_run):
    run_id, projection = trained_run["run_id"], trained_run["projection"]
    open_run(page, server, run_id, f"?projection={projection}&point=5")
    page.locator("#point-neighbors[data-state='ready']").wait_for()
    neighbours = server.get(f"/api/runs/{run_id}/neighbors/5?k=12")["neighbors"]
    page.wait_for_function("document.querySelector('#map').data.some(t => t.name === 'true neighbours')")
    rings = page.evaluate("""() => {
        const trace = document.querySelector('#map').data.find(t => t.name === 'true neighbours');
        return {x: Array.from(trace.x), y: Array.from(trace.y)};
    }""")
    points = page.evaluate("() => ({x: Array.from(window.__latentmap.map.points.x), y: Array.from(window.__latentmap.map.points.y)})")
    expected = [(points["x"][n["index"]], points["y"][n["index"]]) for n in neighbours]
    assert sorted(zip(rings["x"], rings["y"])) == sorted(expected)
    screenshot(page, "insight-true-neighbours")
    page.click("#point-close")
    page.wait_for_function("!document.querySelector('#map').data.some(t => t.name === 'true neighbours')")


def test_check_stability_colours_by_stability_and_names_it_in_the_legend(server, page, trained_run):
    run_id, projection = trained_run["run_id"], trained_run["projection"]
    clustering = server.get(f"/api/runs/{run_id}")["clusterings"][0]["id"]
    open_run(page, server, run_id, f"?projection={projection}&clustering={clustering}&color=cluster")
    button = page.locator("#stability-button")
    button.wait_for(state="visible")
    button.click()
    page.wait_for_function("document.querySelector('#color-select').value === 'value:stability'", timeout=120_000)
    stability = next(c for c in server.get(f"/api/runs/{run_id}")["clusterings"] if c["id"] == clustering)["stability"]
    assert stability["repeats"] == 10 and 0.0 <= stability["mean_ari"] <= 1.0
    assert f"ARI {stability['mean_ari']:.2f}" in page.locator("#scorecard").inner_text()
    assert button.is_hidden()
    screenshot(page, "insight-stability")
    page.select_option("#color-select", "cluster")
    names = page.evaluate("() => document.querySelector('#map').data.filter(t => t.showlegend).map(t => t.name)")
    for code, share in stability["per_cluster"].items():
        if code != "-1":
            assert any(name.startswith(f"cluster {code} · stable {round(100 * share)}%") for name in names), (code, names)
