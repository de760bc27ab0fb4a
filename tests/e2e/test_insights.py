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


def test_timeline_computes_then_the_slider_and_play_move_the_points(server, page, trained_run):
    run_id, projection = trained_run["run_id"], trained_run["projection"]
    open_run(page, server, run_id, f"?projection={projection}")
    card = page.locator("#timeline-card")
    card.wait_for(state="visible")
    page.select_option("#timeline-method", "tsne")
    page.click("#timeline-compute")
    page.locator("#timeline-body").wait_for(state="visible", timeout=180_000)
    answer = server.get(f"/api/runs/{run_id}/timeline")
    epochs = [frame["epoch"] for frame in answer["frames"]]
    assert answer["status"] == "succeeded" and epochs == [1, 2]  # a 2-epoch run: both epochs saved
    assert card.get_attribute("data-epoch") == "2"
    first = page.evaluate("() => Array.from(window.__latentmap.timeline.view.points.x.slice(0, 5))")
    # The slider at 0 shows the first epoch's frame exactly; halfway, points sit between the two frames.
    page.locator("#timeline-slider").fill("0")
    page.wait_for_function("window.__latentmap.timeline.drawnPosition === 0")
    assert card.get_attribute("data-epoch") == "1" and "epoch 1 of 2" in page.locator("#timeline-epoch").inner_text()
    frames = page.evaluate("""() => window.__latentmap.timeline.frames.map(f => Array.from(f.x.slice(0, 5)))""")
    shown = page.evaluate("() => Array.from(window.__latentmap.timeline.view.points.x.slice(0, 5))")
    assert first == frames[1] and shown == frames[0] and frames[0] != frames[1]
    page.locator("#timeline-slider").fill("10")
    page.wait_for_function("window.__latentmap.timeline.drawnPosition === 10")
    middle = page.evaluate("() => Array.from(window.__latentmap.timeline.view.points.x.slice(0, 5))")
    for a, m, b in zip(frames[0], middle, frames[1]):
        assert abs(m - (a + b) / 2) < 1e-3
    # Play runs from the start to the last epoch and stops there.
    page.locator("#timeline-slider").fill("0")
    page.click("#timeline-play")
    assert page.locator("#timeline-play").get_attribute("aria-pressed") == "true"
    page.wait_for_function("window.__latentmap.timeline.drawnPosition === 20 && !window.__latentmap.timeline.playing", timeout=20_000)
    assert page.locator("#timeline-play").get_attribute("aria-pressed") == "false"
    card.scroll_into_view_if_needed()
    screenshot(page, "insight-timeline")


def test_decoder_tab_decodes_an_empty_spot_and_interpolates_two_points(server, page, trained_run):
    run_id, projection = trained_run["run_id"], trained_run["projection"]
    open_run(page, server, run_id, f"?projection={projection}")
    page.locator("#tab-decoder").wait_for(state="visible")
    page.click("#tab-decoder")
    # An empty spot: the screen position farthest from any point within the middle of the map.
    spot = page.evaluate("""() => {
        const map = window.__latentmap.map, gd = map.container, xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const box = gd.getBoundingClientRect(); let best = null;
        for (let px = xa._length * 0.3; px < xa._length * 0.7; px += 12) for (let py = ya._length * 0.3; py < ya._length * 0.7; py += 12) {
            let nearest = Infinity;
            for (let i = 0; i < map.points.n; i += 1) {
                const dx = xa.l2p(map.points.x[i]) - px, dy = ya.l2p(map.points.y[i]) - py;
                nearest = Math.min(nearest, dx * dx + dy * dy);
            }
            if (!best || nearest > best.d) best = {d: nearest, x: box.left + xa._offset + px, y: box.top + ya._offset + py};
        }
        return best;
    }""")
    assert spot["d"] > 16 * 16  # far enough from every point that Plotly reports no point click
    with page.expect_response(lambda response: "/decode?" in response.url) as decoded:
        page.mouse.click(spot["x"], spot["y"])
    assert decoded.value.status == 200 and decoded.value.headers["content-type"] == "image/png"
    page.locator("#decoded").wait_for(state="visible")
    assert "inverse" in page.locator("#decoded-caption").inner_text().lower()
    assert page.evaluate("() => document.querySelector('#decoded-image').naturalWidth") > 0
    assert page.locator("#point-detail").is_hidden()  # the click opened no point
    # A and B from the selected point: click point 3 on the map's data, then 40 (via the URL state).
    page.evaluate("() => window.__latentmap.map.handlers.onClick(3)")
    page.click("#tab-decoder")
    page.click("#interp-set-a")
    page.evaluate("() => window.__latentmap.map.handlers.onClick(40)")
    page.click("#tab-decoder")
    with page.expect_response(lambda response: "/interpolate?" in response.url) as strip:
        page.click("#interp-set-b")
    assert strip.value.status == 200 and "a=3" in strip.value.url and "b=40" in strip.value.url
    page.locator("#interp-strip").wait_for(state="visible")
    size = page.evaluate("() => [document.querySelector('#interp-strip').naturalWidth, document.querySelector('#interp-strip').naturalHeight]")
    assert size[0] == 8 * size[1]  # eight square images side by side
    screenshot(page, "insight-decoder")
