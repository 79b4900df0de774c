"""Dark spots and ink blots: small, dense, irregular marks of ink or dark brown."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.blobs import blob_inside, blob_shape, falloff
from manurestore.degradations.colour import rgb_to_channels
from manurestore.degradations.results import check_out, deliver, multiply
from manurestore.devices import to_device

__all__ = ["DARK_BROWN", "INK", "DarkSpots", "dark_spots"]

# What a fully dense spot multiplies the page by: ink, or a dark brown (mould, iron, old oil).
INK = (0.13, 0.12, 0.14)
DARK_BROWN = (0.34, 0.22, 0.12)
# Outline harmonics: low ones bend the blot, higher ones make it ragged.
SPOT_FREQUENCIES = (2, 3, 5, 7)
# A spot is never drawn smaller than this radius (pixels), so it covers at least one pixel centre.
MIN_RADIUS_PX = 0.75
# Spots are evaluated on patches around their centres, a few slots at a time, about this many
# patch values per piece: the cost follows the spots' area, never the page's.
PATCH_VALUES = 1 << 20


def dark_spots(
    x: Tensor,
    *,
    count: Tensor,
    centre_y: Tensor,
    centre_x: Tensor,
    radius: Tensor,
    density: Tensor,
    softness: Tensor,
    aspect: Tensor,
    angle: Tensor,
    wobble: Tensor,
    phase: Tensor,
    ink: Tensor,
    tint: Tensor,
    out: Tensor | None = None,
) -> Tensor:
    """count[i] small, dense, irregular dark spots on image i, each ink-coloured or dark brown.

    Spot k of image i has (B, K) values (K ≥ max(count) slots): `centre_y`, `centre_x`
    (fractions of the height and width), `radius` (a fraction of the shorter side, at least
    MIN_RADIUS_PX pixels), `density` (its opacity, 0–1), `softness` (edge fade, a fraction of
    the radius; never sharper than a pixel, so edges are anti-aliased), `aspect` (stretch along
    `angle`, radians) and `ink` (bool: INK, else DARK_BROWN); `wobble` and `phase` (B, K, 4)
    bend its outline at 2, 3, 5 and 7 turns; `tint` (B, 3) shifts each image's two colours. A
    spot multiplies the page by its colour at its opacity; where spots overlap the densest wins.

    The spots are computed at full resolution on patches around them, so they stay sharp on any
    page, at a cost that follows their area.

    >>> one = lambda value: torch.full((1, 1), value)
    >>> page = torch.full((1, 3, 32, 32), 0.9)
    >>> spotted = dark_spots(page, count=torch.tensor([1]), centre_y=one(0.5), centre_x=one(0.5),
    ...     radius=one(0.1), density=one(1.0), softness=one(0.01), aspect=one(1.0), angle=one(0.0),
    ...     wobble=torch.zeros(1, 1, 4), phase=torch.zeros(1, 1, 4), ink=torch.tensor([[True]]),
    ...     tint=torch.zeros(1, 3))
    >>> [round(v, 3) for v in spotted[0, :, 16, 16].tolist()], bool(spotted[0, :, 2, 2].eq(page[0, :, 2, 2]).all())
    ([0.117, 0.108, 0.126], True)
    """
    check_out(x, out)
    batch, channels, height, width = x.shape
    if x.numel() == 0 or radius.shape[1] == 0:
        return deliver(x.clone(), x, out)
    spots = {
        "count": count, "centre_y": centre_y, "centre_x": centre_x, "radius": radius, "density": density,
        "softness": softness, "aspect": aspect, "angle": angle, "wobble": wobble, "phase": phase, "ink": ink,
    }
    masks = spot_masks(spots, height, width, x.device)  # (B, 2, H, W): ink spots, brown spots
    tint = to_device(tint, x.device)
    colours = []
    for base in (INK, DARK_BROWN):
        colour = (torch.tensor(base, device=x.device) + tint.float()).clamp(0.0, 1.0)  # (B, 3)
        colours.append(rgb_to_channels(colour, channels).view(batch, channels, 1, 1))
    factor = 1.0 - masks[:, 0:1] * (1.0 - colours[0])
    factor = factor.mul_(1.0 - masks[:, 1:2] * (1.0 - colours[1]))
    return multiply(x, factor, out)


def spot_masks(spots: dict[str, Tensor], height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """(B, 2, H, W) float32 opacity of each image's ink spots (channel 0) and brown spots (1), on
    `device` (default: where the spots are).

    Each spot is evaluated on a square patch of pixels around its centre, wide enough for the
    farthest its outline can reach (the patch size changes no pixel's value), and the patches
    are scattered into the masks with a maximum, which is exact and order-free on every device.
    The patch size is worked out where the spots were drawn (the host, as `DarkSpots` draws
    them), so that an accelerator is never asked for it.
    """
    batch, slots = spots["radius"].shape
    device = torch.device(device) if device is not None else spots["radius"].device
    masks = torch.zeros(batch, 2 * height * width, device=device)
    half = _patch_half(spots, height, width)
    if half is None:
        return masks.view(batch, 2, height, width)
    spots = {key: to_device(value, device) for key, value in spots.items()}
    radius = (spots["radius"].float() * min(height, width)).clamp_min(MIN_RADIUS_PX)  # pixels
    aspect = spots["aspect"].float()
    active = torch.arange(slots, device=device).view(1, -1) < spots["count"].view(-1, 1)
    size = 2 * half + 1
    shape = blob_shape(spots["angle"], spots["wobble"], spots["phase"])
    centre_y = spots["centre_y"].float() * height  # pixels
    centre_x = spots["centre_x"].float() * width
    top = torch.floor(centre_y).long() - half  # (B, K): each patch's first row and column
    left = torch.floor(centre_x).long() - half
    # Never sharper than a pixel: an anti-aliased edge, in radius units.
    edge = torch.maximum(spots["softness"].float(), 1.0 / radius)
    opacity_scale = spots["density"].float() * active
    brown_offset = (~spots["ink"].bool()).long() * (height * width)  # brown spots go to the second mask
    offsets = torch.arange(size, device=device)
    step = max(1, PATCH_VALUES // max(1, batch * size * size))
    for first in range(0, slots, step):
        part = slice(first, min(slots, first + step))
        rows = top[:, part, None] + offsets  # (B, k, P) pixel rows and columns of the patches
        cols = left[:, part, None] + offsets
        dy = (rows.float() + 0.5 - centre_y[:, part, None])[..., :, None]  # (B, k, P, 1)
        dx = (cols.float() + 0.5 - centre_x[:, part, None])[..., None, :]  # (B, k, 1, P)
        inside = blob_inside(dy, dx, radius[:, part], aspect[:, part],
                             {key: value[:, part] for key, value in shape.items()}, SPOT_FREQUENCIES)
        t = (inside / edge[:, part, None, None]).clamp_(0.0, 1.0)
        opacity = t.mul(t).mul_(3.0 - 2.0 * t).mul_(opacity_scale[:, part, None, None])  # smoothstep
        on_page = ((rows >= 0) & (rows < height))[..., :, None] & ((cols >= 0) & (cols < width))[..., None, :]
        opacity = opacity * on_page
        index = rows.clamp(0, height - 1)[..., :, None] * width + cols.clamp(0, width - 1)[..., None, :]
        index = index + brown_offset[:, part, None, None]
        masks.scatter_reduce_(1, index.reshape(batch, -1), opacity.reshape(batch, -1), reduce="amax")
    return masks.view(batch, 2, height, width)


def _patch_half(spots: dict[str, Tensor], height: int, width: int) -> int | None:
    """Half the side of the patches, in pixels: the farthest any used spot's outline reaches
    (None when no image has a spot)."""
    slots = spots["radius"].shape[1]
    radius = (spots["radius"].float() * min(height, width)).clamp_min(MIN_RADIUS_PX)  # pixels
    aspect = spots["aspect"].float()
    stretch = torch.maximum(aspect, 1.0 / aspect)
    reach = radius * stretch * (1.0 + spots["wobble"].float().abs().sum(-1))  # farthest outline point
    active = torch.arange(slots, device=reach.device).view(1, -1) < spots["count"].view(-1, 1)
    if not bool(active.any()):
        return None
    return min(int(math.ceil(float(reach[active].max()))) + 1, max(height, width))


class DarkSpots(Degradation):
    """`count` small, dense dark spots and ink blots per image, irregular, some with soft edges.

    Each spot has its own place, radius (a fraction of the shorter side), density, edge softness,
    stretch and ragged outline, and is ink-coloured or dark brown (`ink_share` of them are ink);
    see `dark_spots`.

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((2, 3, 64, 64), 0.9)
    >>> spotted = DarkSpots(count=(6, 6))(page, ImageRandom([1, 2]))
    >>> bool((spotted < 0.5).any()), bool((spotted == page).float().mean() > 0.8)  # dark, and small
    (True, True)
    """

    name = "dark_spots"
    description = "small dense dark spots and ink blots, ink-coloured or dark brown, irregular, some soft-edged"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 60, integer=True), Field(description="spots per image")] = Range(2, 10)
        radius: Annotated[RangeValue, Bounds(0.0005, 0.05), Field(description="radius, fraction of the shorter side")] = Range(0.004, 0.03)
        density: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity of a spot")] = Range(0.7, 0.98)
        softness: Annotated[RangeValue, Bounds(0.01, 1.0), Field(description="edge fade, fraction of the radius")] = Range(0.05, 0.6)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="outline raggedness")] = Range(0.05, 0.25)
        ink_share: Annotated[float, Field(ge=0.0, le=1.0, description="fraction of spots in ink (the rest dark brown)")] = 0.6

    def sample(self, n, gen, device):
        p = self.params
        slots = max(int(p.count.high), 1)  # fixed by the params, never by the batch
        # On the host: the patch size follows from them, and they reach the device in one copy each.
        bend = falloff(len(SPOT_FREQUENCIES))

        def bent(values):  # the draws keep their order: each one advances the stream
            return values * bend.to(values.device)

        return {
            "count": p.draw("count", gen, host=True),
            "centre_y": gen.uniform(slots, host=True),
            "centre_x": gen.uniform(slots, host=True),
            "radius": p.draw("radius", gen, slots, host=True),
            "density": p.draw("density", gen, slots, host=True),
            "softness": p.draw("softness", gen, slots, host=True),
            "aspect": gen.uniform(slots, low=0.7, high=1.4, host=True),
            "angle": gen.uniform(slots, low=0.0, high=math.pi, host=True),
            "wobble": bent(gen.uniform(slots, len(SPOT_FREQUENCIES), host=True)) * p.draw("irregularity", gen, slots, host=True).unsqueeze(-1),
            "phase": gen.uniform(slots, len(SPOT_FREQUENCIES), high=2 * math.pi, host=True),
            "ink": gen.uniform(slots, host=True) < p.ink_share,
            "tint": gen.uniform(3, low=-0.04, high=0.04, host=True),
        }

    def apply(self, x, draws, gen, out=None):
        return dark_spots(x, **draws, out=out)
