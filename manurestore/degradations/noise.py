"""Gaussian sensor noise: each image gets its own sigma."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image


class GaussianNoise(Degradation):
    """Additive zero-mean Gaussian noise, independent per pixel and channel.

    >>> op = GaussianNoise(sigma=(0.05, 0.05))
    """

    name = "gaussian_noise"
    description = "additive Gaussian noise (sensor, film grain)"

    class Params(ParamsModel):
        sigma: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="noise standard deviation")] = Range(0.01, 0.08)

    def sample(self, n, gen, device):
        return {"sigma": self.params.sigma.sample(gen)}

    def apply(self, x, draws, gen):
        noise = gen.normal(*x.shape[1:]).to(x.dtype)
        return x + noise.mul_(per_image(draws["sigma"], x))
