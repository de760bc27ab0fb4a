"""What each training method is, without torch: its name, label, parameters and defaults.

`METHOD_SPECS` is the one declaration of every method. The web server describes and validates
methods from it alone (it never imports torch); the `nn.Module` classes (`ml.methods.METHODS`)
each point at their spec (`Method.spec`), so nothing is declared twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ml.models.sizing import ImageShape, is_grey_28, is_small
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.snapshots import DEFAULT_SNAPSHOTS

# A cross-field check: (validated method params, batch_size) → None, or raises ParamError.
CrossCheck = Callable[[dict[str, Any], int], None]


def _defaults(epochs: int, batch_size: int, lr: float = 2e-3, embedding_dim: int = 32) -> dict[str, Any]:
    return {"epochs": epochs, "lr": lr, "batch_size": batch_size, "embedding_dim": embedding_dim,
            "snapshots": DEFAULT_SNAPSHOTS}


@dataclass(frozen=True)
class MethodSpec:
    """One training method's declaration.

    defaults: the shared training hyperparameters it prefers for 28/32 px datasets
        (epochs, lr, batch_size, embedding_dim, snapshots); `defaults_for` adapts them to a dataset:
        `small_defaults` for tiny images or datasets, `grey_28_defaults` for grey images up to
        28 px (`is_grey_28`), which `auto` encodes with `grey_28_encoder`.
    grey_28_encoder: the encoder `auto` picks for grey images up to 28 px: the wide MLP (cheaper
        per image than the conv net, so more epochs fit) unless a method declares otherwise.
    check: a cross-field check of the method's parameters against the batch size.
    tiny_image_params: method parameters whose default differs for tiny images (`is_small`, the 8×8 digits).
    """

    name: str
    label: str
    params: ParamSchema = ParamSchema()
    defaults: dict[str, Any] = field(default_factory=lambda: _defaults(15, 256))
    # Tiny datasets (the 8×8 digits) need many more passes for the same number of optimiser steps.
    small_defaults: dict[str, Any] = field(default_factory=lambda: _defaults(100, 128))
    # Fashion-MNIST (60k train images): 40 epochs of the MLP denoising autoencoder take ~10 min on one core.
    grey_28_defaults: dict[str, Any] = field(default_factory=lambda: _defaults(40, 256))
    grey_28_encoder: str = "mlp"
    check: CrossCheck | None = None
    tiny_image_params: dict[str, Any] = field(default_factory=dict)

    def defaults_for(self, image_shape: ImageShape, n_images: int) -> dict[str, Any]:
        """The training defaults suited to a dataset of `n_images` images of `image_shape` (C, H, W)."""
        if is_small(image_shape) or n_images < 5000:
            return dict(self.small_defaults)
        return dict(self.grey_28_defaults if is_grey_28(image_shape) else self.defaults)

    def param_defaults_for(self, image_shape: ImageShape) -> dict[str, Any]:
        """The method parameters whose default for images of `image_shape` differs from the schema's."""
        return dict(self.tiny_image_params) if is_small(image_shape) else {}

    def describe(self) -> dict[str, Any]:
        """JSON description for /api/methods (defaults for 28/32 px images)."""
        return {"label": self.label, "params": self.params.describe(), "defaults": dict(self.defaults)}

    def validate(self, method_params: dict[str, Any] | None, batch_size: int) -> dict[str, Any]:
        """The method's parameters with defaults filled, checked alone and against `batch_size`.

        Raises ParamError naming the field. The API, the CLI and the form all come through here.
        """
        params = self.params.validate(method_params)
        if self.check is not None:
            self.check(params, batch_size)
        return params


AE = MethodSpec("ae", "Autoencoder")
DAE = MethodSpec("dae", "Denoising autoencoder", ParamSchema((
    ParamSpec("noise_std", float, 0.3, "standard deviation of the pixel noise (pixels in 0..1)", minimum=0.0, maximum=2.0),
)))
SPARSE_AE = MethodSpec("sparse-ae", "Sparse autoencoder", ParamSchema((
    ParamSpec("l1_weight", float, 1e-3, "weight of the L1 penalty on the code", minimum=0.0, maximum=10.0),
)))
CAE = MethodSpec("cae", "Contractive autoencoder", ParamSchema((
    ParamSpec("contractive_weight", float, 1e-3, "weight of the encoder-Jacobian penalty", minimum=0.0, maximum=10.0),
)))

# 0.05: on Fashion-MNIST SimCLR's validation kNN-5 after 750 steps was 0.839 / 0.845 / 0.843 at
# temperature 0.1 / 0.05 / 0.03 with the conv net, 0.832 / 0.838 at 0.1 / 0.05 with the MLP (bench/bench_recipe.py).
_TEMPERATURE = ParamSpec("temperature", float, 0.05, "softmax temperature of the contrastive loss", minimum=0.0, maximum=10.0,
                         exclusive_minimum=True)
_STRENGTH = ParamSpec("augmentation_strength", float, 0.5, "how strongly the two views are distorted (0..1)", minimum=0.0, maximum=1.0)
# On Fashion-MNIST a decoder's reconstruction of each image from its first view's embedding, weighted 30 × the
# pixel MSE (≈ 0.02 next to an InfoNCE loss of ≈ 0.65), raised moco's validation kNN-5 after 14 epochs' steps from
# 0.8686 to 0.873–0.876 (weights 1 / 10 / 100 / 300: 0.868 / 0.871 / 0.874 / 0.870; bench/bench_recipe.py). On the
# test split: simclr 0.8722 → 0.8803, byol 0.8669 → 0.8812 (bench/bench_lightly.py). A folder of 28 px digits gained
# +0.003 to +0.009 with it. Tiny images (at most 16×16 px: the 8×8 digits, MLP encoder) get none: weight 30 cost
# moco and byol 0.009 / 0.023 there (mean kNN-5 of 3 seeds, bench/bench_seeds.py).
_NO_RECONSTRUCTION_FOR_TINY_IMAGES = {"reconstruction_weight": 0.0}
_RECONSTRUCTION = ParamSpec("reconstruction_weight", float, 30.0,
                            "weight of a decoder's pixel MSE, rebuilding each image from its first view's embedding (0: no decoder)",
                            minimum=0.0, maximum=100000.0)
# The schema has no exclusive maximum, so maximum=1 lets 1 through and `_momentum_below_one` refuses it.
_MOMENTUM = ParamSpec("momentum", float, 0.99, "EMA momentum of the key/target network, in [0, 1)", minimum=0.0, maximum=1.0)


def _momentum_below_one(params: dict[str, Any], batch_size: int) -> None:
    if params["momentum"] >= 1.0:
        raise ParamError(f"momentum must be < 1 (1 would never update the target network), got {params['momentum']!r}")


def _moco_check(params: dict[str, Any], batch_size: int) -> None:
    _momentum_below_one(params, batch_size)
    if params["queue_size"] < batch_size:
        raise ParamError(f"queue_size must be >= the batch size ({batch_size}): each step enqueues a batch of keys; "
                         f"got {params['queue_size']!r}")


SIMCLR = MethodSpec(
    "simclr", "SimCLR (contrastive)", ParamSchema((_TEMPERATURE, _STRENGTH, _RECONSTRUCTION)),
    defaults=_defaults(10, 256),
    # On the digits, kNN accuracy peaks around 20–30 epochs (0.975 / 0.972) and drifts down to 0.967 by 100.
    small_defaults=_defaults(30, 256),
    # Fashion-MNIST: 512 images (1,024 views) per batch give more negatives. The batch-norm conv net beat
    # the wide MLP at equal time (validation kNN-5 0.845 after 750 steps in 225 s against 0.840 after
    # 1,400 MLP steps in 239 s; the MLP had stopped improving), so `auto` picks it here. It trains
    # ~5,800 images/s on two idle cores in bf16 (~1,700 on one busy core in float32): 20 epochs take ~3.5 minutes (~12).
    # More would not pay: 40 epochs' steps gave validation kNN-5 0.868 against 0.870 for 20.
    grey_28_defaults=_defaults(20, 512),
    grey_28_encoder="conv",
    tiny_image_params=_NO_RECONSTRUCTION_FOR_TINY_IMAGES,
)

MOCO = MethodSpec(
    "moco", "MoCo v2 (contrastive, momentum queue)", ParamSchema((
        _TEMPERATURE,
        ParamSpec("queue_size", int, 2048, "how many past keys serve as negatives (>= the batch size)", minimum=2, maximum=262144),
        _MOMENTUM,
        _STRENGTH,
        _RECONSTRUCTION,
    )),
    defaults=_defaults(10, 256),
    small_defaults=_defaults(30, 256),
    # Fashion-MNIST: the batch-norm conv net, as for simclr. A queue of 2,048 keys (two steps' worth at batch 512)
    # scores as 4,096 did and trains 18 % faster: validation kNN-5 0.8686 against 0.8694 after 14 epochs' steps
    # in bf16, 5,741 against 4,851 images/s; the digits 0.970 / 0.971 and a folder of 28 px digits 0.974 / 0.974
    # (mean of 3 seeds). With older views a queue of 8,192 had given 0.841 against 4,096's 0.845.
    # 28 epochs: with the reconstruction term moco gains from longer training (validation kNN-5 0.8727 after
    # 14 epochs' steps, 0.8775 after 28; without it 0.8686 and 0.8701). The key encoder's pass and the decoder
    # make it ~1.4× simclr's cost per image: 28 epochs take ~6 minutes on two idle cores in bf16.
    grey_28_defaults=_defaults(28, 512),
    grey_28_encoder="conv",
    check=_moco_check,
    tiny_image_params=_NO_RECONSTRUCTION_FOR_TINY_IMAGES,
)

BYOL = MethodSpec(
    "byol", "BYOL (predictor + EMA target, no negatives)", ParamSchema((
        replace(_MOMENTUM, help="EMA momentum of the target network at the start; it rises to 1 on a cosine schedule"),
        ParamSpec("predictor_hidden", int, 256, "hidden width of the predictor", minimum=1, maximum=8192),
        _STRENGTH,
        _RECONSTRUCTION,
    )),
    defaults=_defaults(10, 256),
    small_defaults=_defaults(30, 256),
    # Fashion-MNIST: the batch-norm conv net, as for simclr and moco. Under bf16 autocast (ml/precision.py)
    # it beat the wide MLP BYOL had kept (validation kNN-5 0.863 after 55 epochs' steps against 0.841;
    # 0.853 against 0.829 after 30). Unlike simclr (0.870 after 20 epochs' steps, 0.868 after 40), BYOL
    # still gains from longer training: 55 epochs take ~9 of the 15 minutes on two idle cores (~6,000 images/s in bf16).
    grey_28_defaults=_defaults(55, 512),
    grey_28_encoder="conv",
    check=_momentum_below_one,
    tiny_image_params=_NO_RECONSTRUCTION_FOR_TINY_IMAGES,
)

METHOD_SPECS: dict[str, MethodSpec] = {spec.name: spec for spec in (AE, DAE, SPARSE_AE, CAE, SIMCLR, MOCO, BYOL)}
