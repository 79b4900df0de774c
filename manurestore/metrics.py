"""Per-image quality metrics on (B, C, H, W) float images in [0, 1]: mse, psnr, ssim -> (B,) tensors.

Conventions (docs/models.md repeats them):
- Both images are clamped to [0, 1] first and computed in float32 (float64 stays float64).
- MSE: mean over channels and pixels.
- PSNR: 10·log10(1 / MSE) with data range 1, capped at PSNR_CAP_DB (100 dB) so identical images give 100, not inf.
- SSIM: Gaussian window 11×11, sigma 1.5, data range 1 (c1 = 0.01², c2 = 0.03²), no epsilon in the
  denominator; the SSIM map keeps the image size (kornia's padding='same', i.e. torch 'reflect' padding of
  5 pixels, border pixels included) and is averaged over channels and pixels. Images with a side of 5 px
  or less cannot be reflect-padded by 5, so they are replicate-padded instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PSNR_CAP_DB", "SSIM_WINDOW", "SSIM_SIGMA", "mse", "psnr", "ssim", "ssim_map"]

PSNR_CAP_DB = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5  # fixed inside kornia.metrics.ssim


def _prepare(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"metrics need two (B, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    return a.to(dtype).clamp(0.0, 1.0), b.to(dtype).clamp(0.0, 1.0)


def ssim_map(a: torch.Tensor, b: torch.Tensor, window_size: int = SSIM_WINDOW) -> torch.Tensor:
    """SSIM map (B, C, H, W) of two float images; no clamping, autograd-friendly (the loss uses it).

    Reflect padding as kornia's padding='same'; replicate padding when a side is too small to reflect.
    """
    import kornia

    radius = window_size // 2
    h, w = a.shape[-2:]
    with torch.autocast(device_type=a.device.type, enabled=False):
        if min(h, w) > radius:
            return kornia.metrics.ssim(a, b, window_size, max_val=1.0, eps=0.0, padding="same")
        pad = (radius, radius, radius, radius)
        a = F.pad(a, pad, mode="replicate")
        b = F.pad(b, pad, mode="replicate")
        return kornia.metrics.ssim(a, b, window_size, max_val=1.0, eps=0.0, padding="valid")


@torch.no_grad()
def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, (B,)."""
    a, b = _prepare(a, b)
    return (a - b).pow(2).flatten(1).mean(dim=1)


@torch.no_grad()
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, (B,); data range 1; identical images give PSNR_CAP_DB."""
    err = mse(a, b)
    value = 10.0 * torch.log10(1.0 / err)  # inf where err == 0
    return value.clamp(max=PSNR_CAP_DB)


@torch.no_grad()
def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image, (B,); see the module docstring for window, range and borders."""
    a, b = _prepare(a, b)
    return ssim_map(a, b).flatten(1).mean(dim=1)
