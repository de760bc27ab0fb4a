"""`TrainConfig`: everything that determines a training run, checked without torch.

The web server builds and validates configs with it (it never imports torch); `ml.training`
runs them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ml.methods.specs import METHOD_SPECS
from ml.params import ParamError
from ml.snapshots import DEFAULT_SNAPSHOTS, MAX_SNAPSHOTS


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved as config.json)."""

    dataset: str
    method: str
    epochs: int
    embedding_dim: int
    batch_size: int
    lr: float
    seed: int
    method_params: dict[str, Any] = field(default_factory=dict)
    encoder: str = "auto"
    device: str = "auto"
    snapshots: int = DEFAULT_SNAPSHOTS  # embeddings kept at evenly spaced epochs (ml.snapshots); 0 = none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys that are not fields (config.json holds dataset info too)."""
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})

    def validated(self) -> TrainConfig:
        """A copy with method_params filled from the method's spec; raises ParamError on bad values."""
        if self.method not in METHOD_SPECS:
            raise ParamError(f"unknown method {self.method!r}; known: {', '.join(METHOD_SPECS)}")
        for name, minimum in (("epochs", 1), ("embedding_dim", 1), ("batch_size", 2)):
            if int(getattr(self, name)) < minimum:
                raise ParamError(f"{name} must be >= {minimum}, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ParamError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= int(self.snapshots) <= MAX_SNAPSHOTS:
            raise ParamError(f"snapshots must be between 0 and {MAX_SNAPSHOTS}, got {self.snapshots!r}")
        params = METHOD_SPECS[self.method].validate(self.method_params, int(self.batch_size))
        return TrainConfig(**{**self.to_dict(), "method_params": params})
