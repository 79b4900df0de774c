"""Edge fading: the ink near a leaf's edges, handled and exposed most, has faded into the leaf."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import FIELD_GRID, grid_size, paper_colour, smooth_noise, smoothstep, upsample

# The fading front is not a straight band: its reach varies smoothly along the edges, between
# this fraction of `width` and all of it, through a random field of this many cells per side.
SHORTEST_REACH = 0.3
FRONT_CELLS = 12


class EdgeFading(Degradation):
    """Ink pulled towards the leaf's own colour near the borders, fully at the edge, fading inwards.

    The reach is `width` (a fraction of the shorter side), shortened here and there by a smooth
    random field so the front wanders. Within it each pixel darker than the local leaf colour (a
    max-filtered, smoothed estimate of the bare leaf) moves towards it by up to `strength`;
    the leaf itself, and everything farther than `width` from every border, is left untouched.

    >>> from manurestore.degradations.random import ImageRandom
    >>> op = EdgeFading(width=(0.2, 0.2), strength=(0.8, 0.8))
    >>> page = torch.full((1, 1, 64, 64), 0.8)
    >>> page[..., ::8, :] = 0.1  # lines of "ink"
    >>> out = op(page, ImageRandom([1]))
    >>> bool(out[0, 0, 0, 32] > 0.4), bool(out[0, 0, 32, 32] == page[0, 0, 32, 32])
    (True, True)
    """

    name = "edge_fading"
    description = "ink faded into the leaf towards its edges (contrast falls off from the borders)"

    class Params(ParamsModel):
        width: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="reach from the borders, fraction of the shorter side")] = Range(0.08, 0.3)
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="fading at the very edge (1 = ink gone)")] = Range(0.4, 0.85)

    def sample(self, n, gen, device):
        p = self.params
        return {
            "width": p.draw("width", gen),
            "strength": p.draw("strength", gen),
            "front": gen.uniform(FRONT_CELLS, FRONT_CELLS),
        }

    def apply(self, x, draws, gen):
        fade = fading(draws, *x.shape[-2:])  # (B, 1, H, W)
        lift = (paper_colour(x) - x.float()).clamp_min(0.0)  # only ink (darker than the leaf) moves
        faded = x + (fade * lift).to(x.dtype)
        return torch.where(fade > 0, faded, x)


def fading(draws, height: int, width: int) -> torch.Tensor:
    """How much each pixel's ink fades, (B, 1, H, W): `strength` at the edges, 0 beyond `width`."""
    device = draws["width"].device
    grid = grid_size(height, width, FIELD_GRID)
    front = smooth_noise(draws["front"], *grid)
    reach = upsample(SHORTEST_REACH + (1.0 - SHORTEST_REACH) * front, height, width)
    reach = reach * (draws["width"].float() * min(height, width)).view(-1, 1, 1, 1)  # pixels
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    to_border = torch.minimum(
        torch.minimum(ys, height - ys).view(1, 1, -1, 1),
        torch.minimum(xs, width - xs).view(1, 1, 1, -1),
    )  # pixels to the nearest border, (1, 1, H, W)
    closeness = 1.0 - to_border / reach.clamp_min(1e-6)
    return smoothstep(0.0, 1.0, closeness) * draws["strength"].float().view(-1, 1, 1, 1)
