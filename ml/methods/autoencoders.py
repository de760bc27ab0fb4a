"""Autoencoders: plain, denoising, sparse and contractive. Loss = reconstruction MSE + a term."""
from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from ml.losses import contractive_penalty
from ml.methods import specs
from ml.methods.base import ImageShape, Method
from ml.models.decoders import build_decoder
from ml.models.encoders import build_encoder
from ml.models.sizing import resolve_encoder
from ml.params import ParamError


class Autoencoder(Method):
    """Plain autoencoder: encoder → code → decoder, trained to reproduce its input (MSE)."""

    spec = specs.AE
    per_sample = False  # True: an encoder without batch normalisation (see build_encoder)

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        self.encoder_name = resolve_encoder(encoder, image_shape)
        self.encoder = build_encoder(self.encoder_name, image_shape, embedding_dim, per_sample=self.per_sample)
        self.decoder = build_decoder(self.encoder_name, image_shape, embedding_dim)

    def corrupt(self, images: torch.Tensor) -> torch.Tensor:
        """The input the encoder sees in training (the images themselves for a plain AE)."""
        return images

    def regulariser(self, codes: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The variant's extra loss term; codes (B, d), inputs (B, C, H, W)."""
        return codes.new_zeros(())

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        inputs = self.corrupt(images)
        codes = self.encoder(inputs)
        return F.mse_loss(self.decoder(codes), images) + self.regulariser(codes, inputs)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


class DenoisingAutoencoder(Autoencoder):
    """Reconstructs clean images from copies with Gaussian pixel noise of `noise_std`."""

    spec = specs.DAE

    def corrupt(self, images: torch.Tensor) -> torch.Tensor:
        return images + torch.randn_like(images) * self.hyper["noise_std"]


class SparseAutoencoder(Autoencoder):
    """Adds `l1_weight` × mean |code| to the loss, pushing most code entries to zero."""

    spec = specs.SPARSE_AE

    def regulariser(self, codes: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self.hyper["l1_weight"] * codes.abs().mean()


class ContractiveAutoencoder(Autoencoder):
    """Adds `contractive_weight` × ‖∂code/∂input‖²_F (mean over the batch) to the loss."""

    spec = specs.CAE
    per_sample = True

    def __init__(self, image_shape: ImageShape, embedding_dim: int, encoder: str = "auto", dataset: str = "", **params: Any) -> None:
        super().__init__(image_shape, embedding_dim, encoder, dataset, **params)
        if self.encoder_name == "resnet18":
            # Batch normalisation couples the samples of a batch: there is no per-sample Jacobian.
            raise ParamError("the contractive autoencoder needs the mlp or conv encoder, not resnet18")

    # The exact Jacobian costs d backward passes per image, so the penalty is estimated on the
    # first images of each (shuffled) batch: an unbiased estimate of the batch mean at a fraction of the cost.
    penalty_images = 32

    def regulariser(self, codes: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        weight = self.hyper["contractive_weight"]
        if weight == 0:
            return codes.new_zeros(())
        return weight * contractive_penalty(self.encoder, inputs[: self.penalty_images])
