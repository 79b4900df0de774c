"""Faded ink: the writing washed out towards the paper, often more in some places than others."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.colour import INK_FULL, INK_START, luminance, paper_colour
from manurestore.degradations.fields import grid_size, smooth_noise, smoothstep, upsample
from manurestore.degradations.results import check_out, deliver

__all__ = ["FADE_CELLS", "FadedInk", "faded_ink"]

# How unevenly ink fades: a smooth random field on this many cells per side.
FADE_CELLS = 5
# The fade field is smooth: computed on a grid this coarse, then upsampled.
FADE_GRID = 64


def faded_ink(
    x: Tensor, strength: Tensor | float, *, unevenness: Tensor | float = 0.0, cells: Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Ink lightened towards the paper under it; the paper itself is kept.

    Each pixel moves towards the local paper colour (`functional.paper_colour`) by
    fade·ink·(paper − x), where ink is 0 on paper and 1 on solid ink, judged by how much darker
    than that paper the pixel is (as `functional.ink_density` judges it, from the same paper
    estimate), so the darkest strokes lighten most and bare paper not at all. The fade is strength[i] where the
    ink faded most and (1 − unevenness[i])·strength[i] where least, following the smooth random
    field of `cells` (B, n, n) values in [0, 1]; without `cells` it is even.

    >>> page = torch.full((1, 1, 32, 32), 0.9)
    >>> page[..., 8:12, 4:28] = 0.1  # a stroke
    >>> faded = faded_ink(page, torch.tensor([0.5]))
    >>> round(float(faded[0, 0, 10, 16]), 2), float(faded[0, 0, 20, 16])  # halfway to the paper; paper kept
    (0.5, 0.8999999761581421)
    """
    check_out(x, out)
    batch, _, height, width = x.shape
    if x.numel() == 0:
        return deliver(x.clone(), x, out)

    def each(values: Tensor | float) -> Tensor:
        return torch.as_tensor(values, device=x.device, dtype=torch.float32).expand(batch).reshape(-1, 1, 1, 1)

    fade = each(strength)
    if cells is not None:
        grid = grid_size(height, width, FADE_GRID)
        field = smooth_noise(cells.float(), *grid)  # (B, 1, h, w) in [0, 1]
        fade = upsample(fade * (1.0 - each(unevenness) * field), height, width)
    work = x.float()
    paper = paper_colour(work)
    paper_light = luminance(paper)
    ink = smoothstep(INK_START, INK_FULL, (paper_light - luminance(work)) / paper_light.clamp_min(0.05))
    lift = paper.sub_(work).clamp_min_(0.0)  # only what is darker than the paper moves
    faded = lift.mul_(fade * ink).add_(work)
    return deliver(faded, x, out)


class FadedInk(Degradation):
    """Washed-out writing: dark strokes lightened towards the paper colour, the paper kept, by
    `strength`, unevenly across the page by up to `unevenness` of it (`faded_ink`).

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.full((1, 3, 64, 64), 0.85)
    >>> page[..., 20:24, 8:56] = 0.1
    >>> faded = FadedInk(strength=(0.6, 0.6), unevenness=(0.0, 0.0))(page, ImageRandom([4]))
    >>> bool(faded[0, :, 22, 30].min() > 0.4), bool(faded[0, :, 40, 30].eq(page[0, :, 40, 30]).all())
    (True, True)
    """

    name = "faded_ink"
    scope = "page"
    description = "faded, washed-out ink: strokes lightened towards the paper (the paper kept), unevenly"

    class Params(ParamsModel):
        strength: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="fading where it is strongest (1 = ink gone)")] = Range(0.25, 0.65)
        unevenness: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="how much less it fades elsewhere, fraction of strength")] = Range(0.0, 0.7)

    def sample(self, n, gen, device):
        p = self.params
        return {
            "strength": p.draw("strength", gen),
            "unevenness": p.draw("unevenness", gen),
            "cells": gen.uniform(FADE_CELLS, FADE_CELLS),
        }

    def apply(self, x, draws, gen, out=None):
        return faded_ink(x, draws["strength"], unevenness=draws["unevenness"], cells=draws["cells"], out=out)
