"""Irregular blobs for holes and tide lines: a signed distance to an outline bent by harmonics.

Computed on a coarse grid in `wide_float` (float64 where the device has it): the outline is
sharp, so an ulp of difference between an image alone and inside a batch would show.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manurestore.degradations.base import Range
from manurestore.degradations.functional import wide_float


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

    `ys`, `xs` are the grid's points (`functional.grid_centres`); centres and radius are (B,) in
    pixels; `wobble` and `phase` are (B, F), one per outline harmonic. The result is
    (B, 1, gh, gw) in the `wide_float` dtype: 0 on the outline, > 0 inside, < 0 outside.
    """
    dtype = wide_float(ys.device)

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


def outline_draws(gen, slots: int, irregularity: Range, frequencies: tuple[float, ...]) -> dict[str, Tensor]:
    """Per-blob shape draws shared by holes and tide lines: (B, slots[, F]) tensors."""
    amount = irregularity.sample(gen, slots)
    # Higher harmonics wobble less, so the outline is rough but not spiky.
    falloff = torch.tensor([1.0 / math.sqrt(1 + j) for j in range(len(frequencies))], device=amount.device)
    return {
        "aspect": gen.uniform(slots, low=0.7, high=1.4),
        "angle": gen.uniform(slots, low=0.0, high=math.pi),
        "wobble": gen.uniform(slots, len(frequencies)) * falloff * amount.unsqueeze(-1),
        "phase": gen.uniform(slots, len(frequencies), high=2 * math.pi),
    }
