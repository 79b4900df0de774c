"""Full-resolution restoration through overlapping tiles blended with a smooth window.

The page is mirrored outwards by half an overlap so its edges are never at a tile border, cut
into tiles of the model's training size that overlap by 1/8 of a tile (or more), restored in
batches, and blended with a window that rises smoothly from the tile border over the overlap.
Every output pixel is a weighted mean of the tiles that saw it, so there are no seams, and a
model that returns its input gives back exactly the input. The page goes to the device once, as
uint8: padding, cutting tiles, widening to float and blending all happen there, with no per-tile
host copies. Memory is the page itself (uint8, padded), one float accumulator of it and one batch
of tiles, whatever the page size.

Colour is decided per page, never per tile. With `colour="correct"` a model with a page-context
branch looks at the whole page once and every tile receives the same smooth colour correction
before the model repairs its local damage; a correction too small to be more than the branch's
own error is not applied (`page_context.settle_small_corrections`), so a clean page keeps its
colour. With `colour="keep"` no correction is made and the restored page is given back the
scanned page's mean colour, so the material looks as scanned.

A tile may change the page only at scales finer than `local_scale` pixels (the sigma of a
Gaussian): the coarse part of each tile's change is removed before blending. A 256-pixel tile
cannot tell an ochre leaf beside a white backdrop from a brown stain on white paper, and one that
guesses wrong repaints its whole square; what is coarser than a few pixels (colour, shading) is
the page-context branch's to decide, once for the page. With a branch, the default limit is
`LOCAL_SCALE` pixels; without one (nothing else would correct colour) there is none.

A tile's change smaller than `min_change` (its length over the three channels, in [0, 1]) is not
made, and a larger one is shortened by as much (soft thresholding). A tile's smallest changes are
mostly its own error, not repair: on a clean page it redraws grain and fibre and sharpens a soft
scan, a few levels at every pixel, while the damage worth undoing (noise, specks) changes pixels by
more. With a branch the default is `MIN_CHANGE`, three levels of 255: three in four of the tiles'
changes to clean pages of the bundled model's training collections are smaller.

>>> restorer = TiledRestorer(model, tile=256)                      # doctest: +SKIP
>>> restored = restorer.restore(page)   # uint8 H×W×C in, uint8 H×W×C out   # doctest: +SKIP
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from manurestore.batches import to_batch, to_images
from manurestore.data.dataset import reflect_pad
from manurestore.degradations.filters import gaussian_blur_sigma
from manurestore.models.page_context import correct_tiles, page_view, settle_small_corrections

COLOUR_MODES = ("correct", "keep")
LOCAL_SCALE = 8.0  # px: the tiles' reach under a page-context branch (see the module docstring)
MIN_CHANGE = 3 / 255  # the tiles' smallest change under a page-context branch (see the module docstring)
_COARSE_STEP = 4  # the coarse part is smoothed on a grid this many times coarser than the tile


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile`, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D weights: a sin² ramp over `overlap` pixels at each end, 1 in the middle, never 0."""
    position = np.arange(tile, dtype=np.float64) + 0.5
    ramp = np.clip(np.minimum(position, tile - position) / max(overlap, 1), 0.0, 1.0)
    return (np.sin(ramp * np.pi / 2) ** 2).clip(1e-3, 1.0).astype(np.float32)


def mirror_pad(page: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Mirror a page outwards on every side (repeatedly where the page is thinner than the pad)."""
    flipped = page[::-1, ::-1]
    padded = reflect_pad(flipped, page.shape[0] + top, page.shape[1] + left)[::-1, ::-1]
    return reflect_pad(padded, padded.shape[0] + bottom, padded.shape[1] + right)


def mirror_pad_tensor(page: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """`mirror_pad` of an (H, W, C) tensor where it lies (a GPU, say): the same mirrored rows and
    columns, gathered by index, so the page never returns to the host to be padded."""
    height, width = page.shape[:2]
    rows = mirror_pad(np.arange(height).reshape(height, 1, 1), top, bottom, 0, 0)[:, 0, 0]
    cols = mirror_pad(np.arange(width).reshape(1, width, 1), 0, 0, left, right)[0, :, 0]
    rows_on, cols_on = (torch.from_numpy(np.ascontiguousarray(index)).to(page.device) for index in (rows, cols))
    return page.index_select(0, rows_on).index_select(1, cols_on)


@dataclass
class TiledRestorer:
    model: torch.nn.Module
    tile: int = 256
    overlap: int | None = None  # default and minimum: 1/8 of the tile
    batch_size: int = 8
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    colour: str = "correct"  # or "keep": see the module docstring
    local_scale: float = 0.0  # px; 0: a tile may change the page at any scale
    min_change: float = 0.0  # in [0, 1]; 0: every change a tile makes is made

    def __post_init__(self):
        if self.colour not in COLOUR_MODES:
            raise ValueError(f"colour must be one of {', '.join(COLOUR_MODES)}, got {self.colour!r}")
        minimum = math.ceil(self.tile / 8)
        if self.overlap is None:
            self.overlap = minimum  # the smallest seamless overlap costs the fewest extra tiles
        if self.overlap < minimum or self.overlap >= self.tile:
            raise ValueError(f"overlap must be in [{minimum}, {self.tile}) for {self.tile}-pixel tiles, got {self.overlap}")
        if not 0.0 <= self.local_scale <= self.tile / 4:
            raise ValueError(f"local scale must be in [0, {self.tile / 4:g}] pixels for {self.tile}-pixel tiles, got {self.local_scale:g}")
        if not 0.0 <= self.min_change <= 1.0:
            raise ValueError(f"min change must be in [0, 1], got {self.min_change:g}")
        window = blend_window(self.tile, self.overlap)
        self._window = torch.from_numpy(np.outer(window, window))

    def restore(self, page: np.ndarray) -> np.ndarray:
        """uint8 H×W×C (C = 1 or 3) → restored uint8 of the same shape."""
        height, width, channels = page.shape
        rgb = np.repeat(page, 3, axis=2) if channels == 1 else page
        # The page crosses to the device once, as uint8; padding, tiles and blending happen there.
        on_device = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        margin = self.overlap // 2
        padded = mirror_pad_tensor(on_device, margin, margin + max(0, self.tile - height - 2 * margin),
                                   margin, margin + max(0, self.tile - width - 2 * margin))
        field = self._page_field(on_device)
        out = self._restore_padded(padded, field, margin, (height, width))
        out = out[margin : margin + height, margin : margin + width]
        if self.colour == "keep":
            out = keep_mean_colour(out, rgb)
        if channels == 1:
            out = out.mean(dim=2, keepdim=True)
        return to_images(out.permute(2, 0, 1).unsqueeze(0))[0]

    def _page_field(self, page: torch.Tensor) -> torch.Tensor | None:
        """The page's colour field from its page-context branch (None: no branch, or colour kept)."""
        branch = getattr(self.model, "page_context", None)
        if branch is None or self.colour == "keep":
            return None
        with torch.inference_mode():
            view = page_view(to_batch(page.unsqueeze(0), self.device), branch.view)
            return settle_small_corrections(branch(view).float(), view)

    def _restore_padded(self, padded: torch.Tensor, field: torch.Tensor | None, margin: int,
                        page_size: tuple[int, int]) -> torch.Tensor:
        """The blended float page (H, W, 3); accumulates in place to keep memory at one page."""
        height, width = padded.shape[:2]
        stride = self.tile - self.overlap
        positions = [(y, x) for y in tile_starts(height, self.tile, stride) for x in tile_starts(width, self.tile, stride)]
        # Blend where the model runs: on a GPU the page-size accumulators live in its memory.
        total = torch.zeros((height, width, 3), dtype=torch.float32, device=self.device)
        weight = torch.zeros((height, width, 1), dtype=torch.float32, device=self.device)
        source = padded
        window = self._window.unsqueeze(-1).to(self.device)
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        with torch.inference_mode():
            for first in range(0, len(positions), self.batch_size):
                chunk = positions[first : first + self.batch_size]
                tiles = torch.stack([source[y : y + self.tile, x : x + self.tile] for y, x in chunk])
                batch = to_batch(tiles, self.device)
                if field is not None:
                    batch = correct_tiles(batch, field, [(y - margin, x - margin) for y, x in chunk], page_size)
                with autocast:
                    restored = self.model(batch)
                restored = restored.float()
                if self.local_scale > 0 or self.min_change > 0:
                    restored = batch + self._kept_change(restored - batch)
                restored = restored.clamp_(0.0, 1.0).permute(0, 2, 3, 1)
                for (y, x), result in zip(chunk, restored):
                    total[y : y + self.tile, x : x + self.tile] += result * window
                    weight[y : y + self.tile, x : x + self.tile] += window
        return total.div_(weight).cpu()


    def _kept_change(self, change: torch.Tensor) -> torch.Tensor:
        """The part of a tile's change that is made: its fine part, less its small changes."""
        if self.local_scale > 0:
            change = fine_part(change, self.local_scale)
        if self.min_change > 0:
            change = without_small_changes(change, self.min_change)
        return change


def without_small_changes(change: torch.Tensor, floor: float) -> torch.Tensor:
    """`change` (B, C, h, w) shortened by `floor` at every pixel, its length taken over the
    channels: a change shorter than `floor` becomes none, its direction is kept. (A sum of squares
    and its reciprocal root: over 40× faster on the CPU than `vector_norm` over the channel axis; the
    squares are kept from 0 so that no change and a vanishing floor never meet as 0·∞.)"""
    if floor <= 0:
        return change
    inverse_length = change.square().sum(dim=1, keepdim=True).clamp_(min=1e-30).rsqrt_()
    return change * inverse_length.mul_(-floor).add_(1.0).clamp_(min=0.0)


def fine_part(change: torch.Tensor, sigma: float) -> torch.Tensor:
    """`change` (B, C, h, w) less its coarse part, a Gaussian blur of about `sigma` pixels:
    averaged onto a grid 4× coarser, blurred there by sigma/4, and interpolated back. A change
    that is the same everywhere is removed (to float rounding)."""
    height, width = change.shape[-2:]
    step = _COARSE_STEP
    coarse = F.avg_pool2d(F.pad(change, (0, -width % step, 0, -height % step), mode="replicate"), step)
    small = sigma / step
    smooth = gaussian_blur_sigma(coarse, torch.full((coarse.shape[0],), small, device=change.device), max_sigma=small)
    upsampled = F.interpolate(smooth, scale_factor=step, mode="bilinear", align_corners=False)[..., :height, :width]
    return change - upsampled


def keep_mean_colour(restored: torch.Tensor, scanned: np.ndarray) -> torch.Tensor:
    """The (H, W, 3) float page shifted so its mean colour is the scanned uint8 page's."""
    target = torch.from_numpy(scanned.reshape(-1, 3).astype(np.float64).mean(axis=0) / 255.0)
    shift = target - restored.double().reshape(-1, 3).mean(dim=0)
    return restored.add_(shift.float()).clamp_(0.0, 1.0)
