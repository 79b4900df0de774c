"""Tide lines: water that soaked into the leaf dried back to a ragged brown rim."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import (
    FIELD_GRID,
    grid_centres,
    grid_size,
    multiply_blend,
    rgb_to_channels,
    smooth_noise,
    smoothstep,
    upsample,
    wide_float,
)
from manurestore_palmleaf.blobs import blob_field, outline_draws

# Many harmonics with falling amplitude: a tide line's outline is ragged at every scale.
TIDE_FREQUENCIES = (2.0, 3.0, 5.0, 8.0, 13.0, 21.0)
# The colour a full-strength rim multiplies the leaf by.
TIDE_BROWN = (0.62, 0.45, 0.26)
# The rim's strength varies along it: a smooth random field on this many cells per side.
VARIATION_CELLS = 6


class TideLines(Degradation):
    """`count` water marks: a ragged, darker brown rim around a lighter, slightly bleached inside.

    A mark is an irregular blob (radius a fraction of the shorter side; it may extend past the
    leaf, so only an arc shows). At its outline the leaf is browned by up to `intensity`, with a
    sharp outer edge and a gradual fade inwards; some marks have a fainter second line inside
    (the water receded in steps). Inside, the page is lightened towards white by a fraction of
    `intensity`. Shapes are computed on a coarse grid and upsampled.

    >>> from manurestore.degradations.random import ImageRandom
    >>> op = TideLines(count=(1, 1), radius=(0.4, 0.4), intensity=(0.6, 0.6))
    >>> page = torch.full((1, 3, 96, 96), 0.7)
    >>> out = op(page, ImageRandom([5]))
    >>> bool((out < 0.65).any()) and bool((out > 0.72).any())  # a dark rim and a light inside
    True
    """

    name = "tide_lines"
    description = "water damage: ragged brown tide lines around lighter, bleached interiors"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 10, integer=True), Field(description="water marks per image")] = Range(1, 2)
        radius: Annotated[RangeValue, Bounds(0.02, 3.0), Field(description="mark radius, fraction of the shorter side")] = Range(0.3, 0.9)
        intensity: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="browning of the rim")] = Range(0.3, 0.7)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="outline raggedness")] = Range(0.04, 0.16)

    def sample(self, n, gen, device):
        p = self.params
        slots = max(int(p.count.high), 1)
        return {
            "count": p.draw("count", gen),
            "radius": p.draw("radius", gen, slots),
            "intensity": p.draw("intensity", gen, slots),
            "centre_y": gen.uniform(slots, low=-0.15, high=1.15),
            "centre_x": gen.uniform(slots, low=-0.15, high=1.15),
            **outline_draws(gen, slots, p.irregularity, TIDE_FREQUENCIES),
            "rim_width": gen.uniform(slots, low=0.02, high=0.06),  # fraction of the radius
            "bleach": gen.uniform(slots, low=0.1, high=0.3),  # fraction of the intensity
            "inner_line": gen.uniform(slots, low=0.08, high=0.35),  # where a second line sits, in radii
            "inner_strength": gen.uniform(slots, low=-0.4, high=0.6).clamp_min(0.0),
            "variation": gen.uniform(VARIATION_CELLS, VARIATION_CELLS),
        }

    def apply(self, x, draws, gen):
        batch, channels, height, width = x.shape
        rim, bleach = tide_fields(draws, height, width)
        brown = rgb_to_channels(torch.tensor([TIDE_BROWN], device=x.device), channels).view(1, channels, 1, 1)
        lightened = torch.lerp(x, torch.ones_like(x), bleach.to(x.dtype))
        return multiply_blend(lightened, brown, rim)


def tide_fields(draws, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rim darkening, interior bleaching), each (B, 1, H, W) in [0, 1]."""
    device = draws["radius"].device
    batch = draws["radius"].shape[0]
    grid = grid_size(height, width, FIELD_GRID)
    ys, xs = grid_centres(height, width, grid, device)
    shorter = float(min(height, width))
    dtype = wide_float(device)  # the profiles are steep: keep them exact, see `wide_float`
    variation = smooth_noise(draws["variation"], *grid)
    variation = (0.45 + 0.55 * variation).to(dtype)
    keep = torch.ones(batch, 1, *grid, device=device, dtype=dtype)
    bleach = torch.zeros_like(keep)
    for slot in range(draws["radius"].shape[1]):
        active = (slot < draws["count"]).to(dtype).view(-1, 1, 1, 1)

        def per_mark(key):
            return draws[key][:, slot].to(dtype).view(-1, 1, 1, 1)

        inside = blob_field(
            ys, xs, draws["centre_y"][:, slot] * height, draws["centre_x"][:, slot] * width,
            draws["radius"][:, slot].float() * shorter, draws["aspect"][:, slot], draws["angle"][:, slot],
            draws["wobble"][:, slot], draws["phase"][:, slot], TIDE_FREQUENCIES,
        )  # (B, 1, gh, gw), radius units, > 0 inside
        width_r = per_mark("rim_width")
        outer = torch.exp(-((inside / (0.3 * width_r)) ** 2))  # sharp outside the outline
        inner = torch.exp(-inside.clamp_min(0.0) / width_r)  # gradual inwards
        line = torch.where(inside >= 0, inner, outer)
        second = torch.exp(-(((inside - per_mark("inner_line")) / (0.5 * width_r)) ** 2)) * per_mark("inner_strength")
        rim = (torch.maximum(line, second) * variation * per_mark("intensity") * active).clamp(0.0, 1.0)
        keep = keep * (1.0 - rim)
        wet = smoothstep(0.0, 4.0, inside / width_r)
        bleach = torch.maximum(bleach, wet * per_mark("bleach") * per_mark("intensity") * active)
    return upsample((1.0 - keep).float(), height, width), upsample(bleach.float(), height, width)
