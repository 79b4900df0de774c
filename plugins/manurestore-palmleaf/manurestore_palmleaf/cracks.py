"""Cracks: a palm leaf splits along its fibres, which run along the leaf's longer side."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import paper_colour, rgb_to_channels, smoothstep

# A crack's path is a random walk on this many knots along the leaf, plus finer jitter.
WALK_KNOTS = 48
JITTER_KNOTS = 160
# The walk's step, as a fraction of the leaf's width (the shorter side).
WALK_STEP = 0.006
# Where a crack is split open: a smooth random profile on this many knots along it.
SPLIT_KNOTS = 20
# Colour of a split that shows the dark table beneath.
GAP_DARK = (0.20, 0.15, 0.11)


class Cracks(Degradation):
    """`count` long, thin, wandering cracks along the leaf's longer side, found per image.

    A crack starts anywhere (often off an end of the leaf), runs for a fifth to the whole of the
    leaf's length, wanders across it as a random walk, and tapers at both ends. Along it the leaf
    is darkened by `darkness` over a thin line of `width` pixels with a soft halo. Over a
    `split` fraction of its length the leaf is split open: the gap, a little wider than the line,
    shows either the bare leaf colour (a bright gap that cuts ink strokes) or the dark table.

    >>> from manurestore.degradations.random import ImageRandom
    >>> op = Cracks(count=(2, 2), darkness=(0.4, 0.4))
    >>> leaf = torch.full((1, 3, 48, 256), 0.8)
    >>> bool((op(leaf, ImageRandom([3])) < 0.8).any())
    True
    """

    name = "cracks"
    description = "thin wandering cracks along the leaf's fibres (its longer side), some split open"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 20, integer=True), Field(description="cracks per image")] = Range(1, 4)
        darkness: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="darkening along the crack")] = Range(0.15, 0.45)
        width: Annotated[RangeValue, Bounds(0.2, 8.0), Field(description="line width in pixels")] = Range(0.6, 1.8)
        split: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="fraction of a crack's length split open")] = Range(0.1, 0.5)

    def sample(self, n, gen, device):
        p = self.params
        slots = max(int(p.count.high), 1)
        return {
            "count": p.draw("count", gen),
            "darkness": p.draw("darkness", gen, slots),
            "width": p.draw("width", gen, slots),
            "split": p.draw("split", gen, slots),
            "across": gen.uniform(slots, low=0.04, high=0.96),  # start, fraction of the leaf's width
            "start": gen.uniform(slots, low=-0.4, high=0.8),  # fraction of the length
            "length": gen.uniform(slots, low=0.2, high=1.0),
            # Uniform steps of unit variance: only exact arithmetic, so batch invariant to the bit.
            "walk": gen.uniform(slots, WALK_KNOTS, low=-1.7320508, high=1.7320508),
            "jitter": gen.uniform(slots, JITTER_KNOTS, low=-1.7320508, high=1.7320508),
            "split_profile": gen.uniform(slots, SPLIT_KNOTS),
            "dark_gap": gen.bernoulli(0.5, slots),
        }

    def apply(self, x, draws, gen):
        # Work with the leaf lying along the width: transpose tall pages and transpose back.
        tall = x.shape[-2] > x.shape[-1]
        page = x.transpose(-1, -2) if tall else x
        out = _crack(page, draws)
        return out.transpose(-1, -2) if tall else out


def _profile(knots: torch.Tensor, length: int) -> torch.Tensor:
    """(B, K) knot values → (B, length) linearly interpolated along the leaf."""
    batch, count = knots.shape
    line = F.interpolate(knots.reshape(batch, 1, count), size=length, mode="linear", align_corners=True)
    return line.view(batch, length)


def _crack(page: torch.Tensor, draws) -> torch.Tensor:
    """Cracks running along the width of a (B, C, S, L) page, S ≤ L."""
    batch, channels, across_px, length_px = page.shape
    device = page.device
    u = (torch.arange(length_px, device=device, dtype=torch.float32) + 0.5) / length_px  # (L,) in (0, 1)
    v = torch.arange(across_px, device=device, dtype=torch.float32).view(1, -1, 1) + 0.5  # (1, S, 1) pixels
    darkening = torch.zeros(batch, 1, across_px, length_px, device=device)
    gap_alpha = torch.zeros_like(darkening)
    gap_dark = torch.zeros_like(darkening)
    for slot in range(draws["width"].shape[1]):
        active = (slot < draws["count"]).float().view(-1, 1)
        start, length = draws["start"][:, slot : slot + 1], draws["length"][:, slot : slot + 1]
        along = (u.view(1, -1) - start) / length  # (B, L): 0 → 1 over the crack
        taper = (torch.minimum(along, 1.0 - along) / 0.12).clamp(0.0, 1.0) * active  # (B, L)
        walk = _profile(torch.cumsum(draws["walk"][:, slot], dim=1) * WALK_STEP, length_px)
        jitter = _profile(draws["jitter"][:, slot] * (0.25 / across_px), length_px)
        path = (draws["across"][:, slot : slot + 1] + walk + jitter) * across_px  # (B, L) pixels
        distance = (v - path.unsqueeze(1)).abs()  # (B, S, L)
        half = (draws["width"][:, slot : slot + 1] * taper * 0.5).unsqueeze(1)  # (B, 1, L)
        line = (half + 0.5 - distance).clamp(0.0, 1.0) * taper.unsqueeze(1)  # thins and fades at the ends
        spread = distance / (3.0 * half + 1.0)
        halo = taper.unsqueeze(1) / (1.0 + spread * spread) ** 2  # a soft shoulder, basic arithmetic only
        darkness = draws["darkness"][:, slot].view(-1, 1, 1)
        darkening = torch.maximum(darkening, (darkness * torch.maximum(line, 0.5 * halo)).unsqueeze(1))
        # Split open where the smooth random profile rises above 1 − split.
        opening = smoothstep(-0.08, 0.08, _profile(draws["split_profile"][:, slot], length_px) - 1.0 + draws["split"][:, slot : slot + 1])
        # The gap widens and narrows with the opening, so each split tapers to nothing at its ends.
        gap_half = (half * 1.5 + 0.4 * taper.unsqueeze(1)) * opening.unsqueeze(1)
        gap = ((gap_half + 0.5 - distance).clamp(0.0, 1.0) * (gap_half / 0.3).clamp(0.0, 1.0)).unsqueeze(1)
        dark = draws["dark_gap"][:, slot].float().view(-1, 1, 1, 1).expand_as(gap)
        gap_dark = torch.where(gap > gap_alpha, dark, gap_dark)
        gap_alpha = torch.maximum(gap_alpha, gap)
    out = page * (1.0 - darkening).to(page.dtype)
    table = rgb_to_channels(torch.tensor([GAP_DARK], device=device), channels).view(1, channels, 1, 1)
    gap_colour = torch.lerp(paper_colour(page), table.expand(batch, -1, -1, -1), gap_dark)
    return torch.lerp(out, gap_colour.to(page.dtype), gap_alpha.to(page.dtype))
