"""Smooth per-pixel fields for ops: coarse grids, upsampling, smooth random noise, smoothstep.

Smooth damage (stains, water marks, fading fronts) changes little from one pixel to the next, so
it is computed on a coarse grid and upsampled: the cost and the look then do not depend on the
scan's resolution. Everything here works on (B, C, H, W) tensors on any device, for any size
down to 1×1, and treats each image on its own, so ops built on it stay batch invariant.

>>> grid = grid_size(600, 900, FIELD_GRID)
>>> grid
(256, 384)
>>> field = smooth_noise(torch.rand(2, 6, 6), *grid)  # 6×6 random cells, smooth over the grid
>>> tuple(upsample(field, 600, 900).shape)
(2, 1, 600, 900)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# A grid of at most this many cells along the longer side is fine enough for smooth damage.
FIELD_GRID = 384


def wide_float(device: torch.device | str) -> torch.dtype:
    """float64 wherever the device has it (not on MPS): the dtype for sharp geometry.

    On the CPU a few float32 functions (`atan2`, `pow`, `exp`) round differently in their
    vectorised and scalar code paths, so one pixel can come out an ulp apart for an image alone
    and inside a batch; a sharp edge computed from it makes that visible. Computed in float64
    and rounded back to float32, the difference vanishes.
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def grid_size(height: int, width: int, limit: int, step: float = 1.0) -> tuple[int, int]:
    """(rows, columns) of a grid with at most `limit` cells along the longer side, the image's
    aspect kept and never more cells than pixels; `step` > 1 makes each cell that much wider."""
    scale = min(1.0, limit / max(height, width)) / step
    return max(1, round(height * scale)), max(1, round(width * scale))


def grid_centres(height: int, width: int, grid: tuple[int, int], device: torch.device | str) -> tuple[Tensor, Tensor]:
    """Centres of the grid's cells in the full image's pixel units: float32 (rows,), (columns,)."""
    grid_h, grid_w = grid
    ys = (torch.arange(grid_h, device=device, dtype=torch.float32) + 0.5) * (height / grid_h)
    xs = (torch.arange(grid_w, device=device, dtype=torch.float32) + 0.5) * (width / grid_w)
    return ys, xs


def upsample(field: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    """A coarse (B, C, h, w) field at full size (`mode` as `F.interpolate`); itself when it is
    already full size."""
    if field.shape[-2:] == (height, width):
        return field
    return F.interpolate(field, size=(height, width), mode=mode, align_corners=False)


def smooth_noise(cells: Tensor, height: int, width: int) -> Tensor:
    """Random (B, h, w) cell values in [0, 1] as a smooth (B, 1, height, width) field in [0, 1].

    Bicubic, so the field has no creases at the cells' edges; draw the cells in `sample`
    (`gen.uniform(h, w)`): their number is then fixed by the op, never by the image size.
    """
    return upsample(cells.unsqueeze(1), height, width, mode="bicubic").clamp(0.0, 1.0)


def smoothstep(edge0: float, edge1: float, value: Tensor) -> Tensor:
    """0 below `edge0`, 1 above `edge1`, and the smooth cubic 3t² − 2t³ between: a soft edge."""
    t = ((value - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
