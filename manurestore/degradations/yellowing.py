"""Ageing tint: paper and ink drift towards yellow as blue and green fade."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.memory import new_batch

# At full strength each RGB channel is scaled by these factors (the seed's recipe).
FULL_TINT = (1.0, 0.95, 0.8)
# ITU-R BT.601 luma weights: a grayscale page darkens as its RGB version would look in gray.
LUMA = (0.299, 0.587, 0.114)


class Yellowing(Degradation):
    """Per-channel scaling by 1 − strength·(1 − FULL_TINT); grayscale gets the luma of the tint.

    >>> op = Yellowing(strength=(1.0, 1.0))  # exactly ×(1.0, 0.95, 0.8)
    """

    name = "yellowing"
    description = "yellow ageing tint, ×(1.0, 0.95, 0.8) per RGB channel at full strength"

    class Params(ParamsModel):
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="0 = none, 1 = the full tint")] = Range(0.5, 1.0)

    def sample(self, n, gen, device):
        return {"strength": self.params.strength.sample(gen)}

    def apply(self, x, draws, gen):
        return torch.mul(x, _scale(x, draws), out=new_batch(x.shape, x.dtype, x.device))

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return x.mul_(_scale(x, draws))


def _scale(x, draws):
    """(B, C, 1, 1) per-channel factors in x's dtype."""
    tint = torch.tensor(FULL_TINT, device=x.device, dtype=torch.float32)
    if x.shape[1] == 1:
        tint = (tint * torch.tensor(LUMA, device=x.device)).sum().view(1)
    elif x.shape[1] != 3:
        raise ValueError(f"yellowing needs 1 or 3 channels, got {x.shape[1]}")
    scale = 1.0 - draws["strength"].view(-1, 1) * (1.0 - tint.view(1, -1))
    return scale.to(x.dtype).view(x.shape[0], x.shape[1], 1, 1)
