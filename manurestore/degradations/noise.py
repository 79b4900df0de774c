"""Gaussian sensor noise: each image gets its own sigma."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image
from manurestore.memory import new_batch


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
        return _add_noise(x, draws, gen, new_batch(x.shape, x.dtype, x.device))

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return _add_noise(x, draws, gen, x) if x.is_contiguous() else self.apply(x, draws, gen)


def _add_noise(x, draws, gen, out):
    """out = x + sigma·N(0, 1), the normals of `gen.normal(*x.shape[1:])`, added piece by piece."""
    batch = x.shape[0]
    if batch == 0 or x[0].numel() == 0:
        return out.copy_(x)
    source = x.reshape(batch, -1)  # a view for contiguous x; `out` is contiguous
    target = out.view(batch, -1)
    sigma = per_image(draws["sigma"], x).view(batch, 1)
    for (start, stop), (start2, stop2), values in gen._normal_spans(source.shape[1]):
        for begin, end, row in ((start, stop, 0), (start2, stop2, 1)):
            if end > begin:
                noise = values[:, row, : end - begin].to(x.dtype)
                torch.addcmul(source[:, begin:end], noise, sigma, out=target[:, begin:end])
    return out
