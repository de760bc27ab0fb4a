"""Exposure rules: the token on state-changing requests, the login cookie, protected reads, the
loopback default of `latentmap serve`, and no file outside the data directory through any route."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.cli import is_loopback, main as cli_main
from app.main import create_app
from app.security import COOKIE_NAME, session_value, token_matches
from app.settings import Settings, get_settings

TOKEN = "t0k3n-for-tests-0123456789"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _client(tmp_path: Path, **settings: object) -> TestClient:
    app = create_app(Settings(data_dir=tmp_path / "data", warm_up=False, workers=1, **settings))
    return TestClient(app)


def _png_zip(classes: dict[str, int]) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, count in classes.items():
            for i in range(count):
                image = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(image, format="PNG")
                archive.writestr(f"{name}/{i}.png", image.getvalue())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory):
    with _client(tmp_path_factory.mktemp("guarded"), token=TOKEN) as client:
        yield client


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory):
    """A server without a token (the default)."""
    with _client(tmp_path_factory.mktemp("open")) as client:
        yield client


@pytest.fixture
def guarded(guarded_server: TestClient):
    guarded_server.cookies.clear()
    yield guarded_server
    guarded_server.cookies.clear()


def _state_changing_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the API that changes state (from its OpenAPI schema), parameters filled in."""
    found = []
    for path, operations in client.app.openapi()["paths"].items():
        for method in operations:
            if method.upper() in STATE_CHANGING:
                concrete = path.replace("{index}", "0")
                while "{" in concrete:
                    start = concrete.index("{")
                    concrete = concrete[:start] + "x1" + concrete[concrete.index("}") + 1:]
                found.append((method.upper(), concrete))
    return found


def test_every_state_changing_route_needs_the_token(guarded: TestClient) -> None:
    routes = _state_changing_routes(guarded)
    # train, project, cluster, upload, cancel, resume, delete are all among them
    paths = {path for _, path in routes}
    for expected in ("/api/runs", "/api/datasets", "/api/jobs/x1/cancel", "/api/jobs/x1/resume",
                     "/api/runs/x1/projections", "/api/runs/x1/clusterings"):
        assert expected in paths
    assert ("DELETE", "/api/runs/x1") in routes
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Cookie": f"{COOKIE_NAME}={TOKEN}"}):
            response = guarded.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert "LATENTMAP_TOKEN" in response.json()["detail"]
            assert response.headers["www-authenticate"].startswith("Bearer")
        # with the token the request reaches the route (which answers about the input, not about auth)
        response = guarded.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, json={})
        assert response.status_code in (404, 409, 422), (method, path, response.status_code, response.text)


def test_a_refused_request_changes_nothing(guarded: TestClient) -> None:
    response = guarded.post("/api/datasets", files={"file": ("a.zip", _png_zip({"a": 2, "b": 2}))}, data={"name": "sneaky"})
    assert response.status_code == 401
    uploads = guarded.app.dependency_overrides[get_settings]().uploads_dir
    assert not (uploads / "sneaky").exists()
    assert all(item["name"] != "sneaky" for item in guarded.get("/api/datasets").json())
    response = guarded.post("/api/datasets", files={"file": ("a.zip", _png_zip({"a": 2, "b": 2}))}, data={"name": "allowed"},
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201, response.text


def test_reads_stay_open_by_default(guarded: TestClient) -> None:
    assert guarded.get("/api/runs").status_code == 200
    assert guarded.get("/api/health").status_code == 200
    assert guarded.get("/", headers={"Accept": "text/html"}).status_code == 200


def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(guarded: TestClient) -> None:
    page = guarded.get("/login?next=/runs/abc")
    assert page.status_code == 200 and 'name="token"' in page.text and 'value="/runs/abc"' in page.text
    wrong = guarded.post("/login", data={"token": "nope", "next": "/"}, follow_redirects=False)
    assert wrong.status_code == 401 and COOKIE_NAME not in wrong.headers.get("set-cookie", "")
    right = guarded.post("/login", data={"token": TOKEN, "next": "/runs/abc"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/runs/abc"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert TOKEN not in cookie and session_value(TOKEN) in cookie
    # the client now sends the cookie: a state change reaches the route
    assert guarded.post("/api/runs", json={"dataset": "nope", "method": "ae"}).status_code == 422
    guarded.post("/logout", follow_redirects=False)
    guarded.cookies.clear()
    assert guarded.post("/api/runs", json={"dataset": "nope", "method": "ae"}).status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil.example"])
def test_login_never_redirects_off_site(guarded: TestClient, target: str) -> None:
    response = guarded.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_protected_reads(tmp_path: Path) -> None:
    with _client(tmp_path, token=TOKEN, protect_reads=True) as client:
        response = client.get("/api/runs")
        assert response.status_code == 401 and "be read" in response.json()["detail"]
        page = client.get("/runs/r1?x=1", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fruns%2Fr1%3Fx%3D1"
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/login").status_code == 200  # the way in stays open
        assert client.get("/static/css/app.css").status_code == 200
        assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_no_token_means_no_checks(open_server: TestClient) -> None:
    assert open_server.post("/api/runs", json={"dataset": "nope", "method": "ae"}).status_code == 422


def test_token_comparison() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN) and not token_matches(TOKEN + "0", TOKEN)
    assert not token_matches(None, TOKEN) and not token_matches("", TOKEN)


# ----- latentmap serve ---------------------------------------------------------------------------
def test_serve_binds_loopback_by_default() -> None:
    assert Settings().host == "127.0.0.1"


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("[::1]", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
                                           ("192.168.1.5", False), ("example.org", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_serve_on_an_outside_address_without_a_token_refuses(host: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("LATENTMAP_TOKEN", raising=False)
    assert cli_main(["serve", "--host", host, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "LATENTMAP_TOKEN" in err and "--insecure" in err and host in err
    assert not (tmp_path / "latentmap.sqlite3").exists()  # it never started


# ----- no file outside the data directory ---------------------------------------------------------
TRAVERSALS = ["..", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%5C..%5Cwindows",
              "%2Fetc%2Fpasswd", "folder:%2Fetc", "folder:..%2F..", "digits%00", "....%2F%2F....%2F%2Fetc"]


def test_image_and_artifact_routes_never_leave_the_data_directory(tmp_path: Path) -> None:
    secret = "latentmap-secret-outside-the-data-dir"
    (tmp_path / "outside.txt").write_text(secret)
    (tmp_path / "outside").mkdir()
    with _client(tmp_path) as client:
        urls = []
        for bad in TRAVERSALS:
            urls += [f"/api/datasets/{bad}", f"/api/datasets/{bad}/images/0", f"/api/datasets/{bad}/atlas",
                     f"/api/runs/{bad}", f"/api/runs/{bad}/points", f"/api/runs/{bad}/neighbors/0",
                     f"/api/runs/{bad}/reconstructions", f"/api/runs/{bad}/compare?a={bad}&b={bad}",
                     f"/api/jobs/{bad}", f"/api/runs/x/points?projection={bad}&clustering={bad}",
                     f"/static/{bad}/x", "/static/..%2F..%2Fapp%2Fsettings.py"]
        urls += ["/api/datasets/digits/images/-1", "/api/datasets/digits/images/1797", "/api/datasets/digits/images/99999999999999999999",
                 "/api/datasets/digits/atlas?page=-1", "/api/datasets/digits/atlas?page=999", "/static/%2e%2e/%2e%2e/etc/passwd"]
        for url in urls:
            response = client.get(url)
            assert response.status_code in (404, 405, 409, 422), (url, response.status_code)
            assert secret not in response.text and "root:x:0:0" not in response.text, url
        # an upload name cannot place a dataset outside datasets/
        for name in ("../outside", "..", "a/../../outside", "/tmp/x", "x\x00y"):
            response = client.post("/api/datasets", files={"file": ("a.zip", _png_zip({"a": 2, "b": 2}))}, data={"name": name})
            assert response.status_code == 422, (name, response.status_code)
        assert sorted(os.listdir(tmp_path / "outside")) == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "outside", "outside.txt"]


# ----- cross-site requests ------------------------------------------------------------------------
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "http://testserver.evil.example"])
def test_cross_site_state_changes_are_refused_even_without_a_token(open_server: TestClient, origin: str) -> None:
    # a form post (multipart: no CORS preflight) from another site's page cannot upload
    response = open_server.post("/api/datasets", files={"file": ("a.zip", _png_zip({"a": 2, "b": 2}))},
                                data={"name": "csrf"}, headers={"Origin": origin})
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]
    response = open_server.post("/api/runs", json={"dataset": "digits", "method": "ae"}, headers={"Origin": origin})
    assert response.status_code == 403
    assert all(item["name"] != "csrf" for item in open_server.get("/api/datasets").json())
    assert open_server.get("/api/runs", headers={"Origin": origin}).status_code == 200  # reads change nothing


def test_same_site_and_originless_requests_pass(open_server: TestClient) -> None:
    # the dashboard's own fetches carry Origin = this server; curl and the CLI send none
    for headers in ({"Origin": "http://testserver"}, {}):
        response = open_server.post("/api/runs", json={"dataset": "nope", "method": "ae"}, headers=headers)
        assert response.status_code == 422, response.text


# ----- the login page in a real browser against a real server --------------------------------------
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_browser_login_sets_a_cookie_scripts_cannot_read(tmp_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    playwright_api = pytest.importorskip("playwright.sync_api")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "LATENTMAP_TOKEN": TOKEN, "LATENTMAP_WARM_UP": "false"}
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--data-dir", str(tmp_path / "data"),
                               "--port", str(port)], cwd=Path(__file__).resolve().parents[2], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(base + "/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        # `latentmap serve` on 127.0.0.1 answers only to loopback names (DNS rebinding)
        assert httpx.get(base + "/api/health", headers={"Host": "evil.example"}).status_code == 400
        assert httpx.get(base + "/api/health", headers={"Host": f"localhost:{port}"}).status_code == 200
        post = "(body) => fetch('/api/runs', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)}).then(async (r) => [r.status, await r.text()])"
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            try:
                page = browser.new_page()
                page.goto(base + "/")
                status, text = page.evaluate(post, {"dataset": "nope", "method": "ae"})
                assert status == 401 and "/login" in text
                page.goto(base + "/login?next=/runs/r1")
                page.fill("input[name=token]", "wrong")
                page.click("button[type=submit]")
                assert "not this server's token" in page.inner_text("main")
                page.fill("input[name=token]", TOKEN)
                page.click("button[type=submit]")
                page.wait_for_url(base + "/runs/r1")
                [cookie] = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != TOKEN
                assert COOKIE_NAME not in page.evaluate("document.cookie")  # scripts cannot read it
                status, text = page.evaluate(post, {"dataset": "nope", "method": "ae"})
                assert status == 422 and "nope" in text  # past the guard: the route judged the input
            finally:
                browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()


# ----- DNS rebinding -------------------------------------------------------------------------------
def test_only_allowed_host_names_are_answered(tmp_path: Path) -> None:
    with _client(tmp_path, allowed_hosts=["127.0.0.1", "localhost", "::1"]) as client:
        for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.1"):
            assert client.get("/api/runs", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example:8000", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example:8000", ""):
            response = client.get("/api/runs", headers={"Host": host})
            assert response.status_code == 400, host
            assert "LATENTMAP_ALLOWED_HOSTS" in response.json()["detail"]
        response = client.post("/api/runs", json={"dataset": "digits", "method": "ae"},
                               headers={"Host": "evil.example:8000", "Origin": "http://evil.example:8000"})
        assert response.status_code == 400  # a rebound page is same-origin with itself: its Host gives it away
