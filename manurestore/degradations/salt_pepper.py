"""Salt-and-pepper specks: a fraction of whole pixels set to black or white."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.memory import new_batch


class SaltPepper(Degradation):
    """A fraction `amount` of the pixels (all channels together) is hit; half salt, half pepper.

    Only the hits are drawn, so the cost follows the number of specks, not of pixels: each image
    draws n = round(−ln(1 − amount)·H·W) positions, uniform and independent, so the expected
    fraction of distinct pixels hit, 1 − (1 − 1/(H·W))ⁿ ≈ 1 − e^(−n/(H·W)), is `amount` even
    where two draws land on one pixel. A pixel hit by both a salt and a pepper draw is salt.

    >>> op = SaltPepper(amount=(0.01, 0.01))
    """

    name = "salt_pepper"
    description = "salt-and-pepper specks on whole pixels (dust, scanner faults)"

    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="fraction of pixels hit")] = Range(0.001, 0.01)

    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen)}

    def apply(self, x, draws, gen):
        return _speckle(new_batch(x.shape, x.dtype, x.device).copy_(x), draws, gen)

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return _speckle(x, draws, gen) if x.is_contiguous() else self.apply(x, draws, gen)


def _speckle(x, draws, gen):
    """Set the drawn pixels of (contiguous) `x` to 0 or 1 in place and return it."""
    batch, channels, height, width = x.shape
    pixels = height * width
    # Hits per image, worked out on the CPU in float64 so that every device gets the same counts.
    amount = draws["amount"].detach().to("cpu", torch.float64).clamp(0.0, 0.5)
    counts = torch.round(-torch.log1p(-amount) * pixels).to(torch.int64)
    slots = int(counts.max()) if batch and pixels else 0
    # Draw the same two calls whatever the batch holds, so the stream stays aligned.
    where = gen._below(max(pixels, 1), max(slots, 0))  # (B, slots) pixel indices
    salt = gen.bernoulli(0.5, max(slots, 0))  # (B, slots) True = white
    if slots == 0:
        return x
    used = torch.arange(slots, device=x.device).view(1, -1) < counts.to(x.device).view(-1, 1)
    planes = x.view(batch, channels, pixels).transpose(1, 2)  # (B, H·W, C) view of x
    image = torch.arange(batch, device=x.device).view(-1, 1).expand(batch, slots)
    for value, chosen in ((0.0, used & ~salt), (1.0, used & salt)):  # pepper first: salt wins a tie
        planes[image[chosen], where[chosen]] = value
    return x
