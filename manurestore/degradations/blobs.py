"""Irregular blobs for spot and stain ops: how far inside a bent, stretched disc each point lies.

A blob is a disc of some radius, stretched by `aspect` along `angle`, whose outline is bent by a
few harmonics: radius·(1 + Σ_f wobble_f·sin(f·θ + phase_f)). `blob_inside` gives, for points
offset (dy, dx) pixels from the centre, 1 − distance/radius measured against that outline: > 0
inside, 0 on the outline, < 0 outside, in units of the radius.

Batch invariance: the per-blob trigonometry is done once on the small (B, K) draws in float64
(`blob_shape`) and rounded to float32, and the per-point work uses + − × ÷ and sqrt only, which
round the same in every code path; so a blob's sharp edge lands on the same pixels for an image
alone and inside a batch, without computing whole fields in float64.

>>> shape = blob_shape(torch.zeros(1, 1), torch.zeros(1, 1, 2), torch.zeros(1, 1, 2))
>>> dy = torch.tensor([0.0, 5.0, 10.0, 20.0]).view(1, 1, 4, 1)
>>> inside = blob_inside(dy, torch.zeros(1, 1, 1, 1), torch.full((1, 1), 10.0), torch.ones(1, 1), shape, (2, 3))
>>> inside.flatten().tolist()  # a plain disc of radius 10: centre, half way, the outline, beyond
[1.0, 0.5, 0.0, -1.0]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manurestore.degradations.fields import wide_float


def blob_shape(angle: Tensor, wobble: Tensor, phase: Tensor) -> dict[str, Tensor]:
    """Per-blob float32 constants from (B, K) `angle` and (B, K, F) `wobble`, `phase`:
    cos and sin of the angle, and wobble·cos(phase), wobble·sin(phase) per harmonic."""
    wide = wide_float(angle.device)
    angle, wobble, phase = angle.to(wide), wobble.to(wide), phase.to(wide)
    return {
        "cos": torch.cos(angle).float(), "sin": torch.sin(angle).float(),
        "wobble_cos": (wobble * torch.cos(phase)).float(), "wobble_sin": (wobble * torch.sin(phase)).float(),
    }


def blob_inside(
    dy: Tensor, dx: Tensor, radius: Tensor, aspect: Tensor, shape: dict[str, Tensor], frequencies: tuple[int, ...]
) -> Tensor:
    """1 − distance/radius against each blob's bent outline: > 0 inside, 0 on it, < 0 outside.

    `dy`, `dx` are float32 offsets from the blob's centre in pixels, shaped to broadcast as
    (B, K, h, w) (say (B, K, h, 1) and (B, K, 1, w)); `radius` (pixels) and `aspect` are (B, K),
    `shape` is `blob_shape`'s result and `frequencies` the whole-number harmonic of each of its
    F wobbles. Returns float32 (B, K, h, w).
    """
    if len(frequencies) != shape["wobble_cos"].shape[-1]:
        raise ValueError(f"{shape['wobble_cos'].shape[-1]} wobbles per blob for {len(frequencies)} frequencies")

    def blob(value: Tensor) -> Tensor:  # (B, K) → (B, K, 1, 1)
        return value.float()[..., None, None]

    cos, sin, stretch = blob(shape["cos"]), blob(shape["sin"]), blob(aspect)
    along = (dx * cos + dy * sin) / stretch
    across = (dy * cos - dx * sin) * stretch
    rho = torch.sqrt(along * along + across * across)
    inverse = 1.0 / rho.clamp_min(1e-12)
    unit_c, unit_s = along * inverse, across * inverse  # cos θ, sin θ (0, 0 at the very centre)
    outline = torch.ones_like(rho)
    # (cos θ + i sin θ)^f by complex multiplication, each power the product of two smaller ones
    # (2 = 1 + 1, 3 = 2 + 1, 5 = 3 + 2, 8 = 5 + 3, …): sin fθ and cos fθ without atan2. Then
    # sin(fθ + φ) = sin fθ·cos φ + cos fθ·sin φ.
    powers = {1: (unit_c, unit_s)}
    for j, order in enumerate(frequencies):
        power_c, power_s = _power(powers, int(order))
        outline = outline + power_s * blob(shape["wobble_cos"][..., j]) + power_c * blob(shape["wobble_sin"][..., j])
    return outline - rho / blob(radius).clamp_min(1e-6)


def _power(powers: dict[int, tuple[Tensor, Tensor]], order: int) -> tuple[Tensor, Tensor]:
    """(cos, sin) of order·θ, from and added to `powers` (which holds order 1): the product of
    the largest known power and the one that completes it, built first where missing."""
    if order < 1:
        raise ValueError(f"outline frequencies must be whole numbers from 1, got {order}")
    if order not in powers:
        largest = max(known for known in powers if known < order)
        (a_c, a_s), (b_c, b_s) = powers[largest], _power(powers, order - largest)
        powers[order] = (a_c * b_c - a_s * b_s, a_c * b_s + a_s * b_c)
    return powers[order]


def falloff(count: int) -> Tensor:
    """(count,) weights 1/√(1 + j): higher harmonics wobble less, so outlines are rough, not spiky."""
    return torch.tensor([1.0 / math.sqrt(1 + j) for j in range(count)])
