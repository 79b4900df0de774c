"""Gaussian sensor noise: each image gets its own sigma."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue


class GaussianNoise(Degradation):
    """Additive zero-mean Gaussian noise, independent per pixel and channel
    (`functional.gaussian_noise`).

    >>> op = GaussianNoise(sigma=(0.05, 0.05))
    """

    name = "gaussian_noise"
    description = "additive Gaussian noise (sensor, film grain)"

    class Params(ParamsModel):
        sigma: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="noise standard deviation")] = Range(0.01, 0.08)

    def sample(self, n, gen, device):
        return {"sigma": self.params.draw("sigma", gen)}

    def apply(self, x, draws, gen, out=None):
        return functional.gaussian_noise(x, draws["sigma"], gen, out=out)
