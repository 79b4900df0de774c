"""A page's colours: colours for 1- or 3-channel batches, brightness, bare paper, where the ink
is, and darkening paper towards a colour.

Ops darken paper towards a colour, fade ink towards the paper under it, or act only on the
writing; these give each of those a shared, batch-invariant estimate (an image's result uses its
own pixels only).

>>> page = torch.full((1, 3, 64, 64), 0.9)
>>> page[..., 20:24, 8:40] = 0.1  # a stroke
>>> ink = ink_density(page)
>>> float(ink[0, 0, 22, 20]), float(ink[0, 0, 50, 50])
(1.0, 0.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from manurestore.degradations.fields import grid_size, smoothstep, upsample

# ITU-R BT.601 luma weights: a grayscale page changes as its RGB version would look in gray.
LUMA = (0.299, 0.587, 0.114)
# The paper estimate is computed on a grid this coarse: max-filtering it there removes strokes.
PAPER_GRID = 128
# Relative darkness below INK_START is paper texture, not ink; above INK_FULL it is solid ink.
INK_START, INK_FULL = 0.08, 0.45


def rgb_to_channels(rgb: Tensor, channels: int) -> Tensor:
    """(…, 3) RGB colours for a batch of `channels` channels: unchanged for 3, their luma (…, 1)
    for 1, so a grayscale page stays grayscale under a coloured op.

    >>> rgb_to_channels(torch.tensor([1.0, 0.5, 0.0]), 1)
    tensor([0.5925])
    """
    if channels == 3:
        return rgb
    if channels == 1:
        return (rgb * torch.tensor(LUMA, device=rgb.device, dtype=rgb.dtype)).sum(dim=-1, keepdim=True)
    raise ValueError(f"expected 1 or 3 channels, got {channels}")


def luminance(x: Tensor) -> Tensor:
    """(B, 1, H, W) float32 brightness (luma) of a 1- or 3-channel batch."""
    x = x.float()
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def paper_colour(x: Tensor) -> Tensor:
    """A smooth (B, C, H, W) float32 estimate of the bare paper's (or leaf's) colour under the
    writing.

    The page is averaged onto a coarse grid, max-filtered there (ink is darker than paper, so the
    brightest nearby cell is paper) and smoothed, then upsampled.
    """
    height, width = x.shape[-2:]
    grid = grid_size(height, width, PAPER_GRID)
    small = x.float()
    if grid != (height, width):
        small = F.adaptive_avg_pool2d(small, grid)
    small = _max_filter(small, radius=2)
    small = F.avg_pool2d(small, kernel_size=5, stride=1, padding=2, count_include_pad=False)
    return upsample(small, height, width)


def _max_filter(x: Tensor, radius: int) -> Tensor:
    """The maximum over a (2·radius + 1)² window, edges padded with −∞: `F.max_pool2d`'s result,
    but as separable shifted maxima, which run many times faster on the CPU than its 2-D kernel."""
    for dim in (-2, -1):
        length = x.shape[dim]
        pad = [0, 0, radius, radius] if dim == -2 else [radius, radius, 0, 0]
        padded = F.pad(x, pad, value=float("-inf"))
        result = padded.narrow(dim, 0, length)
        for shift in range(1, 2 * radius + 1):
            result = torch.maximum(result, padded.narrow(dim, shift, length))
        x = result
    return x


def ink_density(x: Tensor) -> Tensor:
    """(B, 1, H, W) float32 in [0, 1]: 0 on bare paper, 1 on solid ink, judged by how much darker
    each pixel is than the paper around it (so stains and shading are not taken for ink)."""
    lum = luminance(x)
    paper = paper_colour(lum)
    darkness = (paper - lum) / paper.clamp_min(0.05)
    return smoothstep(INK_START, INK_FULL, darkness)


def multiply_blend(x: Tensor, colour: Tensor, opacity: Tensor, *, out: Tensor | None = None) -> Tensor:
    """x·(1 − opacity·(1 − colour)) in x's dtype: the page multiplied by `colour` where
    `opacity` is 1 and untouched where it is 0, as stains, ink and water darken paper.

    `colour` is (B or 1, C, 1, 1) (see `rgb_to_channels`), `opacity` (B, 1, H, W); the factor is
    computed in their dtype and cast to x's once. With `out` (which may be `x`) the result is
    written there.

    >>> page = torch.ones(1, 3, 2, 2)
    >>> brown = torch.tensor([0.6, 0.4, 0.2]).view(1, 3, 1, 1)
    >>> multiply_blend(page, brown, torch.full((1, 1, 2, 2), 0.5))[0, :, 0, 0]
    tensor([0.8000, 0.7000, 0.6000])
    """
    factor = (1.0 - opacity * (1.0 - colour)).to(x.dtype)
    return torch.mul(x, factor) if out is None else torch.mul(x, factor, out=out)
