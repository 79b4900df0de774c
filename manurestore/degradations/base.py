"""The degradation contract: validated `Params`, `sample` apart from `apply`.

A degradation draws its per-image values in `sample` (recordable, replayable) and uses them in
`apply`, which works on a (B, C, H, W) float batch in [0, 1] on any device. The pipeline clamps
once at the end, so `apply` may overshoot [0, 1] slightly.

>>> class Darken(Degradation):
...     name = "darken"
...     class Params(ParamsModel):
...         amount: Annotated[Range, Bounds(0.0, 1.0)] = Range(0.1, 0.3)
...     def sample(self, n, gen, device):
...         return {"amount": self.params.amount.sample(gen)}
...     def apply(self, x, draws, gen):
...         return x * (1 - draws["amount"].view(-1, 1, 1, 1))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, NamedTuple

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from torch import Tensor

from manurestore.degradations.random import ImageRandom

Draws = dict[str, Tensor]


@dataclass(frozen=True)
class Bounds:
    """The widest range a parameter may take; presets are validated against it."""

    low: float
    high: float
    integer: bool = False


def _range_from_value(value: Any) -> Any:
    """Accept `[low, high]`, `(low, high)`, `{"low":…, "high":…}` or a single number (fixed)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (value, value)
    return value


class Range(NamedTuple):
    """A closed interval [low, high] from which each image draws its own value."""

    low: float
    high: float

    def sample(self, gen: ImageRandom, integer: bool = False) -> Tensor:
        """(B,) values, one per image: float32, or int64 when the parameter is an integer."""
        if integer:
            return gen.integers(int(self.low), int(self.high))
        return gen.uniform(low=float(self.low), high=float(self.high))


RangeValue = Annotated[Range, BeforeValidator(_range_from_value)]


class ParamsModel(BaseModel):
    """Base of every op's `Params`: unknown keys are errors and each `Range` respects its `Bounds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _check_bounds(self) -> "ParamsModel":
        for name, field in type(self).model_fields.items():
            bounds = next((m for m in field.metadata if isinstance(m, Bounds)), None)
            value = getattr(self, name)
            if bounds is None or not isinstance(value, tuple):
                continue
            low, high = value
            if low > high:
                raise ValueError(f"key {name!r}: low {low} is above high {high}")
            if low < bounds.low or high > bounds.high:
                raise ValueError(f"key {name!r}: [{low}, {high}] is outside the allowed [{bounds.low}, {bounds.high}]")
            if bounds.integer and (int(low) != low or int(high) != high):
                raise ValueError(f"key {name!r}: [{low}, {high}] must be whole numbers")
        return self

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Each parameter with its default and bounds, for `manurestore plugins`."""
        rows = []
        for name, field in cls.model_fields.items():
            bounds = next((m for m in field.metadata if isinstance(m, Bounds)), None)
            default = field.default
            rows.append({
                "name": name,
                "default": list(default) if isinstance(default, tuple) else default,
                "bounds": None if bounds is None else [bounds.low, bounds.high],
                "integer": bool(bounds and bounds.integer),
                "description": field.description or "",
            })
        return rows


class Degradation(ABC):
    """One kind of damage. Subclasses set `name`, `Params`, and implement `sample` and `apply`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[ParamsModel]] = ParamsModel

    def __init__(self, params: ParamsModel | None = None, **values: Any):
        self.params = params if params is not None else self.Params(**values)

    @abstractmethod
    def sample(self, n: int, gen: ImageRandom, device: torch.device) -> Draws:
        """Per-image values, each a tensor with `n` rows on `device`."""

    @abstractmethod
    def apply(self, x: Tensor, draws: Draws, gen: ImageRandom) -> Tensor:
        """The degraded batch: same shape, dtype and device as `x`."""

    def __call__(self, x: Tensor, gen: ImageRandom) -> Tensor:
        return self.apply(x, self.sample(x.shape[0], gen, x.device), gen)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def per_image(values: Tensor, x: Tensor) -> Tensor:
    """A (B,) tensor shaped (B, 1, 1, 1) in `x`'s dtype, ready to broadcast over an image batch."""
    return values.to(dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))


@dataclass(frozen=True)
class Step:
    """One op of a pipeline and the probability that it fires on a given image."""

    op: Degradation
    p: float = 1.0
