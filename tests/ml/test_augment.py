"""The view transform's recipe per image kind: grey 28 px, tiny grey (8×8 digits) and colour."""
from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2 as v2

from ml.augment import (ColourJitterBatch, RandomGaussianBlurBatch, RandomGrayscaleBatch, RandomResizedCropBatch, affine_grid,
                        simclr_augmentation)


def _kinds(transform: torch.nn.Sequential) -> list[type]:
    return [type(step) for step in transform]


def test_grey_28px_views_crop_mildly_jitter_intensity_strongly_and_get_no_blur_or_noise() -> None:
    transform = simclr_augmentation((1, 28, 28), strength=0.5)
    assert _kinds(transform) == [RandomResizedCropBatch, ColourJitterBatch]
    crop, jitter = transform
    assert crop.min_scale == 1 - 0.6 * 0.5 and crop.max_degrees == 9 * 0.5
    assert jitter.brightness == jitter.contrast == 1.6 * 0.5 and jitter.saturation == 0.0
    strongest = simclr_augmentation((1, 28, 28), strength=1.0)[1]
    assert strongest.brightness == 0.9  # never a factor of 0 or below: an image is never blacked out


def test_tiny_grey_views_are_the_transform_at_six_tenths_of_the_strength() -> None:
    transform = simclr_augmentation((1, 8, 8), strength=0.5)
    assert _kinds(transform) == [RandomResizedCropBatch, ColourJitterBatch, v2.GaussianNoise]
    crop, jitter, noise = transform
    assert crop.min_scale == 1 - 0.8 * 0.3 and crop.max_degrees == 15 * 0.3
    assert jitter.brightness == 0.4 * 0.3 and noise.sigma == 0.05 * 0.3
    torch.manual_seed(0)
    images = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    views = transform(images)
    torch.manual_seed(1)
    # The same modules, built by hand at strength 0.3, draw the same views.
    by_hand = torch.nn.Sequential(
        RandomResizedCropBatch(1 - 0.8 * 0.3, 15 * 0.3, horizontal_flip=True, max_ratio=(4 / 3) ** 0.6),
        ColourJitterBatch(0.4 * 0.3, 0.4 * 0.3),
        v2.GaussianNoise(sigma=0.05 * 0.3, clip=True),
    )
    assert torch.allclose(by_hand(images), views, atol=1e-6)


def test_colour_views_keep_saturation_grayscale_blur_and_noise() -> None:
    transform = simclr_augmentation((3, 32, 32), strength=0.5)
    assert _kinds(transform) == [RandomResizedCropBatch, ColourJitterBatch, RandomGrayscaleBatch, RandomGaussianBlurBatch, v2.GaussianNoise]
    assert transform[1].brightness == transform[1].saturation == 0.4 * 0.5
    assert transform[0].padding_mode == "reflection"


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 3, 32, 17), (2, 1, 8, 8)])
def test_the_broadcast_affine_grid_is_torchs(shape: tuple[int, int, int, int]) -> None:
    theta = torch.randn(shape[0], 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.nn.functional.affine_grid(theta, list(shape), align_corners=False)
    torch.testing.assert_close(affine_grid(theta, shape[2], shape[3]), expected)
