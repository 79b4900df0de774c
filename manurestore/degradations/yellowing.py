"""Ageing tint: paper and ink drift towards yellow as blue and green fade."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import FULL_TINT

__all__ = ["FULL_TINT", "Yellowing"]  # the tint, for scripts that mimic the op


class Yellowing(Degradation):
    """Per-channel scaling by 1 − strength·(1 − FULL_TINT); grayscale gets the luma of the tint
    (`functional.yellowing`).

    >>> op = Yellowing(strength=(1.0, 1.0))  # exactly ×(1.0, 0.95, 0.8)
    """

    name = "yellowing"
    scope = "page"
    description = f"yellow ageing tint, ×{FULL_TINT} per RGB channel at full strength"

    class Params(ParamsModel):
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="0 = none, 1 = the full tint")] = Range(0.5, 1.0)

    def sample(self, n, gen, device):
        return {"strength": self.params.draw("strength", gen)}

    def apply(self, x, draws, gen, out=None):
        return functional.yellowing(x, draws["strength"], out=out)
