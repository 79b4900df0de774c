"""Faded ink and paper: contrast loss with a brightness lift, out = alpha·x + beta."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image
from manurestore.memory import new_batch


class Contrast(Degradation):
    """Linear contrast reduction; alpha < 1 flattens, beta > 0 lifts the blacks.

    >>> op = Contrast(alpha=(0.7, 0.7), beta=(0.1, 0.1))
    """

    name = "contrast"
    description = "contrast loss and brightness lift (faded ink)"

    class Params(ParamsModel):
        alpha: Annotated[RangeValue, Bounds(0.0, 2.0), Field(description="contrast factor")] = Range(0.6, 0.9)
        beta: Annotated[RangeValue, Bounds(-1.0, 1.0), Field(description="brightness offset")] = Range(0.05, 0.15)

    def sample(self, n, gen, device):
        return {"alpha": self.params.alpha.sample(gen), "beta": self.params.beta.sample(gen)}

    def apply(self, x, draws, gen):
        out = new_batch(x.shape, x.dtype, x.device)
        return torch.mul(x, per_image(draws["alpha"], x), out=out).add_(per_image(draws["beta"], x))

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return x.mul_(per_image(draws["alpha"], x)).add_(per_image(draws["beta"], x))
