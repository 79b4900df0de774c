"""Faded ink and paper: contrast loss with a brightness lift, out = alpha·x + beta."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue


class Contrast(Degradation):
    """Linear contrast reduction; alpha < 1 flattens, beta > 0 lifts the blacks
    (`functional.contrast`).

    >>> op = Contrast(alpha=(0.7, 0.7), beta=(0.1, 0.1))
    """

    name = "contrast"
    scope = "page"
    description = "contrast loss and brightness lift (faded ink)"

    class Params(ParamsModel):
        alpha: Annotated[RangeValue, Bounds(0.0, 2.0), Field(description="contrast factor")] = Range(0.6, 0.9)
        beta: Annotated[RangeValue, Bounds(-1.0, 1.0), Field(description="brightness offset")] = Range(0.05, 0.15)

    def sample(self, n, gen, device):
        return {"alpha": self.params.draw("alpha", gen), "beta": self.params.draw("beta", gen)}

    def apply(self, x, draws, gen, out=None):
        return functional.contrast(x, draws["alpha"], draws["beta"], out=out)
