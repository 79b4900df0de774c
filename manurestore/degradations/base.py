"""The degradation contract: validated `Params`, `sample` apart from `apply`.

A degradation draws its per-image values in `sample` (recordable, replayable) and uses them in
`apply`, which works on a (B, C, H, W) float batch in [0, 1] on any device. The pipeline clamps
once at the end, so `apply` may overshoot [0, 1] slightly. The pixel work itself belongs in a
pure function (`manurestore.degradations.functional` has one per built-in op), so `apply` is
one call:

>>> from manurestore.degradations import functional
>>> class Darken(Degradation):
...     name = "darken"
...     class Params(ParamsModel):
...         amount: Annotated[RangeValue, Bounds(0.0, 1.0)] = Range(0.1, 0.3)
...     def sample(self, n, gen, device):
...         return {"amount": self.params.draw("amount", gen)}
...     def apply(self, x, draws, gen, out=None):
...         return functional.contrast(x, 1 - draws["amount"], 0.0, out=out)

## `out=`: writing into a given tensor

`apply(x, draws, gen, out=None)` returns the degraded batch, and:

- with `out=None` the result is a new tensor of its own (never `x` or a view of it) and `x` is
  left untouched;
- with `out` given (a tensor of x's shape, dtype and device, possibly `x` itself) the result is
  written into `out` and `out` is returned. The pipeline passes `out=x` for batches it made
  itself, so ops that can work in place save a copy and a batch-sized allocation per step.

An op that cannot work in place honours it simply: compute the result, then
`return result if out is None else out.copy_(result)`.

`out` is optional for third-party ops: an `apply(self, x, draws, gen)` without it still works.
The pipeline tells the two apart by `apply`'s signature (`accepts_out`, worked out once per
class): it calls such an op without `out` and, since its result may be `x` itself or a view of
it, never writes into that result (the next op that could work in place gets a copy instead).
Always correct, only a copy slower.
"""

from __future__ import annotations

import inspect
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

    def sample(self, gen: ImageRandom, *shape: int, integer: bool = False, host: bool = False) -> Tensor:
        """(B, *shape) values drawn from [low, high]: float32, or int64 whole numbers.

        `shape` gives each image several values, say one per blob (`sample(gen, slots)`).
        `ParamsModel.draw` knows `integer` from the parameter's `Bounds`: prefer it in ops.
        `host=True` keeps the values on the CPU (see `Degradation.sample`).
        """
        if integer:
            return gen.integers(int(self.low), int(self.high), *shape, host=host)
        return gen.uniform(*shape, low=float(self.low), high=float(self.high), host=host)


RangeValue = Annotated[Range, BeforeValidator(_range_from_value)]


class ParamsModel(BaseModel):
    """Base of every op's `Params`: unknown keys are errors and each `Range` respects its `Bounds`.

    NaN and infinity are refused in every float, a `Range`'s ends included: they compare false
    with any bound, so they would pass the bounds and turn every pixel they touch into NaN.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def bounds(cls) -> dict[str, Bounds]:
        """The `Bounds` of each parameter that declares them, by name."""
        found = {}
        for name, field in cls.model_fields.items():
            bounds = next((m for m in field.metadata if isinstance(m, Bounds)), None)
            if bounds is not None:
                found[name] = bounds
        return found

    def draw(self, name: str, gen: ImageRandom, *shape: int, host: bool = False) -> Tensor:
        """(B, *shape) values of the `Range` parameter `name`: int64 where its `Bounds` say
        `integer=True`, float32 otherwise, so no op repeats what the declaration says.

        >>> class Spots(ParamsModel):
        ...     count: Annotated[RangeValue, Bounds(0, 9, integer=True)] = Range(1, 3)
        >>> Spots().draw("count", ImageRandom([1, 2])).dtype
        torch.int64
        """
        bounds = type(self).bounds().get(name)
        return getattr(self, name).sample(gen, *shape, integer=bool(bounds and bounds.integer), host=host)

    @model_validator(mode="after")
    def _check_bounds(self) -> "ParamsModel":
        for name, bounds in type(self).bounds().items():
            value = getattr(self, name)
            if not isinstance(value, tuple):
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
        declared = cls.bounds()
        for name, field in cls.model_fields.items():
            bounds = declared.get(name)
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
    """One kind of damage. Subclasses set `name`, `Params`, and implement `sample` and `apply`.

    `accepts_out` is worked out from `apply`'s signature when the class is defined: whether
    `apply` takes `out=` (see the module docstring).

    `scope` says where the damage lives. "page": it changes the whole page smoothly (yellowing,
    fading, uneven light), so undoing it is a page-level decision that a restorer makes once from
    the whole page. "local": everything else (noise, blur, specks, stains), repaired tile by tile.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[ParamsModel]] = ParamsModel
    accepts_out: ClassVar[bool] = True
    scope: ClassVar[str] = "local"  # or "page"

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls.accepts_out = "out" in inspect.signature(cls.apply).parameters

    def __init__(self, params: ParamsModel | None = None, **values: Any):
        self.params = params if params is not None else self.Params(**values)

    @abstractmethod
    def sample(self, n: int, gen: ImageRandom, device: torch.device) -> Draws:
        """Per-image values, each a tensor with `n` rows on `device`, or on the CPU for values
        `apply` needs on the host (kernel sizes, counts: draw them with `host=True`), since reading
        a value back from an accelerator waits for everything queued there."""

    @abstractmethod
    def apply(self, x: Tensor, draws: Draws, gen: ImageRandom, out: Tensor | None = None) -> Tensor:
        """The degraded batch: same shape, dtype and device as `x`.

        A new tensor when `out` is None (`x` untouched); else written into `out` (which may be
        `x`) and `out` returned.
        """

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
