"""Ink bleed: wet ink wicked into the paper's fibres, so strokes grow feathered, uneven edges."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import ink_density

# Each pixel of spread passes on between these fractions of the ink, by how well the fibres
# there carry it, so the bleed reaches further along some paths than others.
CARRY_LOW, CARRY_HIGH = 0.3, 0.95
# Spread ink shows where it beats the fibre's own threshold, THRESHOLD_LOW on the best-carrying
# fibres to THRESHOLD_HIGH on the worst, over a ramp of THRESHOLD_RAMP: a ragged, hairy edge.
THRESHOLD_LOW, THRESHOLD_HIGH, THRESHOLD_RAMP = 0.3, 0.75, 0.3
# Besides the fibres' feathers, the spread ink tints the paper faintly: this fraction of it.
GLOW = 0.35
# Short fibres, lying across and along the page: uniform noise averaged along 1×FIBRE_LENGTH
# and FIBRE_LENGTH×1 windows.
FIBRE_LENGTH = 5
# Strokes bleed more where they are dense: ink density averaged over this window.
DENSITY_WINDOW = 9


class InkBleed(Degradation):
    """Dark strokes spread outwards by up to `spread` pixels, feathered and irregular.

    Ink darkness (measured against a local paper estimate) is pushed out one pixel at a time
    with a 3×3 max filter; at each step every pixel passes on only a fraction of it, set per
    pixel by a random field of short fibres, so the spread follows some paths further than
    others and fades outwards. Spread ink shows where it beats the fibre's own threshold (lower
    on good fibres and where writing is dense), which gives the stroke a thicker, ragged, hairy
    edge rather than a glow. It takes the colour of the nearest ink (a min filter over the same
    reach) at an opacity of up to `strength`.

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((1, 1, 32, 32), 0.9)
    >>> page[..., 14:18, 4:28] = 0.1
    >>> out = InkBleed(spread=(3, 3), strength=(0.8, 0.8))(page, ImageRandom([2]))
    >>> bool(out[0, 0, 12, 4:28].mean() < 0.8), bool(out[0, 0, 2, 16] == page[0, 0, 2, 16])
    (True, True)
    """

    name = "ink_bleed"
    description = "feathered, spreading strokes: ink wicked into the paper fibres"

    class Params(ParamsModel):
        spread: Annotated[RangeValue, Bounds(0, 12, integer=True), Field(description="reach of the bleed in pixels")] = Range(1, 3)
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity of the bled ink")] = Range(0.35, 0.75)

    def sample(self, n, gen, device):
        p = self.params
        return {"spread": p.draw("spread", gen), "strength": p.draw("strength", gen)}

    def apply(self, x, draws, gen):
        batch, channels, height, width = x.shape
        ink = ink_density(x)  # (B, 1, H, W)
        fibres = _fibres(gen, height, width)
        carry = CARRY_LOW + (CARRY_HIGH - CARRY_LOW) * fibres
        spread, nearest_ink = ink, x.float()
        for step in range(int(self.params.spread.high)):
            going = (step < draws["spread"]).view(-1, 1, 1, 1)
            grown = torch.maximum(spread, _filter3(spread, torch.maximum) * carry)
            spread = torch.where(going, grown, spread)
            nearest_ink = torch.where(going, _filter3(nearest_ink, torch.minimum), nearest_ink)
        density = F.avg_pool2d(ink, DENSITY_WINDOW, stride=1, padding=DENSITY_WINDOW // 2, count_include_pad=False)
        threshold = THRESHOLD_HIGH - (THRESHOLD_HIGH - THRESHOLD_LOW) * fibres
        threshold = threshold - 0.1 * (density * 2.0).clamp(0.0, 1.0)  # dense writing bleeds more
        shows = ((spread - threshold) / THRESHOLD_RAMP).clamp(0.0, 1.0)
        shows = torch.maximum(shows, GLOW * spread)  # and a faint wash wherever ink reached
        shows = 0.5 * shows + 0.5 * F.avg_pool2d(shows, 3, stride=1, padding=1, count_include_pad=False)
        halo = (shows - ink).clamp_min(0.0) * draws["strength"].float().view(-1, 1, 1, 1)
        bled = x + (halo * (nearest_ink - x.float()).clamp_max(0.0)).to(x.dtype)
        return torch.where(halo > 0, bled, x)


def _filter3(values: torch.Tensor, pick) -> torch.Tensor:
    """The 3×3 maximum (pick=torch.maximum) or minimum of every pixel's neighbourhood.

    Separable and elementwise: much faster than a stride-1 `max_pool2d` on the CPU, and exact.
    Replicated borders add no new values, so the edges see only their real neighbours.
    """
    padded = F.pad(values, (1, 1, 1, 1), mode="replicate")
    rows = pick(pick(padded[..., :, :-2], padded[..., :, 1:-1]), padded[..., :, 2:])
    return pick(pick(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _fibres(gen, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1]: how well the paper carries ink at each pixel, in short streaks."""
    noise = gen.uniform(2, height, width)
    across = F.avg_pool2d(noise[:, :1], (1, FIBRE_LENGTH), stride=1, padding=(0, FIBRE_LENGTH // 2), count_include_pad=False)
    along = F.avg_pool2d(noise[:, 1:], (FIBRE_LENGTH, 1), stride=1, padding=(FIBRE_LENGTH // 2, 0), count_include_pad=False)
    # Means of uniforms cluster around 0.5: stretch the stronger of the two back over [0, 1],
    # then square it, so well-carrying fibres are the exception.
    stretched = ((torch.maximum(across, along) - 0.55) * 3.0 + 0.5).clamp(0.0, 1.0)
    return stretched * stretched
