"""Where dataset files are looked for: the datasets directory, Debian's system datasets, torchvision's root."""
from __future__ import annotations

import os
from pathlib import Path

DATASETS_DIR_ENV = "LATENTMAP_DATASETS_DIR"
# Debian's dataset packages (e.g. `dataset-fashion-mnist`) install under /usr/share/datasets/<name>.
SYSTEM_DATASETS_DIR = Path("/usr/share/datasets")
# Where torchvision downloads go when no datasets directory is configured.
DEFAULT_TORCHVISION_ROOT = Path("~/.cache/latentmap/torchvision")


def resolve_datasets_dir(datasets_dir: Path | None) -> Path | None:
    """`datasets_dir` itself, else $LATENTMAP_DATASETS_DIR, else None (no datasets directory)."""
    if datasets_dir is not None:
        return Path(datasets_dir).expanduser()
    configured = os.environ.get(DATASETS_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else None


def torchvision_root(datasets_dir: Path | None) -> Path:
    """The `root` given to torchvision's dataset classes: <datasets_dir>/torchvision or the user cache."""
    resolved = resolve_datasets_dir(datasets_dir)
    if resolved is not None:
        return resolved / "torchvision"
    return DEFAULT_TORCHVISION_ROOT.expanduser()


def named_places(name: str, datasets_dir: Path | None) -> list[Path]:
    """The per-name places, in search order: <datasets_dir>/<name>, then /usr/share/datasets/<name>."""
    resolved = resolve_datasets_dir(datasets_dir)
    places = [resolved / name] if resolved is not None else []
    places.append(SYSTEM_DATASETS_DIR / name)
    return places
