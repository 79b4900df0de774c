"""Small batched helpers shared by the palm-leaf ops: colour, paper estimate, coarse grids, blobs.

Everything here works on (B, C, H, W) tensors on any device, for any size down to 1×1, and
computes each image from its own pixels only, so the ops stay batch invariant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, as the core uses for grayscale pages.
LUMA = (0.299, 0.587, 0.114)
# Smooth damage (stains, tide lines, fading fronts) is computed on a grid at most this many cells
# along the longer side and upsampled, so cost and look do not depend on the scan's resolution.
FIELD_GRID = 384
# The paper estimate is computed on a coarser grid: max-filtering it removes ink strokes.
PAPER_GRID = 128


def wide(device: torch.device) -> torch.dtype:
    """The dtype for shape geometry: float64 wherever the device has it.

    On the CPU, some float32 functions (`atan2`, `pow`) round differently in their vectorised and
    scalar code paths, so the same pixel could differ by an ulp between an image alone and inside
    a batch, and a sharp edge turns that into a visible difference. In float64 those differences
    vanish when the result is rounded back to float32.
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def in_channels(rgb: Tensor, channels: int) -> Tensor:
    """(B, 3) colours as (B, channels): unchanged for RGB, their luma for grayscale."""
    if channels == 3:
        return rgb
    if channels == 1:
        return (rgb * torch.tensor(LUMA, device=rgb.device, dtype=rgb.dtype)).sum(dim=1, keepdim=True)
    raise ValueError(f"palm-leaf ops need 1 or 3 channels, got {channels}")


def grid_size(height: int, width: int, limit: int) -> tuple[int, int]:
    """A grid of at most `limit` cells along the longer side, the page's aspect kept."""
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def grid_centres(height: int, width: int, grid: tuple[int, int], device: torch.device) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates of the grid's cells, in the full image's pixel units: (gh,), (gw,)."""
    grid_h, grid_w = grid
    ys = (torch.arange(grid_h, device=device, dtype=torch.float32) + 0.5) * (height / grid_h)
    xs = (torch.arange(grid_w, device=device, dtype=torch.float32) + 0.5) * (width / grid_w)
    return ys, xs


def upsample(field: Tensor, height: int, width: int) -> Tensor:
    """A coarse (B, C, gh, gw) field at full size (bilinear); unchanged when already full size."""
    if field.shape[-2:] == (height, width):
        return field
    return F.interpolate(field, size=(height, width), mode="bilinear", align_corners=False)


def smooth_noise(noise: Tensor, height: int, width: int) -> Tensor:
    """Coarse (B, 1, h, w) random values as a smooth (B, 1, height, width) field (bicubic)."""
    field = F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False)
    return field.clamp(0.0, 1.0)


def paper_colour(x: Tensor) -> Tensor:
    """A smooth (B, C, H, W) float32 estimate of the bare leaf's colour under the writing.

    The page is averaged onto a coarse grid, max-filtered (ink is darker than the leaf, so the
    brightest nearby cell is leaf) and smoothed, then upsampled.
    """
    height, width = x.shape[-2:]
    grid = grid_size(height, width, PAPER_GRID)
    small = x.float()
    if grid != (height, width):
        small = F.adaptive_avg_pool2d(small, grid)
    small = F.max_pool2d(small, kernel_size=5, stride=1, padding=2)
    small = F.avg_pool2d(small, kernel_size=5, stride=1, padding=2, count_include_pad=False)
    return upsample(small, height, width)


def smoothstep(edge0: float, edge1: float, value: Tensor) -> Tensor:
    t = ((value - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blob_field(
    ys: Tensor,
    xs: Tensor,
    centre_y: Tensor,
    centre_x: Tensor,
    radius: Tensor,
    aspect: Tensor,
    angle: Tensor,
    wobble: Tensor,
    phase: Tensor,
    frequencies: tuple[float, ...],
) -> Tensor:
    """How far inside one irregular blob each grid point lies, in units of its radius.

    Centres and radius are (B,) in pixels; `wobble` and `phase` are (B, F), one per outline
    harmonic. The result is (B, 1, gh, gw) in the `wide` dtype: 0 on the outline, > 0 inside,
    < 0 outside.
    """
    dtype = wide(ys.device)

    def col(value: Tensor) -> Tensor:  # (B,) → (B, 1, 1, 1)
        return value.to(dtype).view(-1, 1, 1, 1)

    dy = ys.to(dtype).view(1, 1, -1, 1) - col(centre_y)
    dx = xs.to(dtype).view(1, 1, 1, -1) - col(centre_x)
    cos, sin = torch.cos(col(angle)), torch.sin(col(angle))
    along = (dx * cos + dy * sin) / col(aspect)
    across = (dy * cos - dx * sin) * col(aspect)
    rho = torch.sqrt(along * along + across * across)
    distance = rho / col(radius).clamp_min(1e-3)
    # The outline's harmonics sin(kθ + φ) without atan2: (cos θ + i sin θ)^k by repeated complex
    # multiplication, then sin(kθ + φ) = sin kθ · cos φ + cos kθ · sin φ. Cheaper than
    # trigonometry on every grid point, and plain arithmetic.
    unit_c, unit_s = along / rho.clamp_min(1e-12), across / rho.clamp_min(1e-12)  # 0, 0 at the centre
    power_c, power_s = torch.ones_like(unit_c), torch.zeros_like(unit_s)
    orders = {int(k): j for j, k in enumerate(frequencies)}
    assert all(k == f for k, f in zip(orders, frequencies)), "outline frequencies must be whole numbers"
    outline = torch.ones_like(distance)
    for order in range(1, max(orders, default=0) + 1):
        power_c, power_s = power_c * unit_c - power_s * unit_s, power_c * unit_s + power_s * unit_c
        if order in orders:
            j = orders[order]
            phase_j = phase[:, j].to(dtype)
            harmonic = power_s * col(torch.cos(phase_j)) + power_c * col(torch.sin(phase_j))
            outline = outline + col(wobble[:, j]) * harmonic
    return outline - distance


def outline_draws(gen, slots: int, irregularity: tuple[float, float], frequencies: tuple[float, ...]) -> dict[str, Tensor]:
    """Per-blob shape draws shared by holes and tide lines: (B, slots[, F]) tensors."""
    low, high = irregularity
    amount = gen.uniform(slots, low=low, high=high)
    # Higher harmonics wobble less, so the outline is rough but not spiky.
    falloff = torch.tensor([1.0 / math.sqrt(1 + j) for j in range(len(frequencies))], device=amount.device)
    return {
        "aspect": gen.uniform(slots, low=0.7, high=1.4),
        "angle": gen.uniform(slots, low=0.0, high=math.pi),
        "wobble": gen.uniform(slots, len(frequencies)) * falloff * amount.unsqueeze(-1),
        "phase": gen.uniform(slots, len(frequencies), high=2 * math.pi),
    }
