"""Show-through: the page's own writing seen faintly, mirrored, through thin paper from the back."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.colour import ink_density, rgb_to_channels
from manurestore.degradations.fields import grid_size, smooth_noise, upsample
from manurestore.degradations.filters import gaussian_blur_sigma
from manurestore.degradations.results import check_out, deliver, multiply

__all__ = ["SHOW_GREY", "ShowThrough", "show_through"]

# What writing seen through the paper multiplies the page by at full strength: a neutral grey,
# the ink's colour lost in the paper.
SHOW_GREY = (0.42, 0.41, 0.40)
# Paper is not equally thin everywhere: a smooth random field on this many cells per side scales
# the strength between UNEVEN_LOW and 1.
UNEVEN_CELLS, UNEVEN_LOW = 4, 0.55
UNEVEN_GRID = 64


def show_through(
    x: Tensor,
    strength: Tensor | float,
    blur: Tensor | float,
    *,
    shift: Tensor | float = 0.0,
    max_blur: float | None = None,
    cells: Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """The page's own dark content, flipped left to right, blurred and lightened, multiplied
    faintly onto the page, as writing on the back of thin paper shows through.

    The content is `functional.ink_density` (0 on paper, 1 on solid ink, judged against the
    local paper colour, so stains and shading do not show through), mirrored, moved down by
    shift[i] of the height (up where negative: the back's lines need not fall on the front's),
    blurred by a Gaussian of blur[i] pixels, and multiplied into the page as SHOW_GREY at opacity
    strength[i]·content, scaled down to UNEVEN_LOW of it where the smooth random field of
    `cells` (B, n, n) is low. Pass the op's largest blur as `max_blur` (it sets the kernel's
    reach for every image, so an image blurs the same alone and in a batch); it defaults to the
    largest of `blur`.

    >>> page = torch.full((1, 3, 32, 32), 0.9)
    >>> page[..., 10:13, 2:12] = 0.1  # a stroke on the left
    >>> seen = show_through(page, torch.tensor([0.5]), torch.tensor([1.0]), max_blur=1.0)
    >>> right, left_paper = float(seen[0, 0, 11, 25]), float(seen[0, 0, 20, 5])
    >>> right < 0.8, round(left_paper, 2)  # it shows on the right, mirrored; bare paper elsewhere
    (True, 0.9)
    """
    check_out(x, out)
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return deliver(x.clone(), x, out)

    def each(values: Tensor | float) -> Tensor:
        return torch.as_tensor(values, device=x.device, dtype=torch.float32).expand(batch).reshape(-1)

    sigma = each(blur)
    reach = float(sigma.max()) if max_blur is None else float(max_blur)
    verso = _moved_down(ink_density(x).flip(-1), each(shift))
    verso = gaussian_blur_sigma(verso, sigma, max_sigma=reach)  # (B, 1, H, W)
    opacity = verso * each(strength).view(-1, 1, 1, 1)
    if cells is not None:
        field = smooth_noise(cells.float(), *grid_size(height, width, UNEVEN_GRID))
        opacity = opacity * upsample(UNEVEN_LOW + (1.0 - UNEVEN_LOW) * field, height, width)
    grey = rgb_to_channels(torch.tensor(SHOW_GREY, device=x.device), channels).view(1, channels, 1, 1)
    return multiply(x, 1.0 - opacity.clamp_(0.0, 1.0) * (1.0 - grey), out)


def _moved_down(planes: Tensor, shift: Tensor) -> Tensor:
    """(B, 1, H, W) planes moved down by shift[i] of the height (whole pixels), 0 where they left."""
    batch, _, height, width = planes.shape
    pixels = torch.round(shift * height).long().view(-1, 1)  # (B, 1)
    rows = torch.arange(height, device=planes.device).view(1, -1) - pixels  # where each row reads
    inside = ((rows >= 0) & (rows < height)).view(batch, 1, height, 1)
    index = rows.clamp(0, height - 1).view(batch, 1, height, 1).expand(batch, 1, height, width)
    return torch.gather(planes, 2, index) * inside


class ShowThrough(Degradation):
    """Show-through: the page's own writing, mirrored left to right, moved up or down by up to
    `shift` of the height, blurred by `blur` pixels and multiplied faintly (`strength`) onto the
    page, unevenly, as text on the back of thin paper shows through (`show_through`).

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((1, 1, 48, 48), 0.9)
    >>> page[..., 20:24, 4:20] = 0.1  # a stroke on the left
    >>> seen = ShowThrough(strength=(0.4, 0.4), shift=(0.0, 0.0))(page, ImageRandom([2]))
    >>> bool(seen[0, 0, 22, 30:42].max() < 0.9), bool(seen[0, 0, 40, 30] == page[0, 0, 40, 30])
    (True, True)
    """

    name = "show_through"
    description = "the page's own writing seen faintly, mirrored and blurred, through thin paper"

    class Params(ParamsModel):
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="opacity of the writing seen through")] = Range(0.08, 0.3)
        blur: Annotated[RangeValue, Bounds(0.0, 8.0), Field(description="blur of the writing seen through, sigma in pixels")] = Range(0.8, 2.5)
        shift: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="offset up or down, fraction of the height")] = Range(0.0, 0.02)

    def sample(self, n, gen, device):
        p = self.params
        return {
            "strength": p.draw("strength", gen),
            "blur": p.draw("blur", gen),
            "shift": p.draw("shift", gen),
            "shift_up": gen.bernoulli(0.5),
            "cells": gen.uniform(UNEVEN_CELLS, UNEVEN_CELLS),
        }

    def apply(self, x, draws, gen, out=None):
        shift = torch.where(draws["shift_up"], -draws["shift"], draws["shift"])
        return show_through(x, draws["strength"], draws["blur"], shift=shift, max_blur=float(self.params.blur.high),
                            cells=draws["cells"], out=out)
