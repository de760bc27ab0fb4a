"""Declared parameters of methods (training, projection, clustering) and their validation.

Every method declares its parameters once as `ParamSpec`s; the CLI, the HTTP API and the train
form all validate and describe parameters from these declarations, so there is one way to check.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


class ParamError(ValueError):
    """A parameter a person gave is unknown, of the wrong type or out of range (message is for them)."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type, default, bounds or choices, and a short help text for forms."""

    name: str
    type: type  # int, float, str or bool
    default: Any = None  # None means "chosen automatically" (the method resolves it in fit)
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    exclusive_minimum: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (for /api/methods and the forms)."""
        described = asdict(self)
        described["type"] = self.type.__name__
        described["choices"] = list(self.choices) if self.choices else None
        return described

    def coerce(self, value: Any) -> Any:
        """Convert `value` (possibly a string from the CLI) to this parameter's type and check it."""
        if value is None:
            return None
        try:
            converted = _convert(self.type, value)
        except (TypeError, ValueError):
            raise ParamError(f"{self.name} must be {_type_words(self.type)}, got {value!r}") from None
        if self.choices is not None and converted not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ParamError(f"{self.name} must be one of {allowed}, got {value!r}")
        if self.type in (int, float):
            if not math.isfinite(converted):
                raise ParamError(f"{self.name} must be a finite number, got {value!r}")
            if self.minimum is not None:
                too_small = converted <= self.minimum if self.exclusive_minimum else converted < self.minimum
                if too_small:
                    relation = ">" if self.exclusive_minimum else ">="
                    raise ParamError(f"{self.name} must be {relation} {self.minimum:g}, got {value!r}")
            if self.maximum is not None and converted > self.maximum:
                raise ParamError(f"{self.name} must be <= {self.maximum:g}, got {value!r}")
        return converted


def _convert(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(value)
            return int(value)
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise TypeError(kind)


def _type_words(kind: type) -> str:
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false"}[kind]


@dataclass(frozen=True)
class ParamSchema:
    """The parameters of one method; `validate` fills defaults and refuses unknown names."""

    specs: tuple[ParamSpec, ...] = field(default_factory=tuple)

    def validate(self, given: dict[str, Any] | None) -> dict[str, Any]:
        given = dict(given or {})
        known = {spec.name: spec for spec in self.specs}
        unknown = sorted(set(given) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise ParamError(f"unknown parameter {', '.join(unknown)}; allowed: {allowed}")
        return {name: spec.coerce(given.get(name, spec.default)) for name, spec in known.items()}

    def describe(self) -> list[dict[str, Any]]:
        return [spec.describe() for spec in self.specs]


def parse_key_values(pairs: list[str]) -> dict[str, str]:
    """Parse CLI `--param KEY=VALUE` strings into a dict (values stay strings; the schema converts)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"--param takes KEY=VALUE, got {pair!r}")
        parsed[key.strip()] = value.strip()
    return parsed
