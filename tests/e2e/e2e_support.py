"""Helpers shared by the e2e tests and their conftest (screenshots, waiting for a drawn map)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def screenshot(page: Any, name: str) -> Path:
    """Save a full-window screenshot under test-artifacts/ (git-ignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_for_map(page: Any, timeout: float = 180_000) -> None:
    page.wait_for_function("document.querySelector('#map') && document.querySelector('#map').dataset.drawn === '1'",
                           timeout=timeout)
