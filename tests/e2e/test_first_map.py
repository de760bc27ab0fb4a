"""The first map of a new run: the quick PCA map is drawn as soon as training ends, says that UMAP
is being computed ("improving"), and gives way to the UMAP map, which becomes the default view."""
from __future__ import annotations

from e2e_support import screenshot


def test_a_quick_pca_map_first_then_umap_becomes_the_default(tmp_path, browser, fresh_server):
    # One worker, so PCA, k-means and UMAP run one after the other, as on a default server.
    (tmp_path / "data").mkdir()
    with fresh_server(tmp_path / "data", LATENTMAP_WORKERS="1") as server:
        run_id = server.post("/api/runs", {"dataset": "digits", "method": "ae", "epochs": 3, "seed": 1})["run_id"]
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/runs/{run_id}")
        page.wait_for_function("() => (window.__latentmap.drawnMethods || []).includes('pca')", timeout=180_000)
        if page.evaluate("() => !(window.__latentmap.drawnMethods || []).includes('umap')"):
            screenshot(page, "first-map-pca-improving")
        page.wait_for_function("() => (window.__latentmap.drawnMethods || []).includes('umap')", timeout=240_000)
        page.wait_for_function("() => document.querySelector('#map-status').hidden")
        screenshot(page, "first-map-umap")

        assert page.evaluate("() => window.__latentmap.drawnMethods") == ["pca", "umap"]
        # While the PCA map was shown the line said a better map was coming; then it went away.
        states = page.evaluate("() => window.__latentmap.mapStates")
        assert states[:2] == ["improving", "final"] or states == ["final", "improving", "final"], states
        run = server.get(f"/api/runs/{run_id}")
        umap = next(item for item in run["projections"] if item["method"] == "umap")
        assert page.locator("#projection-select").input_value() == umap["id"]
        assert f"projection={umap['id']}" in page.url
        assert [item["method"] for item in run["projections"]] == ["pca", "umap"]
        assert all(item["status"] == "succeeded" for item in run["projections"] + run["clusterings"])
        context.close()
        assert not errors, errors
