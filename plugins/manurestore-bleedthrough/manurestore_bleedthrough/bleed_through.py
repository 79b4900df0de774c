"""Bleed-through: the writing on the back of the leaf shows faintly through the paper."""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.functional import (
    gaussian_blur_sigma,
    ink_density,
    multiply_blend,
    rgb_to_channels,
    smooth_noise,
    wide_float,
)

# Aged ink seen through paper: a warm brown, multiplied into the page.
VERSO_BROWN = (0.50, 0.36, 0.22)
# The verso is laid slightly askew: a tilt of up to this many degrees either way.
MAX_TILT_DEGREES = 1.2
# How evenly it shows: a smooth random field on this many cells per side scales the opacity
# between UNEVEN_LOW and 1 (paper is thinner in some places than others).
UNEVEN_CELLS, UNEVEN_LOW = 5, 0.5


class BleedThrough(Degradation):
    """A faint, blurred, mirrored copy of writing, as if from the other side of the leaf.

    The verso is synthesised from the image itself: its own ink (found against a local paper
    estimate), mirrored left to right, shifted down or up by `shift` of the height (and sideways
    by up to as much of the width), tilted by up to ±1.2°, and blurred by `blur` pixels. Mirrored
    and offset, its lines fall between the page's own and read as another text. The page is then
    darkened only where that verso ink lies, by up to `strength`, towards an aged-ink brown, and
    unevenly, as paper thickness varies. Using the image's own ink (rather than another page of
    the batch) keeps each image's result independent of its neighbours.

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((1, 3, 64, 64), 0.9)
    >>> page[..., 10:14, 4:30] = 0.1  # a stroke on the left
    >>> out = BleedThrough(strength=(0.6, 0.6), shift=(0.0, 0.0))(page, ImageRandom([1]))
    >>> bool(out[0, :, 12, 34:60].mean() < 0.85)  # it shows through on the right
    True
    """

    name = "bleed_through"
    description = "faint mirrored brown writing showing through from the back of the leaf"

    class Params(ParamsModel):
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity of the verso's ink")] = Range(0.15, 0.45)
        blur: Annotated[RangeValue, Bounds(0.0, 10.0), Field(description="blur of the verso, sigma in pixels")] = Range(0.8, 2.5)
        shift: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="offset of the verso, fraction of the page's size")] = Range(0.01, 0.05)

    def sample(self, n, gen, device):
        p = self.params
        return {
            "strength": p.draw("strength", gen),
            "blur": p.draw("blur", gen),
            "shift": p.draw("shift", gen),
            "shift_up": gen.bernoulli(0.5),
            "sideways": gen.uniform(low=-1.0, high=1.0),  # fraction of `shift`, across the width
            "tilt": gen.uniform(low=-MAX_TILT_DEGREES, high=MAX_TILT_DEGREES),
            "tint": gen.uniform(3, low=-0.05, high=0.05),
            "uneven": gen.uniform(UNEVEN_CELLS, UNEVEN_CELLS),
        }

    def apply(self, x, draws, gen, out=None):
        # The last step is one multiplication, so it can write where the pipeline asks (`out`).
        batch, channels, height, width = x.shape
        verso = _mirrored(ink_density(x), draws)
        verso = gaussian_blur_sigma(verso, draws["blur"], max_sigma=float(self.params.blur.high))
        uneven = UNEVEN_LOW + (1.0 - UNEVEN_LOW) * smooth_noise(draws["uneven"], height, width)
        opacity = (verso * uneven * draws["strength"].float().view(-1, 1, 1, 1)).clamp(0.0, 1.0)
        brown = (torch.tensor(VERSO_BROWN, device=x.device) + draws["tint"].float()).clamp(0.0, 1.0)
        return multiply_blend(x, rgb_to_channels(brown, channels).view(batch, channels, 1, 1), opacity, out=out)


def _mirrored(ink: torch.Tensor, draws) -> torch.Tensor:
    """The (B, 1, H, W) ink flipped left to right, shifted and tilted, zero where it leaves the page."""
    batch, _, height, width = ink.shape
    device = ink.device
    sign = torch.where(draws["shift_up"], -1.0, 1.0).to(device)
    shift_y = draws["shift"].float() * height * sign  # pixels
    shift_x = draws["shift"].float() * draws["sideways"].float() * width
    tilt = draws["tilt"].to(wide_float(device)) * (math.pi / 180.0)
    cos, sin = torch.cos(tilt).float(), torch.sin(tilt).float()

    def col(value):  # (B,) → (B, 1, 1)
        return value.view(-1, 1, 1)

    # Output pixel centres relative to the page centre, in pixels.
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5 - height / 2).view(1, -1, 1)
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5 - width / 2).view(1, 1, -1)
    # Where each output pixel reads the recto: undo the shift, undo the tilt, mirror x.
    dy, dx = ys - col(shift_y), xs - col(shift_x)
    source_y = col(cos) * dy - col(sin) * dx
    source_x = -(col(cos) * dx + col(sin) * dy)
    grid = torch.stack([source_x * (2.0 / width), source_y * (2.0 / height)], dim=-1)  # (B, H, W, 2) in [-1, 1]
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
