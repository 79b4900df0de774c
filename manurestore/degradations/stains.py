"""Stains: soft, irregular brown blotches (water, oil, foxing) that darken the page."""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.memory import cpu_piece, new_batch
from manurestore.degradations.yellowing import LUMA

# Stains are smooth, so their mask is computed on a small grid and upsampled: the cost and the
# look do not depend on the page size. The finest grid has at most MASK_GRID cells along the long
# side (and no more cells than pixels). An image whose stains all have soft edges uses a coarser
# one, MASK_STEPS times the finest cell, as long as a cell stays no wider than its sharpest edge
# fade: bilinear upsampling then cannot turn an edge into steps (see `_cell_steps`).
MASK_GRID = 192
MASK_STEPS = (1.0, 1.5, 2.0, 3.0, 4.0)
_CPU_PIECE = 1 << 18  # values per piece of the batch and torch thread on the CPU (see `_union_mask`)
# Harmonics of the outline: together they bend a disc into an irregular blob.
OUTLINE_FREQUENCIES = (2.0, 3.0, 5.0)
STAIN_BROWN = (0.60, 0.42, 0.22)


class Stains(Degradation):
    """`count` blotches per image, each with its own centre, radius, outline and intensity.

    Radius is a fraction of the image's shorter side; a stain multiplies the page by a brown
    colour, so it darkens the paper and browns it, with an edge that fades over `softness`.

    >>> op = Stains(count=(3, 3), intensity=(0.5, 0.5))
    """

    name = "stains"
    description = "1–5 soft, irregular brown blotches per image"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 20, integer=True), Field(description="stains per image")] = Range(1, 5)
        radius: Annotated[RangeValue, Bounds(0.005, 1.0), Field(description="radius, fraction of the shorter side")] = Range(0.05, 0.2)
        intensity: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="darkening at the centre")] = Range(0.3, 0.7)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.8), Field(description="outline wobble")] = Range(0.1, 0.35)
        softness: Annotated[RangeValue, Bounds(0.01, 2.0), Field(description="edge fade, fraction of the radius")] = Range(0.15, 0.5)

    def sample(self, n, gen, device):
        p = self.params
        slots = int(p.count.high)
        blob = lambda value: gen.uniform(max(slots, 1), low=float(value.low), high=float(value.high))  # noqa: E731
        return {
            "count": p.count.sample(gen, integer=True),
            "centre_y": gen.uniform(max(slots, 1)),
            "centre_x": gen.uniform(max(slots, 1)),
            "radius": blob(p.radius),
            "intensity": blob(p.intensity),
            "softness": blob(p.softness),
            "aspect": gen.uniform(max(slots, 1), low=0.6, high=1.4),
            "angle": gen.uniform(max(slots, 1), low=0.0, high=math.pi),
            "wobble": gen.uniform(max(slots, 1), len(OUTLINE_FREQUENCIES)) * blob(p.irregularity).unsqueeze(-1),
            "phase": gen.uniform(max(slots, 1), len(OUTLINE_FREQUENCIES), high=2 * math.pi),
            "tint": gen.uniform(3, low=-0.06, high=0.06),
        }

    def apply(self, x, draws, gen):
        return _stain(new_batch(x.shape, x.dtype, x.device).copy_(x), draws)

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return _stain(x, draws) if x.is_contiguous() else self.apply(x, draws, gen)


def _stain(x: torch.Tensor, draws) -> torch.Tensor:
    """Darken contiguous `x` in place by the stains of `draws`; returns x."""
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return x
    mask = _union_mask(draws, height, width, x.device)
    if mask is None:
        return x
    colour = (torch.tensor(STAIN_BROWN, device=x.device) + draws["tint"]).clamp(0, 1)  # (B, 3)
    if channels == 1:
        colour = (colour * torch.tensor(LUMA, device=x.device)).sum(dim=1, keepdim=True)
    darkening = (colour - 1.0).float().view(batch, channels, 1, 1)  # −(1 − colour)
    stained = [count > 0 for count in draws["count"].tolist()]
    step = batch if x.device.type != "cpu" else max(1, cpu_piece(_CPU_PIECE) // (height * width))
    factor = new_batch((min(step, batch), 1, height, width), torch.float32, x.device)
    for first in range(0, batch, step):  # x ·= 1 − mask·(1 − colour), a channel at a time
        last = min(batch, first + step)
        if not any(stained[first:last]):
            continue
        part = factor[: last - first]
        for channel in range(channels):
            torch.mul(mask[first:last], darkening[first:last, channel : channel + 1], out=part).add_(1.0)
            x[first:last, channel : channel + 1].mul_(part)
    return x


def mask_grid(height: int, width: int, step: float = 1.0) -> tuple[int, int]:
    """The (rows, columns) of the grid a stain mask is computed on, `step` times the finest cell."""
    scale = min(1.0, MASK_GRID / max(height, width)) / step
    return max(1, round(height * scale)), max(1, round(width * scale))


def _cell_steps(draws, height: int, width: int) -> list[float | None]:
    """Per image, the coarsest of MASK_STEPS whose cell is no wider than its sharpest edge fade
    (None for an image without stains). It depends on the image's own draws only.

    A blob's edge fades over softness·radius, squeezed by its aspect ratio across the short axis.
    """
    counts = draws["count"].tolist()
    softness, radius, aspect = (draws[name].detach().to("cpu", torch.float64) for name in ("softness", "radius", "aspect"))
    fade = (softness * radius * float(min(height, width)) / torch.maximum(aspect, 1.0 / aspect)).tolist()
    finest = max(1.0, max(height, width) / MASK_GRID)
    steps: list[float | None] = []
    for count, fades in zip(counts, fade):
        if count <= 0:
            steps.append(None)
            continue
        sharpest = min(fades[: int(count)])
        steps.append(max((s for s in MASK_STEPS if finest * s <= sharpest), default=MASK_STEPS[0]))
    return steps


def _union_mask(draws, height: int, width: int, device) -> torch.Tensor | None:
    """(B, 1, H, W) opacity of each image's stains, or None when no image has any.

    Images are grouped by grid and, within a grid, ordered by count, so a piece computes few
    unused slots; on the CPU a piece holds about _CPU_PIECE values.
    """
    batch = draws["radius"].shape[0]
    counts = draws["count"].tolist()
    steps = _cell_steps(draws, height, width)
    if all(step is None for step in steps):
        return None
    terms = _blob_terms(draws, height, width)  # (B, K, terms), once for the whole batch
    mask = None
    for step in sorted({step for step in steps if step is not None}):
        images = sorted((i for i in range(batch) if steps[i] == step), key=lambda i: counts[i])
        grid = mask_grid(height, width, step)
        per_image = max(height * width, max(counts[i] for i in images) * grid[0] * grid[1])
        size = batch if torch.device(device).type != "cpu" else max(1, cpu_piece(_CPU_PIECE) // per_image)
        for first in range(0, len(images), size):
            chosen = images[first : first + size]
            slots = min(terms.shape[1], max(counts[i] for i in chosen))
            if chosen == list(range(batch)):  # the whole batch in one piece, in order
                return _grid_mask(terms[:, :slots], height, width, grid)
            index = torch.tensor(chosen, device=device)
            part = _grid_mask(terms.index_select(0, index)[:, :slots], height, width, grid)
            if mask is None:
                mask = new_batch((batch, 1, height, width), torch.float32, device)
            mask.index_copy_(0, index, part)
    for image, step in enumerate(steps):  # every other row was written above
        if step is None:
            mask[image].zero_()
    return mask


def stain_mask(draws, height: int, width: int) -> torch.Tensor:
    """Union of the blotches as a (B, 1, height, width) float32 opacity map."""
    mask = _union_mask(draws, height, width, draws["radius"].device)
    return torch.zeros((draws["radius"].shape[0], 1, height, width), device=draws["radius"].device) if mask is None else mask


def _blob_terms(draws, height: int, width: int) -> torch.Tensor:
    """(B, K, 18) float32: per blob, the constants `_grid_mask` needs (see there).

    The outline is 1 + Σ wobble·sin(f·θ + phase) for f in OUTLINE_FREQUENCIES, evaluated without
    trigonometric calls: with c = cos θ, s = sin θ of the point's direction, sin(fθ) and cos(fθ)
    are polynomials in c (Chebyshev) times 1, c or s, so with sin(fθ + φ) = A·sin fθ + B·cos fθ
    (A = w·cos φ, B = w·sin φ) the sum is c·(Pc(c²) + 2A₂s) + s·Ps(c²) + 2B₂c² + 1 − B₂, where
    cos 3θ = c(4c² − 3), cos 5θ = c(16c⁴ − 20c² + 5), sin 3θ = s(4c² − 1), sin 5θ = s(16c⁴ − 12c² + 1).
    """
    count = draws["count"]
    slots = draws["radius"].shape[1]

    def blob(name):
        return draws[name].float()

    shorter = float(min(height, width))
    angle, aspect, radius = blob("angle"), blob("aspect"), blob("radius") * shorter
    cos, sin = torch.cos(angle), torch.sin(angle)
    wobble, phase = blob("wobble"), blob("phase")
    a_coef, b_coef = wobble * torch.cos(phase), wobble * torch.sin(phase)  # (B, K, 3): f = 2, 3, 5
    (a2, a3, a5), (b2, b3, b5) = (v.unbind(-1) for v in (a_coef, b_coef))
    inverse_soft = 1.0 / blob("softness")
    active = torch.arange(slots, device=count.device).view(1, -1) < count.view(-1, 1)
    intensity = blob("intensity") * active  # unused slots: no opacity at all
    return torch.stack([
        blob("centre_y") * height, blob("centre_x") * width,  # centre, in pixels
        cos / (aspect * radius), sin / (aspect * radius),  # along = dx·· + dy··, in radii
        cos * aspect / radius, sin * aspect / radius,  # across = dy·· − dx··
        16 * b5, 4 * b3 - 20 * b5, 5 * b5 - 3 * b3, 2 * a2,  # Pc, and the sin 2θ term
        16 * a5, 4 * a3 - 12 * a5, a5 - a3, 2 * b2,  # Ps, and the cos 2θ term
        inverse_soft, (1.0 - b2) * inverse_soft,  # edge = (Σ − distance + 1 − B₂)/softness
        2.0 * intensity, 3.0 * intensity,  # 1 − opacity = 1 + edge²·(2I·edge − 3I)
    ], dim=-1)


def _grid_mask(terms: torch.Tensor, height: int, width: int, grid: tuple[int, int]) -> torch.Tensor:
    """The union mask of the blobs of `terms` (n, K, 18), computed on a (rows, columns) grid and
    upsampled bilinearly to (n, 1, height, width)."""
    device = terms.device
    grid_h, grid_w = grid
    (centre_y, centre_x, along_x, along_y, across_y, across_x, pc2, pc1, pc0, sin2,
     ps2, ps1, ps0, cos2, inverse_soft, offset, twice, thrice) = (t[..., None, None] for t in terms.unbind(-1))
    # Pixel-centre coordinates of the small grid, in the full image's pixel units.
    ys = (torch.arange(grid_h, device=device, dtype=torch.float32) + 0.5) * (height / grid_h)
    xs = (torch.arange(grid_w, device=device, dtype=torch.float32) + 0.5) * (width / grid_w)
    dy = ys.view(1, 1, -1, 1) - centre_y  # (n, K, h, 1)
    dx = xs.view(1, 1, 1, -1) - centre_x  # (n, K, 1, w)
    # Offsets in the blob's own frame, in units of its radius: along its long axis and across it.
    along = dx * along_x + dy * along_y  # (n, K, h, w)
    across = dy * across_y - dx * across_x
    distance = torch.mul(along, along).addcmul_(across, across).sqrt_()
    inverse = torch.clamp_min(distance, 1e-30).reciprocal_()
    c, s = along.mul_(inverse), across.mul_(inverse)  # cos θ, sin θ (both 0 at the very centre)
    del inverse
    q = c * c
    # (Per-blob terms are applied with mul/add: addcmul with a broadcast first operand takes a
    # slow path on the CPU.)
    outline = torch.mul(q, pc2).add_(pc1).mul_(q).add_(pc0).addcmul_(s, sin2).mul_(c)
    term = torch.mul(q, ps2).add_(ps1).mul_(q).add_(ps0)
    outline.addcmul_(term, s).addcmul_(q, cos2)
    del term, q, c, s
    edge = outline.sub_(distance).mul_(inverse_soft).add_(offset).clamp_(0.0, 1.0)
    keep = torch.mul(edge, twice).sub_(thrice).mul_(edge).mul_(edge).add_(1.0)  # 1 − opacity
    clear = keep[:, 0:1]
    for slot in range(1, keep.shape[1]):  # in slot order, so unused slots (factors of exactly 1) change nothing
        clear = clear * keep[:, slot : slot + 1]
    mask = 1.0 - clear
    if (grid_h, grid_w) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return mask
