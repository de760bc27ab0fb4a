"""Encoders sized to the input: an MLP for grey images up to 28×28 px (the contrastive methods take
the small conv net with batch norm there), a small conv net for colour 32 px images and larger, ResNet-18.

Every encoder maps float images (B, C, H, W) in [0, 1] to embeddings (B, embedding_dim). The
wide MLP for 28 px images uses batch normalisation in training; in eval mode it uses running
statistics, so embeddings never depend on batching. `per_sample=True` builds an encoder without
batch normalisation, for the contractive penalty, which needs exact per-sample Jacobians.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models import resnet18

from ml.models.conv_layers import FeatureMapLinear, Float32WeightGradConv2d, TapConv2d
from ml.models.sizing import ImageShape, is_small, mlp_hidden, resolve_encoder


class MLPEncoder(nn.Module):
    """Flatten → hidden layers (Linear → [BatchNorm] → GELU) → embedding.

    For grey images up to 28×28 px: on Fashion-MNIST a 784-1024-512-32 MLP with batch norm
    trained as a denoising autoencoder reaches a higher kNN accuracy in the same CPU minutes than
    the conv encoder (0.864 vs 0.84 after 100 s on 10k images) — it runs 2–4× more images per
    second, and 28 px grey objects are centred and aligned, so pixel positions carry meaning.
    """

    def __init__(self, image_shape: ImageShape, embedding_dim: int, hidden: tuple[int, ...] = (256, 128), batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for size in hidden:
            layers += [nn.Linear(width, size, bias=not batch_norm), *([nn.BatchNorm1d(size)] if batch_norm else []), nn.GELU()]
            width = size
        layers.append(nn.Linear(width, embedding_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) → (B, embedding_dim)."""
        return self.net(images)


class ConvEncoder(nn.Module):
    """A small strided conv net, cheap on a CPU: 28×28 → 14 → 7 → 4, then a linear layer.

    Strided 3×3 convolutions halve the resolution at every block, so the cost is dominated by a
    handful of small matrix products; the last feature map is flattened (not pooled) so that the
    embedding keeps where things are, which matters for 28/32 px objects. Widths 16-32-64 train
    2.3× faster than 32-64-128 on a CPU (1,680 vs 720 augmented 28 px views/s on one busy core),
    which buys more epochs in the same minutes.

    batch_norm: Conv → BatchNorm → ReLU blocks (and batch norm in the hidden linear layer), for the
    contrastive methods: on Fashion-MNIST SimCLR's validation kNN-5 after 750 steps rose from 0.833
    to 0.839 with it, at ~5 % fewer images/s (bench/bench_recipe.py).

    The feature maps are channels-last (NHWC), the layout oneDNN's CPU convolutions and batch norm
    run without reordering: batch norm + ReLU forward and backward on a batch of 28 px maps took
    4.0 ms against 6.9 ms in NCHW (bf16, two cores). `FeatureMapLinear` reads the last map in that
    layout, so no copy back to NCHW is made either way.
    """

    def __init__(self, image_shape: ImageShape, embedding_dim: int, widths: tuple[int, ...] = (16, 32, 64), batch_norm: bool = False) -> None:
        super().__init__()
        channels, height, width = image_shape
        blocks: list[nn.Module] = []
        for out_channels in widths:
            convolution = TapConv2d if not blocks else Float32WeightGradConv2d  # the first reads the image's 1–3 channels
            blocks += [convolution(channels, out_channels, 3, stride=2, padding=1, bias=not batch_norm),
                       *([nn.BatchNorm2d(out_channels)] if batch_norm else []), nn.ReLU(inplace=True)]
            channels = out_channels
            height, width = (height + 1) // 2, (width + 1) // 2
        self.features = nn.Sequential(*blocks).to(memory_format=torch.channels_last)
        # Large images (image folders) are pooled down to 4×4 so the linear layer stays small. A map that
        # is already that small (28 px images) skips the pool: averaging 1×1 windows changes nothing, yet
        # its backward pass is slow on a CPU (a contrastive step on two idle cores without it: simclr
        # 3,960 → 5,320 images/s, moco 3,270 → 3,570).
        pooled = (min(height, 4), min(width, 4))
        self.pool = nn.AdaptiveAvgPool2d(pooled) if (height, width) != pooled else nn.Identity()
        self.feature_shape = (channels, *pooled)
        # Index 0 held the Flatten that FeatureMapLinear now does itself: the indices, and so the
        # checkpoints' keys (head.1.weight, ...), stay those of the runs trained before.
        self.head = nn.Sequential(nn.Identity(), FeatureMapLinear(self.feature_shape, 256, bias=not batch_norm),
                                  *([nn.BatchNorm1d(256)] if batch_norm else []), nn.ReLU(inplace=True), nn.Linear(256, embedding_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) → (B, embedding_dim)."""
        return self.head(self.pool(self.features(images)))  # TapConv2d reads any layout and writes channels-last


class ResNet18Encoder(nn.Module):
    """torchvision ResNet-18 adapted to small images (3×3 stem, no max-pool), for GPUs."""

    def __init__(self, image_shape: ImageShape, embedding_dim: int) -> None:
        super().__init__()
        channels = image_shape[0]
        backbone = resnet18(weights=None, num_classes=embedding_dim)
        # The ImageNet stem (7×7 stride 2 + max-pool) would shrink a 32 px image to 8 px at once.
        backbone.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        backbone.maxpool = nn.Identity()
        self.net = backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) → (B, embedding_dim)."""
        return self.net(images)


ENCODERS: dict[str, type[nn.Module]] = {"mlp": MLPEncoder, "conv": ConvEncoder, "resnet18": ResNet18Encoder}


def build_encoder(name: str, image_shape: ImageShape, embedding_dim: int, per_sample: bool = False, conv_batch_norm: bool = False) -> nn.Module:
    """The encoder called `name` (or chosen by `auto`) for images of `image_shape` (C, H, W).

    per_sample: no batch normalisation (the contractive penalty's per-sample Jacobians need it).
    conv_batch_norm: batch normalisation in the conv net as well (the contrastive methods ask for
    it; the autoencoders' conv net has none, as before).
    """
    name = resolve_encoder(name, image_shape)
    if name == "mlp":
        return MLPEncoder(image_shape, embedding_dim, mlp_hidden(image_shape), batch_norm=not per_sample and not is_small(image_shape))
    if name == "conv":
        return ConvEncoder(image_shape, embedding_dim, batch_norm=conv_batch_norm and not per_sample)
    return ENCODERS[name](image_shape, embedding_dim)
