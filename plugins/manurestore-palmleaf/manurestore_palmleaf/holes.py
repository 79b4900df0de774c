"""Worm holes and chipped edges: the leaf is gone, and the dark table beneath shows through."""

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
    upsample,
    wide_float,
)
from manurestore_palmleaf.blobs import blob_field, outline_draws

# Outline harmonics: few and low, since a bored hole is roundish with a ragged edge.
HOLE_FREQUENCIES = (2.0, 3.0, 5.0, 7.0)
# The table's colour at brightness 1 before scaling: a dark, slightly warm grey.
TABLE_TINT = (1.0, 0.92, 0.80)
# The eaten edge around a hole is browned over this fraction of its radius (one pixel at least).
RIM_FRACTION = 0.3


class Holes(Degradation):
    """`count` worm holes inside the leaf and `chips` bites out of its edges.

    Each hole is an irregular blob (radius a fraction of the shorter side, outline bent by a few
    harmonics) with a crisp, anti-aliased edge; inside it the page shows the dark `background`
    (the table beneath), and the leaf around it is browned over a thin rim. A chip is the same
    kind of blob centred on a border, so it bites a notch out of the edge. All shapes are
    computed on a coarse grid as a signed distance and thresholded at full resolution.

    >>> from manurestore.degradations.random import ImageRandom
    >>> op = Holes(count=(2, 4), radius=(0.02, 0.05), chips=(1, 2))
    >>> leaf = torch.full((1, 3, 64, 256), 0.8)
    >>> bool((op(leaf, ImageRandom([7])) < 0.3).any())  # the table shows through
    True
    """

    name = "holes"
    description = "worm holes and chipped edges showing the dark table beneath (palm leaf)"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 30, integer=True), Field(description="worm holes per image")] = Range(1, 6)
        radius: Annotated[RangeValue, Bounds(0.002, 0.5), Field(description="hole radius, fraction of the shorter side")] = Range(0.025, 0.08)
        chips: Annotated[RangeValue, Bounds(0, 20, integer=True), Field(description="chips out of the edges per image")] = Range(0, 3)
        chip_radius: Annotated[RangeValue, Bounds(0.005, 0.5), Field(description="chip radius, fraction of the shorter side")] = Range(0.06, 0.2)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.6), Field(description="outline raggedness")] = Range(0.05, 0.25)
        background: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="brightness of the table showing through")] = Range(0.03, 0.18)

    def sample(self, n, gen, device):
        p = self.params
        holes, chips = max(int(p.count.high), 1), max(int(p.chips.high), 1)
        hole_shape = outline_draws(gen, holes, p.irregularity, HOLE_FREQUENCIES)
        chip_shape = outline_draws(gen, chips, p.irregularity, HOLE_FREQUENCIES)
        return {
            "count": p.draw("count", gen),
            "radius": p.draw("radius", gen, holes),
            "centre_y": gen.uniform(holes),
            "centre_x": gen.uniform(holes),
            **{f"hole_{key}": value for key, value in hole_shape.items()},
            "chips": p.draw("chips", gen),
            "chip_radius": p.draw("chip_radius", gen, chips),
            "chip_place": gen.uniform(chips),  # where along the perimeter
            "chip_depth": gen.uniform(chips, low=-0.6, high=0.3),  # centre offset inwards, in radii
            **{f"chip_{key}": value for key, value in chip_shape.items()},
            "background": p.draw("background", gen),
            "tint": gen.uniform(3, low=-0.05, high=0.05),
            "rim": gen.uniform(low=0.15, high=0.45),  # how much the eaten edge is browned
        }

    def apply(self, x, draws, gen):
        batch, channels, height, width = x.shape
        inside, in_rims = hole_distance(draws, height, width)  # (B, 1, H, W) each
        hole = (inside + 0.5).clamp(0.0, 1.0)  # one-pixel anti-aliased edge
        rim = (1.0 + in_rims).clamp(0.0, 1.0) * (1.0 - hole)
        rim_colour = rgb_to_channels(torch.tensor([[0.55, 0.40, 0.25]], device=x.device), channels)  # browned edge
        browned = multiply_blend(x, rim_colour.view(1, channels, 1, 1), draws["rim"].float().view(-1, 1, 1, 1) * rim)
        table = torch.tensor(TABLE_TINT, device=x.device) * (1.0 + draws["tint"].float())
        table = rgb_to_channels(table * draws["background"].float().view(-1, 1), channels).view(batch, channels, 1, 1)
        return torch.lerp(browned, table.to(x.dtype).expand_as(browned), hole.to(x.dtype))


def hole_distance(draws, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance to the nearest hole or chip edge, > 0 inside, each (B, 1, H, W).

    The first is in pixels; the second in rim widths (the browned band around each hole).
    """
    device = draws["radius"].device
    batch = draws["radius"].shape[0]
    grid = grid_size(height, width, FIELD_GRID)
    ys, xs = grid_centres(height, width, grid, device)
    shorter = float(min(height, width))
    best = torch.full((batch, 2, *grid), -1e4, device=device, dtype=wide_float(device))

    def merge(best, slot, prefix, cy, cx, radius_px, active):
        shape = {key: draws[f"{prefix}_{key}"][:, slot] for key in ("aspect", "angle")}
        field = blob_field(
            ys, xs, cy, cx, radius_px, shape["aspect"], shape["angle"],
            draws[f"{prefix}_wobble"][:, slot], draws[f"{prefix}_phase"][:, slot], HOLE_FREQUENCIES,
        )
        radius_px = radius_px.to(field.dtype).view(-1, 1, 1, 1)
        rim_px = (RIM_FRACTION * radius_px).clamp_min(1.0)
        field = torch.cat([field * radius_px, field * (radius_px / rim_px)], dim=1)  # radius units → pixels, rims
        field = torch.where(active.view(-1, 1, 1, 1), field, torch.full_like(field, -1e4))
        return torch.maximum(best, field)

    for slot in range(draws["radius"].shape[1]):
        active = slot < draws["count"]
        radius_px = draws["radius"][:, slot].float() * shorter
        cy, cx = draws["centre_y"][:, slot] * height, draws["centre_x"][:, slot] * width
        best = merge(best, slot, "hole", cy, cx, radius_px, active)

    # A chip sits on the perimeter, walked clockwise from the top-left corner.
    perimeter = 2.0 * (height + width)
    for slot in range(draws["chip_radius"].shape[1]):
        active = slot < draws["chips"]
        radius_px = draws["chip_radius"][:, slot].float() * shorter
        place = draws["chip_place"][:, slot].float() * perimeter
        inward = draws["chip_depth"][:, slot].float() * radius_px
        top, right = place < width, (place >= width) & (place < width + height)
        bottom = (place >= width + height) & (place < 2 * width + height)
        cy = torch.where(top, inward, torch.where(right, place - width, torch.where(bottom, height - inward, perimeter - place)))
        cx = torch.where(top, place, torch.where(right, width - inward, torch.where(bottom, 2 * width + height - place, inward)))
        best = merge(best, slot, "chip", cy, cx, radius_px, active)

    fields = upsample(best.float(), height, width)
    return fields[:, :1], fields[:, 1:]
