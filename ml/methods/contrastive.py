"""The contrastive base shared by SimCLR, MoCo and BYOL.

What the three have in common lives here once: the two-view batched augmentation, the encoder
and its projection head, the momentum (EMA) copies some of them keep, the optional decoder that
rebuilds each image from its first view's embedding (`reconstruction_weight`), and `embed` (the
encoder output, before any head). A method adds only its loss on the views' encoder outputs
(`contrastive_loss`) and the networks that are its own.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ml.augment import MultiViewTransform, simclr_augmentation
from ml.methods.base import ImageShape, Method
from ml.models.decoders import build_decoder
from ml.models.ema import ema_update, momentum_copy
from ml.models.encoders import build_encoder
from ml.models.heads import ProjectionHead
from ml.models.sizing import is_grey_28, resolve_encoder


class ContrastiveMethod(Method):
    """encoder → head on two augmented views of each batch; `embed` is the encoder alone.

    With `reconstruction_weight` > 0 a decoder rebuilds each clean image from its first view's
    embedding, and that weight × the pixel MSE joins the loss: the embedding must keep what the
    views of an image share, not only what tells it apart from the other images in the batch.

    A subclass implements `contrastive_loss(views, features)`, sets the head's shape (`head_hidden`,
    `head_output`, `head_batch_norm`) and calls `keep_momentum_copy(name)` for each network that
    needs an EMA twin (e.g. the key encoder);
    `after_step` then moves every twin towards its network with `momentum_at(step, total_steps)`.
    """

    head_hidden: ClassVar[int] = 256
    head_output: ClassVar[int] = 64
    head_batch_norm: ClassVar[bool] = True

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.encoder_name = resolve_encoder(encoder, image_shape, self.spec.grey_28_encoder)
        # Batch norm in the conv net, as in the ResNets these methods were made with: on Fashion-MNIST
        # it raised SimCLR's validation kNN-5 from 0.833 to 0.839 at 750 steps (bench/bench_recipe.py).
        # Only for grey 28 px images, where the conv net is new: colour runs trained before keep
        # loading into the conv net they were trained with.
        self.encoder = build_encoder(self.encoder_name, image_shape, embedding_dim, conv_batch_norm=is_grey_28(image_shape))
        self.head = ProjectionHead(embedding_dim, self.head_hidden, self.head_output, batch_norm=self.head_batch_norm)
        # Only colour images are mirrored. Small grey images are as often characters (2 ↔ 5-ish, 3 ↔ ε) as
        # clothes, and nothing tells them apart: on a folder of the digits at 28 px the views without flips
        # raised kNN-5 from 0.949 / 0.951 / 0.862 to 0.969 / 0.979 / 0.935 (simclr / moco / byol, mean of 3 seeds).
        view = simclr_augmentation(image_shape, self.hyper["augmentation_strength"], horizontal_flip=image_shape[0] == 3)
        self.views = MultiViewTransform([view, view])
        self.decoder = build_decoder(self.encoder_name, image_shape, embedding_dim) if self.hyper["reconstruction_weight"] > 0 else None
        self._momentum_pairs: list[tuple[str, str]] = []  # (network, its EMA twin), by attribute name

    def keep_momentum_copy(self, name: str) -> nn.Module:
        """Register `momentum_<name>`, an EMA twin of network `name` that gets no gradients; returns it."""
        twin_name = f"momentum_{name}"
        setattr(self, twin_name, momentum_copy(getattr(self, name)))
        self._momentum_pairs.append((name, twin_name))
        return getattr(self, twin_name)

    def two_views(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) → both views stacked (2B, C, H, W): view a in rows :B, view b in B:."""
        return torch.cat(self.views(images))

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        views = self.two_views(images)
        features = self.encoder(views)  # (2B, d): view a's embeddings in rows :B, view b's in B:
        loss = self.contrastive_loss(views, features)
        if self.decoder is not None:
            rebuilt = self.decoder(features[: len(images)]).float()  # the pixels in float32, as the autoencoders' loss
            loss = loss + self.hyper["reconstruction_weight"] * F.mse_loss(rebuilt, images)
        return loss

    def contrastive_loss(self, views: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The method's own loss on both views (2B, C, H, W) and their online encoder outputs (2B, d)."""
        raise NotImplementedError

    @torch.no_grad()
    def project_momentum(self, views: torch.Tensor) -> torch.Tensor:
        """views (N, C, H, W) → projections (N, head_output) through the EMA twins of encoder and head."""
        return self.momentum_head(self.momentum_encoder(views))

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The EMA momentum after optimiser step `step` of `total_steps` (constant unless a method schedules it)."""
        return self.hyper["momentum"]

    def after_step(self, step: int, total_steps: int) -> None:
        if not self._momentum_pairs:
            return
        momentum = self.momentum_at(step, total_steps)
        for name, twin_name in self._momentum_pairs:
            ema_update(getattr(self, twin_name), getattr(self, name), momentum)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor | None:
        return None if self.decoder is None else self.decoder(self.encoder(images))

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # Runs trained before the contrastive methods had a decoder saved none: they load without one.
        if self.decoder is not None and not any(key.startswith("decoder.") for key in state_dict):
            self.decoder = None
        return super().load_state_dict(state_dict, strict, assign)
