"""Stains: soft, irregular brown blotches (water, oil, foxing) that darken the page."""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.yellowing import LUMA

# Stains are smooth, so their mask is computed on a small grid and upsampled: the cost and the
# look do not depend on the page size.
MASK_GRID = 192
# Harmonics of the outline: together they bend a disc into an irregular blob.
OUTLINE_FREQUENCIES = (2.0, 3.0, 5.0)
STAIN_BROWN = (0.60, 0.42, 0.22)


class Stains(Degradation):
    """`count` blotches per image, each with its own centre, radius, outline and intensity.

    Radius is a fraction of the image's shorter side; a stain multiplies the page by a brown
    colour, so it darkens the paper and browns it, with an edge that fades over `softness`.

    >>> op = Stains(count=(3, 3), intensity=(0.5, 0.5))
    """

    name = "stains"
    description = "1–5 soft, irregular brown blotches per image"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 20, integer=True), Field(description="stains per image")] = Range(1, 5)
        radius: Annotated[RangeValue, Bounds(0.005, 1.0), Field(description="radius, fraction of the shorter side")] = Range(0.05, 0.2)
        intensity: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="darkening at the centre")] = Range(0.3, 0.7)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.8), Field(description="outline wobble")] = Range(0.1, 0.35)
        softness: Annotated[RangeValue, Bounds(0.01, 2.0), Field(description="edge fade, fraction of the radius")] = Range(0.15, 0.5)

    def sample(self, n, gen, device):
        p = self.params
        slots = int(p.count.high)
        blob = lambda value: gen.uniform(max(slots, 1), low=float(value.low), high=float(value.high))  # noqa: E731
        return {
            "count": p.count.sample(gen, integer=True),
            "centre_y": gen.uniform(max(slots, 1)),
            "centre_x": gen.uniform(max(slots, 1)),
            "radius": blob(p.radius),
            "intensity": blob(p.intensity),
            "softness": blob(p.softness),
            "aspect": gen.uniform(max(slots, 1), low=0.6, high=1.4),
            "angle": gen.uniform(max(slots, 1), low=0.0, high=math.pi),
            "wobble": gen.uniform(max(slots, 1), len(OUTLINE_FREQUENCIES)) * blob(p.irregularity).unsqueeze(-1),
            "phase": gen.uniform(max(slots, 1), len(OUTLINE_FREQUENCIES), high=2 * math.pi),
            "tint": gen.uniform(3, low=-0.06, high=0.06),
        }

    def apply(self, x, draws, gen):
        batch, channels, height, width = x.shape
        mask = stain_mask(draws, height, width)  # (B, 1, H, W), 0 = clean, 1 = full stain
        colour = (torch.tensor(STAIN_BROWN, device=x.device) + draws["tint"]).clamp(0, 1)  # (B, 3)
        if channels == 1:
            colour = (colour * torch.tensor(LUMA, device=x.device)).sum(dim=1, keepdim=True)
        darkening = (1.0 - colour).view(batch, channels, 1, 1)
        return x * (1.0 - mask * darkening).to(x.dtype)


def stain_mask(draws, height: int, width: int) -> torch.Tensor:
    """Union of the blotches as a (B, 1, height, width) float32 opacity map."""
    device = draws["radius"].device
    scale = min(1.0, MASK_GRID / max(height, width))
    grid_h, grid_w = max(1, round(height * scale)), max(1, round(width * scale))
    # Pixel-centre coordinates of the small grid, in the full image's pixel units.
    ys = (torch.arange(grid_h, device=device, dtype=torch.float32) + 0.5) * (height / grid_h)
    xs = (torch.arange(grid_w, device=device, dtype=torch.float32) + 0.5) * (width / grid_w)
    shorter = float(min(height, width))

    def per_blob(name):  # (B, K) → (B, K, 1, 1)
        return draws[name].float()[..., None, None]

    dy = ys.view(1, 1, -1, 1) - per_blob("centre_y") * height
    dx = xs.view(1, 1, 1, -1) - per_blob("centre_x") * width
    cos, sin = torch.cos(per_blob("angle")), torch.sin(per_blob("angle"))
    along = (dx * cos + dy * sin) / per_blob("aspect")
    across = (dy * cos - dx * sin) * per_blob("aspect")
    radius = per_blob("radius") * shorter
    distance = torch.sqrt(along**2 + across**2) / radius
    theta = torch.atan2(across, along)
    outline = torch.ones_like(theta)
    for j, frequency in enumerate(OUTLINE_FREQUENCIES):
        wobble = draws["wobble"][..., j, None, None].float()
        phase = draws["phase"][..., j, None, None].float()
        outline = outline + wobble * torch.sin(frequency * theta + phase)
    edge = ((outline - distance) / per_blob("softness")).clamp(0.0, 1.0)
    opacity = edge * edge * (3.0 - 2.0 * edge) * per_blob("intensity")  # smoothstep fade
    slots = draws["radius"].shape[1]
    active = torch.arange(slots, device=device).view(1, -1) < draws["count"].view(-1, 1)
    opacity = opacity * active[..., None, None]
    mask = 1.0 - torch.prod(1.0 - opacity, dim=1, keepdim=True)
    if (grid_h, grid_w) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return mask
