"""A page whose API call answers 401 (the server has a token the browser has not given) offers a
"Log in" link that leads to the login page and back, instead of a bare error."""
from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import screenshot


@pytest.fixture
def guarded_server(server_with, tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with server_with(data_dir, LATENTMAP_TOKEN="open-sesame-4821") as instance:
        yield instance


def test_a_401_shows_a_log_in_link_that_comes_back(guarded_server, page) -> None:
    page.goto(guarded_server.url + "/")  # reads need no token: the page loads
    page.wait_for_selector("#train-form[data-ready='1']")
    assert page.locator("#login-needed").is_hidden()
    page.click("#train-submit")  # POST /api/runs without the token → 401
    banner = page.locator("#login-needed")
    banner.wait_for(state="visible")
    assert "needs its token" in banner.inner_text()
    assert page.locator("#login-needed-link").get_attribute("href") == "/login?next=%2F"
    screenshot(page, "login-needed")

    page.click("#login-needed-link")
    page.wait_for_url("**/login?next=%2F")
    page.fill("input[name=token]", "open-sesame-4821")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(guarded_server.url + "/")
    page.wait_for_selector("#train-form[data-ready='1']")
    assert page.locator("#login-needed").is_hidden()
