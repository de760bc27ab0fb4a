"""Real-browser tests: a real `latentmap` server on a free port with a temporary data directory,
driven by Debian's Chromium through Playwright.

One run is trained through the home page's form once per session (`trained_run`) and shared by
the run-page and compare-page tests, so the whole e2e suite stays within a couple of minutes.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest
from e2e_support import ARTIFACTS, screenshot, wait_for_map  # noqa: F401  (shared with the tests)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1366, "height": 768}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """The base URL of a running server plus a tiny JSON client for arranging and checking state."""

    def __init__(self, url: str, data_dir: Path, log: Path) -> None:
        self.url, self.data_dir, self.log = url, data_dir, log

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=120) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_for(self, predicate, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; server log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def serve(data_dir: Path, **env: str) -> Iterator[Server]:
    """`uvicorn app.main:create_app` on a free port over `data_dir`, with LATENTMAP_* overrides in `env`."""
    log = data_dir / "server.log"
    port = _free_port()
    environment = {
        **os.environ,
        "LATENTMAP_DATA_DIR": str(data_dir),
        # Two workers: the default UMAP job cannot hold up the quick PCA map and k-means
        # clustering the tests work with; no warm-up process (make install populated the cache).
        "LATENTMAP_WORKERS": "2",
        "LATENTMAP_WARM_UP": "false",
        "LATENTMAP_CANCEL_GRACE_SECONDS": "1",
        **env,
    }
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=environment, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
    instance = Server(f"http://127.0.0.1:{port}", data_dir, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{instance.log_tail()}")
            try:
                instance.get("/api/health")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer within 60 s:\n{instance.log_tail()}") from None
                time.sleep(0.25)
        instance.get("/api/methods")
        yield instance
    finally:
        # The server and its worker processes share one session: end them together.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    with serve(tmp_path_factory.mktemp("latentmap-data")) as instance:
        yield instance


@pytest.fixture(scope="session")
def server_with() -> Callable[..., Any]:
    """`with server_with(data_dir, LATENTMAP_X=...) as server:` a server of a test's own settings."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    return serve


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageErrors(list):
    """Uncaught JavaScript errors of a page; a test fails when any remain at its end."""


def _open_page(browser: Any, viewport: dict[str, int] = LAPTOP) -> tuple[Any, Any, PageErrors]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    return context, page, errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page, errors = _open_page(browser)
    yield page
    context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def trained_run(server: Server, browser: Any) -> dict[str, Any]:
    """Train a denoising autoencoder on digits (2 epochs) through the home page's form, watch it on
    the run page, then ask for a PCA map through the page's "New projection" form and wait for it.

    The server also queues its default UMAP map after training; numba compiles UMAP on first use,
    which takes minutes on a busy CPU, so once the PCA map is drawn that job is cancelled and the
    tests share the PCA map and the default k-means clustering. Returns {"run_id", "projection"}.
    """
    context, page, errors = _open_page(browser)
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#train-form[data-ready='1']")
        page.select_option("#train-dataset", "digits")
        page.select_option("#train-method", "dae")
        page.fill("#method-noise_std", "0.2")
        page.fill("#train-epochs", "2")
        page.fill("#train-seed", "3")
        page.click("#train-submit")
        page.wait_for_url("**/runs/r*", timeout=30_000)
        run_id = page.url.rstrip("/").split("/runs/")[1].split("?")[0]
        # The live panel shows while the run trains (it may already be done on a fast machine).
        page.wait_for_function("!document.querySelector('#training-panel').hidden || !document.querySelector('#map-section').hidden")
        if page.locator("#training-panel").is_visible():
            screenshot(page, "run-training")
        page.locator("#map-section").wait_for(state="visible", timeout=120_000)
        assert server.get(f"/api/runs/{run_id}")["status"] == "succeeded"

        page.click("#new-analysis-button")
        page.check("#analysis-panel input[value='projection']")
        page.select_option("#analysis-method", "pca")
        with page.expect_response(lambda response: response.url.endswith("/projections") and response.request.method == "POST") as answer:
            page.click("#analysis-submit")
        projection = answer.value.json()["projection_id"]
        page.locator(f".job-chip[data-kind='projection']").first.wait_for(timeout=10_000)
        wait_for_map(page, timeout=120_000)

        run = server.get(f"/api/runs/{run_id}")
        for item in run["projections"]:
            if item["status"] in ("queued", "running") and item["id"] != projection:
                try:
                    server.post(f"/api/jobs/{item['job_id']}/cancel", {})
                except urllib.error.HTTPError:
                    pass  # it finished in the meantime
        # The default k-means clustering reaches the page too.
        page.wait_for_function("document.querySelector('#color-select option[value=\"cluster\"]') !== null", timeout=120_000)
        server.wait_for(lambda: all(item["status"] not in ("queued", "running")
                                    for item in server.get(f"/api/runs/{run_id}")["projections"]), 30, "the UMAP job to stop")
        assert not errors, f"uncaught JavaScript errors: {errors}"
        return {"run_id": run_id, "projection": projection}
    finally:
        context.close()


@pytest.fixture
def fresh_server() -> Any:
    """`fresh_server(data_dir, **LATENTMAP_env)`: a context manager for a server of the test's own."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    return serve
