"""The stains op's work: irregular blobs on a coarse grid, their union, the page darkened by it.

Stains are smooth, so their mask is computed on a small grid and upsampled: the cost and the
look do not depend on the page size. The finest grid has at most MASK_GRID cells along the long
side (and no more cells than pixels). An image whose stains all have soft edges uses a coarser
one, MASK_STEPS times the finest cell, as long as a cell stays no wider than its sharpest edge
fade: bilinear upsampling then cannot turn an edge into steps (see `_cell_steps`).

`blobs` below is a mapping of the per-blob values `functional.stains` documents.
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from manurestore import native
from manurestore.degradations import fused
from manurestore.degradations.colour import rgb_to_channels
from manurestore.degradations.fields import grid_centres, grid_size, upsample
from manurestore.devices import to_device
from manurestore.memory import cpu_piece, new_batch

MASK_GRID = 192
MASK_STEPS = (1.0, 1.5, 2.0, 3.0, 4.0)
_CPU_PIECE = 1 << 18  # values per piece of the batch and torch thread on the CPU (see `_opacity_pieces`)
# Harmonics of the outline: together they bend a disc into an irregular blob.
OUTLINE_FREQUENCIES = (2.0, 3.0, 5.0)
# What a full-intensity stain multiplies the page by, before each image's tint.
STAIN_BROWN = (0.60, 0.42, 0.22)


def stain_(x: Tensor, blobs: Mapping[str, Tensor]) -> Tensor:
    """Darken contiguous `x` in place by the stains of `blobs`; returns x."""
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return x
    if native.active(x) and not fused.active(x.device):
        # One native pass per piece of images upsamples their coarse masks and darkens every channel.
        darkening = None
        for images, opacity in _opacity_pieces(blobs, height, width, x.device, _grid_opacity):
            if darkening is None:
                darkening = _darkening(blobs, channels).cpu().contiguous()
            native.darken(x, images, opacity, darkening)
        return x
    mask = _union_mask(blobs, height, width, x.device)
    if mask is None:
        return x
    # Where the blobs were drawn (the host as a rule), moved once.
    darkening = to_device(_darkening(blobs, channels).view(batch, channels, 1, 1), x.device)
    stained = [count > 0 for count in blobs["count"].tolist()]
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


def _darkening(blobs: Mapping[str, Tensor], channels: int) -> Tensor:
    """(B, C) float32 −(1 − colour): each image's stain brown, shifted by its tint, less white."""
    tint = blobs["tint"]
    colour = rgb_to_channels((torch.tensor(STAIN_BROWN, device=tint.device) + tint).clamp(0, 1), channels)
    return (colour - 1.0).float()


def _cell_steps(blobs: Mapping[str, Tensor], height: int, width: int) -> list[float | None]:
    """Per image, the coarsest of MASK_STEPS whose cell is no wider than its sharpest edge fade
    (None for an image without stains). It depends on the image's own draws only.

    A blob's edge fades over softness·radius, squeezed by its aspect ratio across the short axis.
    """
    counts = blobs["count"].tolist()
    softness, radius, aspect = (blobs[name].detach().to("cpu", torch.float64) for name in ("softness", "radius", "aspect"))
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


def _union_mask(blobs: Mapping[str, Tensor], height: int, width: int, device) -> Tensor | None:
    """(B, 1, H, W) opacity of each image's stains, or None when no image has any."""
    batch = blobs["radius"].shape[0]
    grid_mask = functools.partial(fused.run, "stain_mask", _grid_mask) if fused.active(device) else _grid_mask
    mask = None
    for images, part in _opacity_pieces(blobs, height, width, device, grid_mask):
        if images == list(range(batch)):  # the whole batch in one piece, in order
            return part
        if mask is None:
            mask = new_batch((batch, 1, height, width), torch.float32, device)
            for image, step in enumerate(_cell_steps(blobs, height, width)):  # the rest is written piece by piece
                if step is None:
                    mask[image].zero_()
        mask.index_copy_(0, to_device(np.array(images), device), part)
    return mask


def _opacity_pieces(blobs: Mapping[str, Tensor], height: int, width: int, device, grid_mask):
    """(images, grid_mask(their terms, height, width, grid)) for the images with stains, in pieces.

    Images are grouped by grid and, within a grid, ordered by count, so a piece computes few
    unused slots; on the CPU a piece holds about _CPU_PIECE values.
    """
    batch = blobs["radius"].shape[0]
    counts = blobs["count"].tolist()
    steps = _cell_steps(blobs, height, width)
    if all(step is None for step in steps):
        return
    terms = to_device(_blob_terms(blobs, height, width), device)  # (B, K, terms), once for the whole batch
    for step in sorted({step for step in steps if step is not None}):
        images = sorted((i for i in range(batch) if steps[i] == step), key=lambda i: counts[i])
        grid = grid_size(height, width, MASK_GRID, step)
        values_per_image = max(height * width, max(counts[i] for i in images) * grid[0] * grid[1])
        size = batch if torch.device(device).type != "cpu" else max(1, cpu_piece(_CPU_PIECE) // values_per_image)
        for first in range(0, len(images), size):
            chosen = images[first : first + size]
            slots = min(terms.shape[1], max(counts[i] for i in chosen))
            if chosen == list(range(batch)):
                chosen_terms = terms[:, :slots]
            else:
                chosen_terms = terms.index_select(0, to_device(np.array(chosen), device))[:, :slots]
            yield chosen, grid_mask(chosen_terms, height, width, grid)


def _blob_terms(blobs: Mapping[str, Tensor], height: int, width: int) -> Tensor:
    """(B, K, 18) float32: per blob, the constants `_grid_opacity` needs (see there).

    The outline is 1 + Σ wobble·sin(f·θ + phase) for f in OUTLINE_FREQUENCIES, evaluated without
    trigonometric calls: with c = cos θ, s = sin θ of the point's direction, sin(fθ) and cos(fθ)
    are polynomials in c (Chebyshev) times 1, c or s, so with sin(fθ + φ) = A·sin fθ + B·cos fθ
    (A = w·cos φ, B = w·sin φ) the sum is c·(Pc(c²) + 2A₂s) + s·Ps(c²) + 2B₂c² + 1 − B₂, where
    cos 3θ = c(4c² − 3), cos 5θ = c(16c⁴ − 20c² + 5), sin 3θ = s(4c² − 1), sin 5θ = s(16c⁴ − 12c² + 1).
    """
    count = blobs["count"]
    slots = blobs["radius"].shape[1]

    def blob(name):
        return blobs[name].float()

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


def _grid_mask(terms: Tensor, height: int, width: int, grid: tuple[int, int]) -> Tensor:
    """The union mask of the blobs of `terms` (n, K, 18), computed on a (rows, columns) grid and
    upsampled bilinearly to (n, 1, height, width)."""
    return upsample(_grid_opacity(terms, height, width, grid), height, width)


def _grid_opacity(terms: Tensor, height: int, width: int, grid: tuple[int, int]) -> Tensor:
    """The union mask of the blobs of `terms` (n, K, 18) on the (rows, columns) grid: (n, 1, rows, columns)."""
    (centre_y, centre_x, along_x, along_y, across_y, across_x, pc2, pc1, pc0, sin2,
     ps2, ps1, ps0, cos2, inverse_soft, offset, twice, thrice) = (t[..., None, None] for t in terms.unbind(-1))
    ys, xs = grid_centres(height, width, grid, terms.device)  # in the full image's pixel units
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
    return 1.0 - clear
