"""The torchvision download fallback for datasets that are not on disk."""
from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

# Without a timeout urllib can wait for minutes on a network that drops packets; a stalled
# download should fail soon and turn into the "not found, here is how to fix it" message.
DOWNLOAD_TIMEOUT_SECONDS = 30.0


def download_with_torchvision(class_name: str, root: Path) -> str | None:
    """Download torchvision's `datasets.<class_name>` into `root`.

    Returns None on success, else a one-line reason (any failure is caught: offline machines,
    mirrors down, checksum mismatches, a read-only root).
    """
    previous_timeout = socket.getdefaulttimeout()
    try:
        from torchvision import datasets  # imported here: torchvision is slow to import

        dataset_class = getattr(datasets, class_name)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
        # torchvision prints progress to stdout; keep stdout for the CLI's --json line.
        with contextlib.redirect_stdout(sys.stderr):
            dataset_class(root=str(root), train=True, download=True)
    except Exception as error:  # noqa: BLE001 - every failure becomes the caller's "not found" message
        return one_line(f"{type(error).__name__}: {error}")
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return None


def one_line(text: str, limit: int = 240) -> str:
    """Collapse whitespace (torchvision's errors span lines) and cut to `limit` characters."""
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"
