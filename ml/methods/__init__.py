"""Training methods: the torch-free declarations (`METHOD_SPECS`, from `ml.methods.specs`) and the
`nn.Module` classes that train (`METHODS`, loaded on first use).

Importing this package does not import torch: the web server reads `METHOD_SPECS` only, and
`METHODS` / `Method` import `ml.methods.registry` (and so torch) when first asked for.
"""
from __future__ import annotations

from typing import Any

from ml.methods.specs import METHOD_SPECS, MethodSpec

__all__ = ["METHODS", "METHOD_SPECS", "Method", "MethodSpec"]


def __getattr__(name: str) -> Any:
    if name in ("METHODS", "Method"):
        from ml.methods import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'ml.methods' has no attribute {name!r}")
