"""Per-image quality metrics on (B, C, H, W) float images in [0, 1]: mse, psnr, ssim -> (B,) tensors.

Conventions (docs/models.md repeats them):
- Both images are clamped to [0, 1] first and computed in float32 (float64 stays float64).
- MSE: mean over channels and pixels.
- PSNR: 10·log10(1 / MSE) with data range 1, capped at PSNR_CAP_DB (100 dB) so identical images give 100, not inf.
- SSIM: Gaussian window 11×11, sigma 1.5, data range 1 (c1 = 0.01², c2 = 0.03²), no epsilon in the
  denominator; the SSIM map keeps the image size (kornia's padding='same', i.e. torch 'reflect' padding of
  5 pixels, border pixels included) and is averaged over channels and pixels. Images with a side of 5 px
  or less cannot be reflect-padded by 5, so they are replicate-padded instead.

Colour: `rgb_to_lab` (sRGB in [0, 1] → CIELAB under D65) and `delta_e76` (CIE76 ΔE*ab, the
Euclidean distance in Lab), used by `evaluate --safety` for the shift of a page's mean colour.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["PSNR_CAP_DB", "SSIM_WINDOW", "SSIM_SIGMA", "delta_e76", "mse", "psnr", "rgb_to_lab", "set_psnr", "ssim", "ssim_map"]

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


def set_psnr(mean_squared_error: float) -> float:
    """PSNR in dB of a whole set from its mean squared error, capped like `psnr`. A mean of
    per-image PSNRs lets one image the damage left untouched (the 100 dB cap) swamp the rest."""
    if mean_squared_error <= 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mean_squared_error))


@torch.no_grad()
def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image, (B,); see the module docstring for window, range and borders."""
    a, b = _prepare(a, b)
    return ssim_map(a, b).flatten(1).mean(dim=1)


# --------------------------------------------------------------------------- colour

# sRGB primaries to CIE XYZ under D65 (IEC 61966-2-1). The white point is the matrix's row sums,
# so sRGB white maps to exactly L* = 100, a* = b* = 0.
_SRGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)


@torch.no_grad()
def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (L*, a*, b*) of sRGB colours, channels on dim -3: (B, 3, H, W) or (3, H, W) → same shape.

    Input is gamma-encoded sRGB in [0, 1] (clamped first; computed in float64 and returned in the
    input's float dtype, float32 for integer input). The conversion is the standard one:
    linearise (c ≤ 0.04045: c / 12.92, else ((c + 0.055) / 1.055)^2.4), the sRGB → XYZ matrix
    under D65 normalised by its white, then L* = 116·f(Y) − 16, a* = 500·(f(X) − f(Y)),
    b* = 200·(f(Y) − f(Z)) with f(t) = t^(1/3) above (6/29)³ and t / (3·(6/29)²) + 4/29 below.

    White → (100, 0, 0), black → (0, 0, 0), pure sRGB red (1, 0, 0) → about (53.24, 80.09, 67.20).
    It agrees with kornia.color.rgb_to_lab to float32 precision.
    """
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"rgb_to_lab needs 3 channels on dim -3, got shape {tuple(rgb.shape)}")
    out_dtype = rgb.dtype if rgb.is_floating_point() else torch.float32
    c = rgb.double().clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_SRGB_TO_XYZ, dtype=torch.float64, device=rgb.device)
    xyz = torch.einsum("ij,...jhw->...ihw", matrix / matrix.sum(dim=1, keepdim=True), linear)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta**3, xyz.clamp(min=0.0) ** (1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(dim=-3)
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
    return lab.to(out_dtype)


def delta_e76(lab_a: torch.Tensor, lab_b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """CIE76 colour difference ΔE*ab: the Euclidean distance of two Lab colours along `dim`.

    About 1 is a just-noticeable difference between two flat patches; 2 is visible side by side.
    """
    return (lab_a.double() - lab_b.double()).pow(2).sum(dim=dim).sqrt()
