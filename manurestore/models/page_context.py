"""Page-level decisions made once per page: a smooth colour and illumination correction.

A tile of 256 pixels cannot tell a yellowed white folio from an ochre palm leaf, so a model that
decides colour tile by tile repaints the material and lets neighbouring tiles disagree. The
`PageContext` branch looks at the whole page, squashed to `view`×`view` pixels, and predicts a
coarse `grid`×`grid` field of colour transforms (a 3×3 matrix and an offset per cell, added to the
identity). The field is interpolated bilinearly to any pixel, so every tile of a page receives
the same, smooth correction; the tiled restorer then repairs local damage only.

>>> context = PageContext()
>>> page = torch.rand(1, 3, 300, 900)
>>> field = context(page_view(page, context.view))            # (1, 12, 16, 16)
>>> tile = correct_colour(page[..., :64, :64], field, (0, 0), (300, 900))
>>> torch.equal(tile, page[..., :64, :64])                     # a fresh branch changes nothing
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

COEFFICIENTS = 12  # a 3×3 colour matrix (added to the identity) and a 3-channel offset
# A correction that changes the page view by less than the first mean (in [0, 1] units: 2.5 of 255
# levels) is not applied, from the second (5 levels) it is applied whole, in between in proportion
# (`settle_small_corrections`).
SMALL_CORRECTION = (0.01, 0.02)


class _ConvAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GELU())


class PageContext(nn.Module):
    """(B, 3, view, view) page views → (B, 12, grid, grid) colour-transform fields."""

    def __init__(self, view: int = 128, grid: int = 16, width: int = 32) -> None:
        super().__init__()
        if view % grid or (view // grid) & (view // grid - 1):
            raise ValueError(f"view {view} must be grid {grid} times a power of two")
        self.view, self.grid = view, grid
        layers, channels = [_ConvAct(3, width)], width
        for _ in range((view // grid).bit_length() - 1):  # halve the view down to the grid
            layers += [_ConvAct(channels, 2 * width, stride=2), _ConvAct(2 * width, 2 * width)]
            channels = 2 * width
        self.features = nn.Sequential(*layers)
        # What the whole page looks like (its material, how faded it is) reaches every cell.
        self.summary = nn.Sequential(nn.Linear(2 * channels, channels), nn.GELU(), nn.Linear(channels, channels))
        self.mix = _ConvAct(channels, channels)
        self.to_field = nn.Conv2d(channels, COEFFICIENTS, 3, padding=1)
        nn.init.zeros_(self.to_field.weight)  # a fresh branch is the identity
        nn.init.zeros_(self.to_field.bias)

    def forward(self, view: torch.Tensor) -> torch.Tensor:
        features = self.features((view - 0.5) / 0.5)
        statistics = torch.cat([features.mean(dim=(2, 3)), features.std(dim=(2, 3))], dim=1)
        features = self.mix(features + self.summary(statistics)[:, :, None, None])
        return self.to_field(features)


def page_view(page: torch.Tensor, view: int) -> torch.Tensor:
    """The whole (B, 3, H, W) page averaged down to (B, 3, view, view); its shape is not kept
    (the field is laid over the page in relative coordinates, so a long leaf is fine)."""
    return F.adaptive_avg_pool2d(page.float(), (view, view))


def settle_small_corrections(field: torch.Tensor, view: torch.Tensor,
                             bounds: tuple[float, float] = SMALL_CORRECTION) -> torch.Tensor:
    """`field` scaled down where it would barely change its page: by 0 below bounds[0] of mean
    change on the (B, 3, v, v) `view`, 1 above bounds[1], linearly between.

    On clean pages of its training collections the bundled branch still moves the median page by
    0.004 and one in ten by more than 0.014: its own error, not damage. Applied, such corrections
    only shift a clean page's colour; damage worth undoing moves a page further (the median `aged`
    page by 0.04). A correction is linear in the field, so scaling the field scales the change.
    """
    corrected = correct_colour(view, field, (0, 0), (view.shape[-2], view.shape[-1])).clamp(0, 1)
    change = (corrected - view).abs().mean(dim=(1, 2, 3))
    low, high = bounds
    share = ((change - low) / (high - low)).clamp(0, 1)
    return field * share.view(-1, 1, 1, 1).to(field.dtype)


def correct_colour(pixels: torch.Tensor, field: torch.Tensor, origin: tuple[int, int],
                   page_size: tuple[int, int]) -> torch.Tensor:
    """Apply the page's colour field to (B, 3, h, w) `pixels` that lie at `origin` (top, left) on a
    page of `page_size` (H, W); pixels outside the page (mirror padding) take the border's value.

    `field` is (B, 12, g, g) or (1, 12, g, g) for every tile of one page.
    """
    batch, _, height, width = pixels.shape
    (top, left), (page_h, page_w) = origin, page_size
    device = pixels.device
    ys = (torch.arange(height, device=device, dtype=torch.float32) + top + 0.5) / page_h * 2 - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) + left + 0.5) / page_w * 2 - 1
    where = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(0)
    field = field.float().expand(batch, -1, -1, -1) if field.shape[0] == 1 else field.float()
    local = F.grid_sample(field, where.expand(batch, -1, -1, -1), mode="bilinear", padding_mode="border",
                          align_corners=False)
    matrix = local[:, :9].view(batch, 3, 3, height, width)
    offset = local[:, 9:]
    x = pixels.float()
    return (x + torch.einsum("bckhw,bkhw->bchw", matrix, x) + offset).to(pixels.dtype)


def correct_tiles(tiles: torch.Tensor, field: torch.Tensor, origins: list[tuple[int, int]],
                  page_size: tuple[int, int]) -> torch.Tensor:
    """`correct_colour` for a batch of tiles of one page, each at its own origin."""
    return torch.cat([correct_colour(tile[None], field, origin, page_size) for tile, origin in zip(tiles, origins)])
