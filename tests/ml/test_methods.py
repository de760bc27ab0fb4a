"""Methods, encoders, decoders and batched augmentations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.augment import MultiViewTransform, simclr_augmentation
from ml.datasets import ImageDataset, load_dataset
from ml.methods import METHOD_SPECS, METHODS
from ml.models.decoders import build_decoder
from ml.models.encoders import ConvEncoder, build_encoder
from ml.models.sizing import resolve_encoder
from ml.params import ParamError
from ml.training import TrainConfig, train


@pytest.fixture(scope="module")
def small_digits() -> ImageDataset:
    digits = load_dataset("digits")
    return ImageDataset(name="digits", images=digits.images[:480], labels=digits.labels[:480], class_names=digits.class_names)


def test_registry_names_and_declarations() -> None:
    assert sorted(METHODS) == ["ae", "byol", "cae", "dae", "moco", "simclr", "sparse-ae"]
    assert list(METHODS) == list(METHOD_SPECS)  # one torch-free declaration per class, in the same order
    for name, method in METHODS.items():
        assert method.spec is METHOD_SPECS[name]
        assert method.name == name and method.label
        assert set(method.defaults) == {"epochs", "lr", "batch_size", "embedding_dim", "snapshots"}
        assert set(method.defaults_for((1, 8, 8), 1797)) == set(method.defaults)
        described = method.describe()
        assert described["defaults"] == method.defaults
    assert [spec["name"] for spec in METHODS["dae"].describe()["params"]] == ["noise_std"]
    assert [spec["name"] for spec in METHODS["sparse-ae"].describe()["params"]] == ["l1_weight"]
    assert [spec["name"] for spec in METHODS["cae"].describe()["params"]] == ["contractive_weight"]
    assert [spec["name"] for spec in METHODS["simclr"].describe()["params"]] == ["temperature", "augmentation_strength", "reconstruction_weight"]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ParamError):
        METHODS["dae"]((1, 8, 8), 4, noise_std=-1.0)
    with pytest.raises(ParamError):
        METHODS["simclr"]((1, 8, 8), 4, temperature=0)
    with pytest.raises(ParamError):
        METHODS["ae"]((1, 8, 8), 4, l1_weight=0.1)
    with pytest.raises(ParamError, match="resnet18"):
        METHODS["cae"]((3, 32, 32), 4, encoder="resnet18")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_two_epochs_on_digits_and_its_loss_falls(name: str, small_digits: ImageDataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENTMAP_TORCH_THREADS", "1")
    # MoCo's loss rises while real keys replace the random ones its queue starts with: a queue of two
    # batches fills at the first step.
    params = {"queue_size": 64} if name == "moco" else {}
    config = TrainConfig(dataset="digits", method=name, epochs=2, embedding_dim=8, batch_size=32, lr=3e-3, seed=0, method_params=params)
    metrics = train(config, small_digits, tmp_path)
    history = [row["loss"] for row in metrics_history(tmp_path)]
    assert len(history) == 2 and history[1] < history[0]
    assert np.isfinite(metrics["final_loss"]) and metrics["final_loss"] == history[1]


def metrics_history(run_dir) -> list[dict]:
    import json

    return json.loads((run_dir / "history.json").read_text())


@pytest.mark.parametrize(
    ("shape", "encoder", "expected"), [((1, 8, 8), "auto", "mlp"), ((1, 28, 28), "auto", "mlp"), ((1, 28, 28), "conv", "conv"), ((1, 32, 32), "auto", "conv"), ((3, 32, 32), "auto", "conv"), ((3, 32, 32), "resnet18", "resnet18")]
)
def test_encoders_and_decoders_have_the_right_shapes(shape: tuple[int, int, int], encoder: str, expected: str) -> None:
    assert resolve_encoder(encoder, shape) == expected
    torch.manual_seed(0)
    images = torch.rand(2, *shape)
    codes = build_encoder(encoder, shape, 6)(images)
    assert codes.shape == (2, 6)
    rebuilt = build_decoder(encoder, shape, 6)(codes)
    assert rebuilt.shape == (2, *shape) and 0 <= rebuilt.min() and rebuilt.max() <= 1
    with pytest.raises(ParamError, match="unknown encoder"):
        resolve_encoder("vgg", shape)


def test_the_conv_net_pools_only_feature_maps_larger_than_4px() -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder((1, 28, 28), 6, batch_norm=True).eval()
    assert isinstance(encoder.pool, torch.nn.Identity)  # 28 → 14 → 7 → 4: already 4×4
    images = torch.rand(3, 1, 28, 28)
    pooled = encoder.head(torch.nn.AdaptiveAvgPool2d((4, 4))(encoder.features(images)))
    assert torch.equal(encoder(images), pooled)  # the skipped pool changed nothing, bit for bit
    large = ConvEncoder((3, 64, 64), 6)  # 64 → 8 px maps are averaged down to 4×4
    assert isinstance(large.pool, torch.nn.AdaptiveAvgPool2d) and large(torch.rand(2, 3, 64, 64)).shape == (2, 6)


def test_the_28px_mlp_is_wide_with_batch_norm_except_for_the_contractive_autoencoder() -> None:
    torch.manual_seed(0)
    encoder = build_encoder("auto", (1, 28, 28), 6)
    assert [layer.out_features for layer in encoder.net if isinstance(layer, torch.nn.Linear)] == [1024, 512, 6]
    assert sum(isinstance(layer, torch.nn.BatchNorm1d) for layer in encoder.net) == 2
    assert not any(isinstance(layer, torch.nn.BatchNorm1d) for layer in build_encoder("auto", (1, 8, 8), 6).net)
    assert not any(isinstance(layer, torch.nn.BatchNorm1d) for layer in METHODS["cae"]((1, 28, 28), 6).encoder.net)
    decoder = build_decoder("auto", (1, 28, 28), 6)
    assert [layer.out_features for layer in decoder.net if isinstance(layer, torch.nn.Linear)] == [512, 1024, 784]
    # In eval mode batch norm uses its running statistics: an image's embedding does not depend on its batch.
    encoder.eval()
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(encoder(images)[:2], encoder(images[:2]))


def test_the_contrastive_methods_encode_grey_28px_images_with_the_batch_norm_conv_net() -> None:
    for name in ("simclr", "moco", "byol"):
        method = METHODS[name]((1, 28, 28), 6)
        assert method.encoder_name == "conv" and isinstance(method.encoder, ConvEncoder)
        assert sum(isinstance(layer, torch.nn.BatchNorm2d) for layer in method.encoder.features) == 3
        assert METHODS[name]((1, 8, 8), 6).encoder_name == "mlp"  # the digits keep the small MLP
        assert METHODS[name]((1, 28, 28), 6, encoder="mlp").encoder_name == "mlp"  # asked for by name
    assert METHODS["dae"]((1, 28, 28), 6).encoder_name == "mlp"  # the autoencoders keep the wide MLP there
    # The autoencoders' conv net (colour images) keeps no batch norm.
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in METHODS["ae"]((3, 32, 32), 6).encoder.features)
    encoder = METHODS["simclr"]((1, 28, 28), 6).encoder.eval()
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(encoder(images)[:2], encoder(images[:2]))  # running statistics in eval mode


def test_defaults_depend_on_the_image_size() -> None:
    assert METHODS["dae"].defaults_for((1, 8, 8), 1797) == METHODS["dae"].small_defaults
    assert METHODS["dae"].defaults_for((1, 28, 28), 60000) == METHODS["dae"].grey_28_defaults
    assert METHODS["dae"].defaults_for((3, 32, 32), 50000) == METHODS["dae"].defaults
    assert METHODS["simclr"].defaults_for((1, 28, 28), 60000)["batch_size"] == 512
    assert METHODS["dae"].defaults_for((1, 28, 28), 1000) == METHODS["dae"].small_defaults


def test_methods_embed_before_the_head_and_reconstruct_when_they_have_a_decoder() -> None:
    images = torch.rand(4, 1, 28, 28)
    for name, method_class in METHODS.items():
        method = method_class((1, 28, 28), 5).eval()
        assert method.embed(images).shape == (4, 5)
        assert method.reconstruct(images).shape == images.shape
    for name in ("simclr", "moco", "byol"):
        contrastive = METHODS[name]((1, 28, 28), 5).eval()
        assert torch.equal(contrastive.embed(images), contrastive.encoder(images))
        assert torch.equal(contrastive.reconstruct(images), contrastive.decoder(contrastive.encoder(images)))
        assert METHODS[name]((1, 28, 28), 5, reconstruction_weight=0).reconstruct(images) is None


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_augmentation_is_batched_per_image_and_in_range(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, *shape)
    batch = image.repeat(16, 1, 1, 1)
    views = simclr_augmentation(shape, strength=0.8)(batch)
    assert views.shape == batch.shape and views.dtype == torch.float32
    assert views.min() >= 0 and views.max() <= 1
    # Copies of one image must get different views: the random parameters are drawn per image.
    distinct = {tuple(view.flatten().round(decimals=4).tolist()) for view in views}
    assert len(distinct) == 16
    view_a, view_b = MultiViewTransform([simclr_augmentation(shape, 0.8)] * 2)(batch)
    assert not torch.allclose(view_a, view_b)


def test_zero_strength_augmentation_is_the_identity() -> None:
    images = torch.rand(5, 3, 32, 32)
    torch.manual_seed(0)
    assert torch.allclose(simclr_augmentation((3, 32, 32), strength=0.0)(images), images, atol=1e-5)
