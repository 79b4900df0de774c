"""Tide stains: water and coffee stains whose edge dried into a darker, more saturated rim."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.blobs import blob_inside, blob_shape, falloff
from manurestore.degradations.colour import rgb_to_channels
from manurestore.degradations.fields import grid_centres, grid_size, smooth_noise, upsample
from manurestore.degradations.results import check_out, deliver, multiply
from manurestore.devices import to_device

__all__ = ["COFFEE", "TideStains", "WATER", "tide_stains"]

# What a full-strength stain's inside multiplies the page by: clear water leaves a pale greyish
# yellow, coffee and tea a brown; each image's stains lie between the two (`hue`). The rim is
# the same colour squared: the same pigment, concentrated where the edge dried.
WATER = (0.86, 0.80, 0.66)
COFFEE = (0.64, 0.45, 0.26)
# The outline's harmonics: the higher ones make the rim ragged.
TIDE_FREQUENCIES = (2, 3, 5, 8, 13)
# A stain's shape (how far inside it each point lies, a smooth quantity) is computed on a grid of
# at most this many cells along the longer side and upsampled; the rim's sharp profile is then
# applied at full resolution, so rims stay crisp on any page size.
SHAPE_GRID = 96
# The rim's sharp outer edge fades over at least this many pixels (anti-aliasing).
MIN_EDGE_PX = 0.7


def tide_stains(
    x: Tensor,
    *,
    count: Tensor,
    centre_y: Tensor,
    centre_x: Tensor,
    radius: Tensor,
    intensity: Tensor,
    rim_width: Tensor,
    fill: Tensor,
    aspect: Tensor,
    angle: Tensor,
    wobble: Tensor,
    phase: Tensor,
    inner_line: Tensor,
    inner_strength: Tensor,
    variation: Tensor,
    hue: Tensor,
    out: Tensor | None = None,
) -> Tensor:
    """count[i] water or coffee stains on image i, each a lightly tinted inside within a darker,
    more saturated tide-line rim.

    Stain k of image i has (B, K) values: `centre_y`, `centre_x` (fractions of the height and
    width; a centre off the page leaves an arc), `radius` (a fraction of the shorter side),
    `intensity` (the rim's opacity, 0–1), `rim_width` (a fraction of the radius), `fill` (the
    inside's opacity as a fraction of the rim's), `aspect` and `angle` (stretch), and
    `inner_line` (where a fainter second line lies inside, in radii) with `inner_strength`;
    `wobble` and `phase` (B, K, 5) bend the outline at 2, 3, 5, 8 and 13 turns. `variation`
    (B, n, n) random cells make the rim's strength wander along it, and `hue` (B,) puts each
    image's stains between WATER (0) and COFFEE (1).

    The rim is sharp on the outside and fades inwards; the inside multiplies the page by the
    stain's colour, the rim by that colour squared (darker and more saturated). Overlapping
    stains combine as 1 − Π(1 − opacity). The shapes are computed on a coarse grid (SHAPE_GRID)
    and upsampled, the rims drawn at full resolution.

    >>> one = lambda value: torch.full((1, 1), value)
    >>> page = torch.full((1, 3, 96, 96), 0.9)
    >>> stained = tide_stains(page, count=torch.tensor([1]), centre_y=one(0.5), centre_x=one(0.5),
    ...     radius=one(0.4), intensity=one(0.8), rim_width=one(0.05), fill=one(0.3), aspect=one(1.0),
    ...     angle=one(0.0), wobble=torch.zeros(1, 1, 5), phase=torch.zeros(1, 1, 5),
    ...     inner_line=one(0.2), inner_strength=one(0.0), variation=torch.ones(1, 4, 4), hue=torch.ones(1))
    >>> rim, inside, outside = stained[0, 0, 48, 10], stained[0, 0, 48, 48], stained[0, 0, 48, 2]
    >>> bool(rim < inside < outside), round(float(outside), 2)
    (True, 0.9)
    """
    check_out(x, out)
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return deliver(x.clone(), x, out)
    opacity = tide_fields(
        {"count": count, "centre_y": centre_y, "centre_x": centre_x, "radius": radius, "intensity": intensity,
         "rim_width": rim_width, "fill": fill, "aspect": aspect, "angle": angle, "wobble": wobble,
         "phase": phase, "inner_line": inner_line, "inner_strength": inner_strength, "variation": variation},
        height, width,
    )  # (B, 2, H, W): inside, rim
    water, coffee = (torch.tensor(c, device=x.device) for c in (WATER, COFFEE))
    colour = torch.lerp(water, coffee, hue.float().view(-1, 1))  # (B, 3)
    colour = rgb_to_channels(colour, channels).view(batch, channels, 1, 1)
    factor = 1.0 - opacity[:, 0:1] * (1.0 - colour)
    factor = factor.mul_(1.0 - opacity[:, 1:2] * (1.0 - colour * colour))
    return multiply(x, factor, out)


def tide_fields(stains: dict[str, Tensor], height: int, width: int) -> Tensor:
    """(B, 2, H, W) float32 opacity of each image's stain insides (channel 0) and rims (1)."""
    batch, slots = stains["radius"].shape
    device = stains["radius"].device
    grid = grid_size(height, width, SHAPE_GRID)
    ys, xs = grid_centres(height, width, grid, device)
    radius = (stains["radius"].float() * min(height, width)).clamp_min(0.5)  # pixels
    pixel = 1.0 / radius  # one pixel, in radius units (B, K)
    rim = torch.maximum(stains["rim_width"].float(), pixel)  # widths in radius units
    edge = torch.maximum(0.3 * rim, MIN_EDGE_PX * pixel)  # the sharp outer fade
    shape = blob_shape(stains["angle"], stains["wobble"], stains["phase"])
    # Where they were drawn, the host as `TideStains` draws them: whether slots and inner lines
    # are worth computing is decided there, never read back from an accelerator.
    count, inner_on_host = stains["count"], stains["inner_strength"]
    inner_strength = to_device(inner_on_host, device)
    active = (torch.arange(slots, device=device).view(1, -1) < to_device(count, device).view(-1, 1)).float()
    strength = stains["intensity"].float() * active  # 0 for unused slots
    along_rim = upsample(0.55 + 0.45 * smooth_noise(stains["variation"].float(), *grid), height, width)
    keep_inside = torch.ones(batch, 1, height, width, device=device)  # Π(1 − opacity)
    keep_rim = torch.ones(batch, 1, height, width, device=device)
    used = int(count.max()) if batch else 0  # slots no image uses are skipped
    for k in range(min(slots, used)):  # a fixed number of slots, set by the params
        def stain(values: Tensor) -> Tensor:  # (B, K) → slot k as (B, 1, 1, 1)
            return values[:, k].float().view(-1, 1, 1, 1)

        dy = ys.view(1, 1, -1, 1) - stain(stains["centre_y"]) * height
        dx = xs.view(1, 1, 1, -1) - stain(stains["centre_x"]) * width
        inside = blob_inside(dy, dx, radius[:, k : k + 1], stains["aspect"][:, k : k + 1],
                             {key: value[:, k : k + 1] for key, value in shape.items()}, TIDE_FREQUENCIES)
        inside = upsample(inside, height, width)  # radius units, > 0 inside
        # The rim: sharp outside the outline, fading inwards over the rim's width; a fainter
        # second line inside where the water stood a while.
        depth = inside / stain(rim)  # rim widths inside the outline
        outer = inside / stain(edge)
        line = _bump(torch.where(inside >= 0, depth, outer.mul_(outer)))
        inner = inner_strength[:, k] * active[:, k]
        if bool(((inner_on_host[:, k] > 0) & (count > k)).any()):  # decided on the host
            second = depth.sub(stain(stains["inner_line"] / rim)).mul_(2.0)
            line = torch.maximum(line, _bump(second.mul_(second)).mul_(inner.view(-1, 1, 1, 1)))
        keep_rim.addcmul_(keep_rim, line.mul_(along_rim).mul_(stain(strength)), value=-1.0)
        wet = depth.mul_(0.5).clamp_(0.0, 1.0)  # the inside, from just within the rim
        wet = wet.mul(wet).mul_(wet.mul_(-2.0).add_(3.0))  # smoothstep
        keep_inside.addcmul_(keep_inside, wet.mul_(stain(stains["fill"]) * stain(strength)), value=-1.0)
    return torch.cat([keep_inside, keep_rim], dim=1).neg_().add_(1.0)


def _bump(u: Tensor) -> Tensor:
    """(1 − u/4)⁴ for u in [0, 4], 0 beyond: like e^(−u) near 0, but polynomial (cheap, and the
    same in every code path) and exactly 0 from u = 4. Works in place on `u`."""
    u = u.mul_(-0.25).add_(1.0).clamp_(min=0.0)
    u = u.mul_(u)
    return u.mul_(u)


class TideStains(Degradation):
    """`count` water or coffee stains per image with a darker, more saturated tide-line rim.

    Each stain is an irregular blob (radius a fraction of the shorter side, centre possibly off
    the page so that only an arc shows): a faint tint inside (`fill` of the rim's opacity) and
    a ragged rim of opacity up to `intensity`, sharp outside and fading inwards, sometimes with
    a fainter second line inside where the water stood for a while (`tide_stains`).

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((1, 3, 96, 96), 0.9)
    >>> stained = TideStains(count=(2, 2))(page, ImageRandom([3]))
    >>> bool(stained.min() < 0.8), bool(stained.max() <= 0.9)
    (True, True)
    """

    name = "tide_stains"
    description = "water and coffee stains: a faint tint inside a darker, more saturated tide-line rim"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 10, integer=True), Field(description="stains per image")] = Range(1, 3)
        radius: Annotated[RangeValue, Bounds(0.02, 2.0), Field(description="radius, fraction of the shorter side")] = Range(0.1, 0.35)
        intensity: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity of the rim")] = Range(0.3, 0.7)
        rim_width: Annotated[RangeValue, Bounds(0.005, 0.5), Field(description="rim width, fraction of the radius")] = Range(0.02, 0.07)
        fill: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity inside, fraction of the rim's")] = Range(0.2, 0.5)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="outline raggedness")] = Range(0.05, 0.2)

    def sample(self, n, gen, device):
        p = self.params
        slots = max(int(p.count.high), 1)  # fixed by the params, never by the batch
        bend = falloff(len(TIDE_FREQUENCIES)).to(device)
        return {
            "count": p.draw("count", gen, host=True),  # the slots worth computing are chosen on the host
            "centre_y": gen.uniform(slots, low=-0.15, high=1.15),
            "centre_x": gen.uniform(slots, low=-0.15, high=1.15),
            "radius": p.draw("radius", gen, slots),
            "intensity": p.draw("intensity", gen, slots),
            "rim_width": p.draw("rim_width", gen, slots),
            "fill": p.draw("fill", gen, slots),
            "aspect": gen.uniform(slots, low=0.75, high=1.35),
            "angle": gen.uniform(slots, low=0.0, high=math.pi),
            "wobble": gen.uniform(slots, len(TIDE_FREQUENCIES)) * bend * p.draw("irregularity", gen, slots).unsqueeze(-1),
            "phase": gen.uniform(slots, len(TIDE_FREQUENCIES), high=2 * math.pi),
            "inner_line": gen.uniform(slots, low=0.08, high=0.3),
            "inner_strength": gen.uniform(slots, low=-0.5, high=0.6, host=True).clamp_min(0.0),
            "variation": gen.uniform(6, 6),
            "hue": gen.uniform(),
        }

    def apply(self, x, draws, gen, out=None):
        return tide_stains(x, **draws, out=out)
