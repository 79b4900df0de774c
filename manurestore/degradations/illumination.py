"""Uneven illumination: a smooth light field over the page, as a scanner or camera lights it."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.fields import grid_centres, grid_size, upsample, wide_float
from manurestore.degradations.results import check_out, deliver, multiply

__all__ = ["Illumination", "illumination", "light_field"]

# The light field is smooth: a grid this coarse along the longer side, upsampled, is plenty.
LIGHT_GRID = 128


def illumination(
    x: Tensor,
    *,
    gradient: Tensor,
    gradient_angle: Tensor,
    vignette: Tensor,
    vignette_y: Tensor,
    vignette_x: Tensor,
    shadow: Tensor,
    shadow_width: Tensor,
    shadow_side: Tensor,
    shadow_offset: Tensor,
    shadow_bow: Tensor,
    out: Tensor | None = None,
) -> Tensor:
    """The page multiplied by a smooth light field (`light_field`): a gradient, vignetting and a
    soft shadow band along one edge, each image with its own (B,) values.

    >>> page = torch.ones(1, 1, 64, 64)
    >>> zero, one = torch.zeros(1), torch.ones(1)
    >>> lit = illumination(page, gradient=zero, gradient_angle=zero, vignette=torch.full((1,), 0.4),
    ...     vignette_y=zero, vignette_x=zero, shadow=zero, shadow_width=torch.full((1,), 0.1),
    ...     shadow_side=torch.zeros(1, dtype=torch.long), shadow_offset=zero, shadow_bow=zero)
    >>> corner, centre = float(lit[0, 0, 0, 0]), float(lit[0, 0, 32, 32])
    >>> round(corner, 2), centre > 0.99
    (0.61, True)
    """
    check_out(x, out)
    if x.numel() == 0:
        return deliver(x.clone(), x, out)
    light = {
        "gradient": gradient, "gradient_angle": gradient_angle, "vignette": vignette, "vignette_y": vignette_y,
        "vignette_x": vignette_x, "shadow": shadow, "shadow_width": shadow_width, "shadow_side": shadow_side,
        "shadow_offset": shadow_offset, "shadow_bow": shadow_bow,
    }
    return multiply(x, light_field(light, *x.shape[-2:]), out)


def light_field(light: dict[str, Tensor], height: int, width: int) -> Tensor:
    """(B, 1, H, W) float32 in (0, 1]: how much light each pixel gets, 1 where it is full.

    - gradient: light falls off linearly across the page in the direction `gradient_angle`
      (radians), by `gradient` at the darkest corner;
    - vignette: darkening `vignette` at the corners, growing with the squared distance from a
      centre moved by (`vignette_y`, `vignette_x`) halves of the page from the middle;
    - shadow: a soft band of darkness `shadow` along side `shadow_side` (0 top, 1 right,
      2 bottom, 3 left), `shadow_offset` of the page in from it, `shadow_width` of the page wide
      (a Gaussian profile), bowed by `shadow_bow` of the page towards its middle: a page curling
      away from the glass, or the gutter of a bound volume.
    """
    device = light["gradient"].device
    grid = grid_size(height, width, LIGHT_GRID)
    ys, xs = grid_centres(height, width, grid, device)
    v = (ys / height).view(1, 1, -1, 1)  # 0 … 1 down the page
    u = (xs / width).view(1, 1, 1, -1)  # 0 … 1 across

    def each(key: str) -> Tensor:
        return light[key].float().view(-1, 1, 1, 1)

    angle = light["gradient_angle"].to(wide_float(device))
    cos, sin = torch.cos(angle).float().view(-1, 1, 1, 1), torch.sin(angle).float().view(-1, 1, 1, 1)
    # The ramp's lowest and highest values lie at corners; scale it to 0 … 1 between them.
    ramp = (u - 0.5) * cos + (v - 0.5) * sin
    reach = 0.5 * (cos.abs() + sin.abs())
    ramp = (ramp + reach) / (2.0 * reach)  # 0 on the lit side, 1 on the dark one
    field = 1.0 - each("gradient") * ramp

    dv, du = v - 0.5 - 0.5 * each("vignette_y"), u - 0.5 - 0.5 * each("vignette_x")
    far_y, far_x = 0.5 + 0.5 * each("vignette_y").abs(), 0.5 + 0.5 * each("vignette_x").abs()
    corner = far_y * far_y + far_x * far_x  # the farthest corner's squared distance from the centre
    field = field * (1.0 - each("vignette") * (dv * dv + du * du) / corner)

    side = light["shadow_side"].long().view(-1, 1, 1, 1)
    depth = torch.where(side == 0, v, torch.where(side == 1, 1.0 - u, torch.where(side == 2, 1.0 - v, u)))
    along = torch.where(side % 2 == 0, u, v)  # position along the shadowed side, 0 … 1
    bend = along - 0.5
    centre = each("shadow_offset") + each("shadow_bow") * (0.25 - bend * bend) * 4.0
    band = (depth - centre) / each("shadow_width").clamp_min(1e-3)
    field = field * (1.0 - each("shadow") * torch.exp(-0.5 * band * band))
    return upsample(field, height, width)


class Illumination(Degradation):
    """Uneven light: a gradient across the page, darker corners and a soft shadow band near one
    edge (a curling page or a gutter), multiplied into the page (`illumination`).

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((2, 3, 64, 64), 0.9)
    >>> lit = Illumination()(page, ImageRandom([1, 2]))
    >>> bool(lit.min() < 0.85), bool(lit.max() <= 0.9)
    (True, True)
    """

    name = "illumination"
    scope = "page"
    description = "uneven light: a gradient across the page, darker corners, a soft shadow band by one edge"

    class Params(ParamsModel):
        gradient: Annotated[RangeValue, Bounds(0.0, 0.9), Field(description="darkening across the page, at its darker side")] = Range(0.05, 0.3)
        vignette: Annotated[RangeValue, Bounds(0.0, 0.9), Field(description="darkening at the corners")] = Range(0.05, 0.3)
        shadow: Annotated[RangeValue, Bounds(0.0, 0.95), Field(description="darkness of the shadow band")] = Range(0.0, 0.45)
        shadow_width: Annotated[RangeValue, Bounds(0.005, 0.5), Field(description="width of the shadow band, fraction of the page")] = Range(0.02, 0.1)

    def sample(self, n, gen, device):
        p = self.params
        return {
            "gradient": p.draw("gradient", gen),
            "gradient_angle": gen.uniform(low=0.0, high=2 * math.pi),
            "vignette": p.draw("vignette", gen),
            "vignette_y": gen.uniform(low=-0.4, high=0.4),
            "vignette_x": gen.uniform(low=-0.4, high=0.4),
            "shadow": p.draw("shadow", gen),
            "shadow_width": p.draw("shadow_width", gen),
            "shadow_side": gen.integers(0, 3),
            "shadow_offset": gen.uniform(low=0.0, high=0.08),
            "shadow_bow": gen.uniform(low=-0.03, high=0.03),
        }

    def apply(self, x, draws, gen, out=None):
        return illumination(x, **draws, out=out)
