"""What the app can run: training methods, projections and clusterings, and their parameter checks.

Training methods are described and validated from their torch-free specs (`ml.methods.specs`) and
configs built as `ml.train_config.TrainConfig`, so the server process never imports torch (only the
workers do). The projection and clustering registries are imported on first use.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from ml.methods.specs import METHOD_SPECS, MethodSpec
from ml.models.sizing import ENCODER_NAMES
from ml.params import ParamError
from ml.snapshots import DEFAULT_SNAPSHOTS, MAX_SNAPSHOTS
from ml.train_config import TrainConfig

# Shared training fields a person may set (besides the method's own parameters).
TRAIN_FIELDS = ("epochs", "embedding_dim", "batch_size", "lr", "seed", "encoder", "snapshots")


def training_methods() -> dict[str, MethodSpec]:
    """Every training method's declaration (torch-free), name → MethodSpec."""
    return METHOD_SPECS


def projections() -> dict[str, Any]:
    from ml.analysis.projection import PROJECTIONS

    return PROJECTIONS


def clusterings() -> dict[str, Any]:
    from ml.analysis.clustering import CLUSTERINGS

    return CLUSTERINGS


def describe_methods(dataset_shape: tuple[tuple[int, int, int], int] | None = None) -> dict[str, Any]:
    """The /api/methods payload: every method's label, parameter specs and defaults.

    `dataset_shape` = ((C, H, W), n_images) gives each training method's defaults for that dataset,
    its parameters' defaults included; without it, the defaults for 28/32 px images.
    """
    def training(spec: MethodSpec) -> dict[str, Any]:
        described = spec.describe()
        if dataset_shape:
            described["defaults"] = spec.defaults_for(*dataset_shape)
            differing = spec.param_defaults_for(dataset_shape[0])
            described["params"] = [{**param, "default": differing.get(param["name"], param["default"])} for param in described["params"]]
        return described

    return {
        "training": {name: training(spec) for name, spec in training_methods().items()},
        "projections": {name: {"label": getattr(cls, "label", name), "params": cls.params.describe()}
                        for name, cls in projections().items()},
        "clusterings": {name: {"label": getattr(cls, "label", name), "params": cls.params.describe()}
                        for name, cls in clusterings().items()},
    }


def _check_known(kind: str, name: str, known: dict[str, Any]) -> Any:
    if name not in known:
        raise ParamError(f"unknown {kind} {name!r}; choose one of {', '.join(known)}")
    return known[name]


def validate_projection(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Validated projection parameters (defaults filled); ParamError names the field otherwise."""
    return _check_known("projection method", method, projections()).params.validate(params)


def validate_clustering(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    return _check_known("clustering method", method, clusterings()).params.validate(params)


def train_config(dataset: str, method: str, image_shape: tuple[int, int, int], n_images: int,
                 given: dict[str, Any], method_params: dict[str, Any] | None) -> dict[str, Any]:
    """A complete, validated TrainConfig as a JSON dict.

    `given` holds the shared fields a person set (None = the method's default for this dataset);
    raises ParamError naming the field when a value is unknown or out of range.
    """
    spec: MethodSpec = _check_known("method", method, training_methods())
    config: dict[str, Any] = dict(spec.defaults_for(image_shape, n_images))
    config.setdefault("seed", 0)
    for name, value in given.items():
        if value is not None:
            config[name] = value
    # Batch statistics (batch norm, NT-Xent's negatives) need at least two images per batch.
    for name, minimum in (("epochs", 1), ("embedding_dim", 1), ("batch_size", 2)):
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ParamError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    lr = config.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 10:
        raise ParamError(f"lr must be a number in (0, 10], got {lr!r}")
    if isinstance(config["seed"], bool) or not isinstance(config["seed"], int) or config["seed"] < 0:
        raise ParamError(f"seed must be a whole number >= 0, got {config['seed']!r}")
    snapshots = config.get("snapshots", DEFAULT_SNAPSHOTS)
    if isinstance(snapshots, bool) or not isinstance(snapshots, int) or not 0 <= snapshots <= MAX_SNAPSHOTS:
        raise ParamError(f"snapshots must be a whole number from 0 (off) to {MAX_SNAPSHOTS}, got {snapshots!r}")
    encoder = config.get("encoder", "auto")
    if encoder != "auto" and encoder not in ENCODER_NAMES:
        raise ParamError(f"encoder must be one of auto, {', '.join(ENCODER_NAMES)}; got {encoder!r}")
    method_params = {**spec.param_defaults_for(image_shape), **(method_params or {})}
    config.update(dataset=dataset, method=method, method_params=spec.validate(method_params, config["batch_size"]))
    return _complete(config)


def _complete(config: dict[str, Any]) -> dict[str, Any]:
    """Fill TrainConfig's own defaults (encoder, device, ...) and drop keys it does not take."""
    complete: dict[str, Any] = {}
    for spec in fields(TrainConfig):
        if spec.name in config:
            complete[spec.name] = config[spec.name]
        elif spec.default is not MISSING:
            complete[spec.name] = spec.default
        elif spec.default_factory is not MISSING:  # type: ignore[misc]
            complete[spec.name] = spec.default_factory()  # type: ignore[misc]
    return complete
