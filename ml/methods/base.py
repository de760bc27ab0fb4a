"""The base class of every training method: an `nn.Module` that owns its networks and its loss.

A method is a small class registered in `ml.methods.registry.METHODS`, declared once by its
torch-free `MethodSpec` (`ml.methods.specs`): name, label, parameters and defaults come from
there. The training loop only calls `loss(images)` on float batches (B, C, H, W) in [0, 1],
`after_step(step, total_steps)` after each optimiser step, `embed(images)` to encode, and
`reconstruct(images)` (autoencoders) for the reconstruction sample.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ml.methods.specs import MethodSpec
from ml.models.sizing import ImageShape
from ml.params import ParamSchema

__all__ = ["ImageShape", "Method"]


class Method(nn.Module):
    """Base of all methods; a subclass sets `spec`, and its name, label, params and defaults follow."""

    spec: ClassVar[MethodSpec]
    name: ClassVar[str]
    label: ClassVar[str]
    params: ClassVar[ParamSchema]
    defaults: ClassVar[dict[str, Any]]
    small_defaults: ClassVar[dict[str, Any]]
    grey_28_defaults: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            cls.name, cls.label, cls.params = spec.name, spec.label, spec.params
            cls.defaults, cls.small_defaults, cls.grey_28_defaults = spec.defaults, spec.small_defaults, spec.grey_28_defaults

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.embedding_dim = embedding_dim
        self.hyper = self.params.validate(params)

    @classmethod
    def defaults_for(cls, image_shape: ImageShape, n_images: int) -> dict[str, Any]:
        """The training defaults suited to a dataset of `n_images` images of `image_shape` (C, H, W)."""
        return cls.spec.defaults_for(image_shape, n_images)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON description for /api/methods."""
        return cls.spec.describe()

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [0, 1] → scalar training loss."""
        raise NotImplementedError

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after optimiser step `step` (1-based) of `total_steps`: momentum (EMA) networks update here."""

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [0, 1] → embeddings (B, embedding_dim)."""
        raise NotImplementedError

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor | None:
        """images (B, C, H, W) → reconstructions (B, C, H, W) in [0, 1], or None for non-autoencoders."""
        return None
