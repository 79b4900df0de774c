"""Salt-and-pepper specks: a fraction of whole pixels set to black or white."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image


class SaltPepper(Degradation):
    """Each pixel (all channels together) is hit with probability `amount`; half salt, half pepper.

    >>> op = SaltPepper(amount=(0.01, 0.01))
    """

    name = "salt_pepper"
    description = "salt-and-pepper specks on whole pixels (dust, scanner faults)"

    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="fraction of pixels hit")] = Range(0.001, 0.01)

    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen)}

    def apply(self, x, draws, gen):
        _, _, height, width = x.shape
        hit = gen.uniform(1, height, width) < per_image(draws["amount"], x).float()
        speck = gen.bernoulli(0.5, 1, height, width).to(x.dtype)  # 1 = salt, 0 = pepper
        return torch.where(hit, speck, x)
