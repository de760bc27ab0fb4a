"""The run page of a contrastive run: a SimCLR run on the digits draws its SSL health curves
(alignment, uniformity, std, monitor kNN) live while it trains and keeps them on the Run tab, a
collapsed embedding raises the warning banner, and the point panel shows the point's augmented
pairs; an autoencoder's point panel has none."""
from __future__ import annotations

import numpy as np
from e2e_support import ARTIFACTS, screenshot

from ml import ssl_health

EPOCHS = 60  # ~5 s of training on an idle core (~30 s beside the rest of the suite): time to watch a few epochs arrive live
POINT = 21
CHART_KEYS = ["alignment", "uniformity", "embedding_std", "monitor_knn_accuracy"]

MOUNT_PANEL = """async (rows) => {
  const { HealthPanel } = await import("/static/js/health.js");
  const root = document.createElement("div");
  root.id = "constructed-health";
  document.querySelector("#panel-run").append(root);
  new HealthPanel(root, { dim: 32, banner: document.querySelector("#health-warning") }).update(rows);
}"""


def _constructed_rows() -> list[dict]:
    """Three epochs of health from constructed embeddings: spread on the sphere, then one direction."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=256)
    spread = rng.standard_normal((256, 32))
    rows = [{"epoch": 1, **ssl_health.health_row(spread, spread + 0.1 * rng.standard_normal((256, 32)), spread, labels)}]
    same = np.tile(rng.standard_normal((1, 32)), (256, 1))
    rows += [{"epoch": epoch, **ssl_health.health_row(same, same, same, labels)} for epoch in (2, 3)]
    return rows


def test_simclr_health_curves_live_and_on_the_run_tab_and_the_collapse_warning(tmp_path, page, fresh_server):
    (tmp_path / "data").mkdir()
    # PCA as the default map: the page's map and the inspector need no UMAP, whose numba compilation
    # would take a worker's CPU for the rest of the test.
    with fresh_server(tmp_path / "data", LATENTMAP_DEFAULT_PROJECTION="pca") as server:
        run_id = server.post("/api/runs", {"dataset": "digits", "method": "simclr", "epochs": EPOCHS, "seed": 2,
                                           "method_params": {"reconstruction_weight": 30}})["run_id"]
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{server.url}/runs/{run_id}")

        # Live: the curves fill epoch by epoch from the job's progress events, beside the loss.
        page.wait_for_function("() => Number(document.querySelector('#health-live').dataset.epochs || 0) >= 3", timeout=180_000)
        assert page.locator("#training-panel").is_visible()
        live = page.locator("#health-live .health-plot")
        assert [live.nth(i).get_attribute("data-metric") for i in range(live.count())] == CHART_KEYS
        screenshot(page, "ssl-health-live")

        page.locator("#map-section").wait_for(state="visible", timeout=240_000)
        run = server.get(f"/api/runs/{run_id}")
        assert run["status"] == "succeeded" and len(run["history"]) == EPOCHS
        assert all(row["verdict"] in ("healthy", "partial", "collapsed") for row in run["history"])
        verdict = run["metrics"]["ssl_health"]["verdict"]
        assert verdict == run["history"][-1]["verdict"]
        # Trained with a reconstruction weight, the run has a decoder: the Decoder tab is offered.
        assert run["has_decoder"] is True and run["config"]["method_params"]["reconstruction_weight"] == 30
        page.locator("#tab-decoder").wait_for(state="visible")

        # The Run tab: every finished epoch, one curve per measure, and the banner only when unhealthy.
        page.click("#tab-run")
        page.wait_for_function(f"() => document.querySelector('#health-history').dataset.epochs === '{EPOCHS}'")
        plots = page.locator("#health-history .health-plot")
        assert [plots.nth(i).get_attribute("data-metric") for i in range(plots.count())] == CHART_KEYS
        assert all(plots.nth(i).get_attribute("data-points") == str(EPOCHS) for i in range(plots.count()))
        assert page.locator("#health-history .health-plot .scatterlayer .trace").count() == len(CHART_KEYS)
        assert page.locator("#health-warning").is_hidden() == (verdict == "healthy")
        screenshot(page, "ssl-health-run-tab")
        # Beside the request, what training resolved: bf16 where this CPU computes it natively, else float32.
        assert page.locator('#run-config [data-trained-with="precision"] dd').inner_text() == run["trained_with"]["precision"]
        page.locator("#health-history").screenshot(path=str(ARTIFACTS / "ssl-health-run-tab-panel.png"))

        # Embeddings that collapse onto one direction (identical vectors: std 0) raise the warning.
        page.evaluate(MOUNT_PANEL, _constructed_rows())
        banner = page.locator("#health-warning")
        banner.wait_for(state="visible")
        assert banner.get_attribute("data-verdict") == "collapsed"
        assert "collapsed" in banner.inner_text() and "1/√32" in banner.inner_text()
        page.wait_for_function("() => document.querySelector('#constructed-health').dataset.epochs === '3'")
        screenshot(page, "ssl-health-collapse-warning")

        # The augmentation inspector: a point's pairs under the run's transform, with their similarities.
        page.goto(f"{server.url}/runs/{run_id}?point={POINT}")
        page.wait_for_function(f"() => document.querySelector('#point-augmentations').dataset.state === 'ready'", timeout=120_000)
        pairs = page.locator("#point-augmentations .augment-pair")
        assert pairs.count() == 8 and page.locator("#point-augmentations").get_attribute("data-index") == str(POINT)
        page.wait_for_function("() => [...document.querySelectorAll('#point-augmentations img')].every((image) => image.complete && image.naturalWidth === 64)")
        answer = server.get(f"/api/runs/{run_id}/points/{POINT}/augmentations?pairs=8&size=64")
        shown = [pairs.nth(i).locator(".augment-similarity").inner_text() for i in range(8)]
        assert shown == [f"{pair['similarity']:.3f}" for pair in answer["pairs"]]
        assert f"#{answer['nearest']['index']}" in page.locator("#point-augmentations .augment-summary").inner_text()
        page.locator("#point-augmentations").scroll_into_view_if_needed()
        page.locator("#point-augmentations").screenshot(path=str(ARTIFACTS / "augmentation-inspector.png"))
        page.goto("about:blank")  # leave before the server stops: the page's job followers would fail on it


def test_an_autoencoders_point_panel_has_no_augmented_pairs(server, trained_run, page):
    page.goto(f"{server.url}/runs/{trained_run['run_id']}?point={POINT}")
    page.wait_for_function("() => document.querySelector('#point-augmentations').dataset.state === 'absent'")
    assert page.locator("#point-augmentations").is_hidden()
    page.locator("#point-neighbors .neighbor").first.wait_for()  # the neighbours arrive after the panel opens
    assert page.locator("#point-neighbors .neighbor").count() > 0
