"""Batched helpers for the ink ops: where the ink is, a per-image blur, smooth random fields.

All work on (B, C, H, W) tensors on any device and any size down to 1×1, and compute each image
from its own pixels only, so the ops stay batch invariant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, as the core uses for grayscale pages.
LUMA = (0.299, 0.587, 0.114)
# The paper estimate is computed on a grid of at most this many cells along the longer side.
PAPER_GRID = 128
# Relative darkness below this is paper texture, not ink; above INK_FULL it is solid ink.
INK_START, INK_FULL = 0.08, 0.45


def wide(device: torch.device) -> torch.dtype:
    """float64 wherever the device has it: per-image trigonometry rounded back to float32 then
    comes out the same for an image alone and inside a batch (float32 `atan2`/`pow` on the CPU
    round differently in their vectorised and scalar paths)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def in_channels(rgb: Tensor, channels: int) -> Tensor:
    """(B, 3) colours as (B, channels): unchanged for RGB, their luma for grayscale."""
    if channels == 3:
        return rgb
    if channels == 1:
        return (rgb * torch.tensor(LUMA, device=rgb.device, dtype=rgb.dtype)).sum(dim=1, keepdim=True)
    raise ValueError(f"ink ops need 1 or 3 channels, got {channels}")


def luminance(x: Tensor) -> Tensor:
    """(B, 1, H, W) float32 brightness of a 1- or 3-channel batch."""
    x = x.float()
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def grid_size(height: int, width: int, limit: int) -> tuple[int, int]:
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def upsample(field: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    if field.shape[-2:] == (height, width):
        return field
    return F.interpolate(field, size=(height, width), mode=mode, align_corners=False)


def paper_level(lum: Tensor) -> Tensor:
    """A smooth (B, 1, H, W) estimate of the bare paper's brightness under the writing.

    Averaged onto a coarse grid, max-filtered (ink is darker than paper, so the brightest nearby
    cell is paper), smoothed, upsampled.
    """
    height, width = lum.shape[-2:]
    grid = grid_size(height, width, PAPER_GRID)
    small = lum if grid == (height, width) else F.adaptive_avg_pool2d(lum, grid)
    small = F.max_pool2d(small, kernel_size=5, stride=1, padding=2)
    small = F.avg_pool2d(small, kernel_size=5, stride=1, padding=2, count_include_pad=False)
    return upsample(small, height, width)


def ink_density(x: Tensor) -> Tensor:
    """(B, 1, H, W) in [0, 1]: 0 on bare paper, 1 on solid ink, judged against the local paper."""
    lum = luminance(x)
    paper = paper_level(lum)
    darkness = (paper - lum) / paper.clamp_min(0.05)
    t = ((darkness - INK_START) / (INK_FULL - INK_START)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gaussian_blur(x: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Blur each image of a (B, C, H, W) float batch with its own sigma (B,) in pixels.

    The kernel has `radius` taps each side for every image (fixed by the op's parameters, never
    by the batch), borders are replicated, and a sigma near 0 leaves the image as it is.
    """
    if radius <= 0:
        return x
    batch, channels, height, width = x.shape
    dtype = wide(x.device)
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=dtype)
    s = sigma.to(dtype).clamp_min(1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (taps / s) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).float()  # (B, 2r + 1)
    weight = kernel.repeat_interleave(channels, dim=0)  # one kernel per (image, channel) plane
    planes = x.float().reshape(1, batch * channels, height, width)
    planes = F.pad(planes, (radius, radius, 0, 0), mode="replicate")
    planes = F.conv2d(planes, weight.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    planes = F.pad(planes, (0, 0, radius, radius), mode="replicate")
    planes = F.conv2d(planes, weight.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return planes.view(batch, channels, height, width)


def smooth_field(cells: Tensor, height: int, width: int) -> Tensor:
    """Coarse (B, h, w) random values in [0, 1] as a smooth (B, 1, height, width) field."""
    return upsample(cells.unsqueeze(1), height, width, mode="bicubic").clamp(0.0, 1.0)


def kernel_radius(sigma_high: float) -> int:
    """Taps each side for a Gaussian of the given largest sigma (3 sigma)."""
    return int(math.ceil(3.0 * sigma_high))
