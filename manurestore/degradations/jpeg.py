"""JPEG compression artefacts: 8×8 blocking, ringing and chroma smear at a per-image quality."""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.fields import wide_float
from manurestore.degradations.results import check_out, deliver

__all__ = ["CHROMA_TABLE", "Jpeg", "LUMA_TABLE", "MCU", "jpeg"]

# The quantisation tables of the JPEG standard (Annex K), scaled by the quality as libjpeg does.
LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *[(99,) * 8] * 4,
)
# A minimum coded unit with 4:2:0 chroma: 16×16 pixels. The block grid may start anywhere in the
# first MCU of the image (`offset_y`, `offset_x` in 0 … MCU − 1), as in a crop of a larger scan.
MCU = 16
# JFIF's full-range YCbCr, with Cb and Cr centred on 0 (they are stored + 128).
_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def jpeg(
    x: Tensor,
    quality: Tensor | float,
    *,
    offset_y: Tensor | int = 0,
    offset_x: Tensor | int = 0,
    out: Tensor | None = None,
) -> Tensor:
    """Each image saved as a baseline JPEG at quality[i] (libjpeg's 1–100 scale) and decoded.

    As libjpeg does: RGB to YCbCr (JFIF), chroma averaged over 2×2 pixels (4:2:0), the 8×8 DCT
    of each block, the standard tables scaled by the quality, coefficients rounded to the
    nearest multiples of them, then the inverse: chroma upsampled with the triangle filter,
    back to RGB, clamped and rounded to 8 bits. Grayscale pages are coded as luma alone. The block grid starts
    (offset_y[i], offset_x[i]) pixels above and left of the image, in 0 … 15, as in a crop of
    a larger scan; edges are replicated out to whole 16×16 units, so any size works, 1×1 too.

    Computed in `wide_float` (float64 where the device has it): rounding a coefficient that
    lies within an ulp of a half would otherwise flip it for an image alone and inside a batch.
    No host sync, so it runs anywhere without waiting on the device.

    >>> x = torch.linspace(0.2, 0.9, 40).view(1, 1, 1, 40).repeat(2, 3, 40, 1)
    >>> x[:, :, 18:22, 5:35] = 0.1  # a stroke on a shaded page
    >>> coded = jpeg(x, torch.tensor([10, 90]))
    >>> low, high = [float((coded[i] - x[i]).abs().mean()) for i in range(2)]
    >>> low > 3 * high  # quality 10 is far worse than 90
    True
    >>> torch.equal(coded * 255, (coded * 255).round())  # 8-bit values, as a decoder writes them
    True
    """
    check_out(x, out)
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return deliver(x.clone(), x, out)
    if channels not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {channels}")
    device, wide = x.device, wide_float(x.device)
    rows = MCU * math.ceil((height + MCU - 1) / MCU)  # room for any offset, fixed by the size alone
    cols = MCU * math.ceil((width + MCU - 1) / MCU)
    shift_y, shift_x = _each(offset_y, batch, device).long(), _each(offset_x, batch, device).long()
    canvas = _place(x, shift_y, shift_x, rows, cols).to(wide).mul_(255.0)  # (B, C, rows, cols)
    scale = _quality_scale(_each(quality, batch, device).to(wide))
    if channels == 1:
        coded = _code(canvas[:, 0].sub_(128.0), _table(LUMA_TABLE, scale)).add_(128.0).unsqueeze(1)
    else:
        planes = canvas.unbind(1)
        luma = _mix(_TO_YCBCR[0], planes, torch.empty_like(canvas[:, 0]))
        chroma = torch.empty_like(canvas[:, 1:])
        for row, weights in enumerate(_TO_YCBCR[1:]):
            _mix(weights, planes, chroma[:, row])
        del canvas, planes
        luma = _code(luma.sub_(128.0), _table(LUMA_TABLE, scale)).add_(128.0)
        chroma = F.avg_pool2d(chroma, 2)  # (B, 2, rows/2, cols/2), 4:2:0
        chroma_steps = _table(CHROMA_TABLE, scale).repeat_interleave(2, dim=0)
        chroma = _code(chroma.view(2 * batch, rows // 2, cols // 2), chroma_steps).view(batch, 2, rows // 2, cols // 2)
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
        planes = (luma, chroma[:, 0], chroma[:, 1])
        coded = torch.empty(batch, 3, rows, cols, device=device, dtype=wide)
        for row, weights in enumerate(_TO_RGB):
            _mix(weights, planes, coded[:, row])
    coded = coded.clamp_(0.0, 255.0).round_().div_(255.0)  # what a decoder writes: 8-bit values
    return deliver(_crop(coded.to(x.dtype), shift_y, shift_x, height, width), x, out)


def _each(values: Tensor | float, batch: int, device: torch.device) -> Tensor:
    """(B,) per-image values: a (B,) tensor as it is, one number for every image."""
    values = torch.as_tensor(values, device=device)
    return values if values.ndim == 1 else values.expand(batch)


def _mix(weights: tuple[float, float, float], planes: tuple[Tensor, ...], out: Tensor) -> Tensor:
    """Σ weights[j]·planes[j], written into `out` (a plane of their shape)."""
    torch.mul(planes[0], weights[0], out=out)
    for weight, plane in zip(weights[1:], planes[1:]):
        if weight:
            out.add_(plane, alpha=weight)
    return out


def _place(x: Tensor, shift_y: Tensor, shift_x: Tensor, rows: int, cols: int) -> Tensor:
    """(B, C, rows, cols): image i at (shift_y[i], shift_x[i]), its edge pixels replicated around."""
    batch, channels, height, width = x.shape
    ys = (torch.arange(rows, device=x.device).view(1, -1, 1) - shift_y.view(-1, 1, 1)).clamp_(0, height - 1)
    xs = (torch.arange(cols, device=x.device).view(1, 1, -1) - shift_x.view(-1, 1, 1)).clamp_(0, width - 1)
    index = (ys * width + xs).view(batch, 1, rows * cols).expand(batch, channels, rows * cols)
    return torch.gather(x.reshape(batch, channels, height * width), 2, index).view(batch, channels, rows, cols)


def _crop(canvas: Tensor, shift_y: Tensor, shift_x: Tensor, height: int, width: int) -> Tensor:
    """(B, C, height, width): the part of each canvas where its image was placed."""
    batch, channels, rows, cols = canvas.shape
    ys = torch.arange(height, device=canvas.device).view(1, -1, 1) + shift_y.view(-1, 1, 1)
    xs = torch.arange(width, device=canvas.device).view(1, 1, -1) + shift_x.view(-1, 1, 1)
    index = (ys * cols + xs).view(batch, 1, height * width).expand(batch, channels, height * width)
    return torch.gather(canvas.view(batch, channels, rows * cols), 2, index).view(batch, channels, height, width)


def _quality_scale(quality: Tensor) -> Tensor:
    """libjpeg's table scale (percent) for each quality: 5000/q below 50, 200 − 2q from 50."""
    quality = quality.clamp(1.0, 100.0)
    return torch.where(quality < 50.0, torch.floor(5000.0 / quality), 200.0 - 2.0 * quality)


def _table(base: tuple, scale: Tensor) -> Tensor:
    """(B, 1, 8, 1, 8) quantisation steps: the base table scaled, as libjpeg rounds and limits it
    for baseline JPEG (1 … 255)."""
    table = torch.tensor(base, device=scale.device, dtype=scale.dtype)
    steps = torch.floor((table * scale.view(-1, 1, 1) + 50.0) / 100.0).clamp_(1.0, 255.0)
    return steps.view(-1, 1, 8, 1, 8)


def _dct_matrix(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The orthonormal 8-point DCT-II: row u holds α(u)·cos((2n + 1)uπ/16) (JPEG's transform)."""
    n = torch.arange(8, device=device, dtype=dtype)
    matrix = torch.cos((2.0 * n.view(1, -1) + 1.0) * n.view(-1, 1) * (math.pi / 16.0)) * math.sqrt(2.0 / 8.0)
    matrix[0] = math.sqrt(1.0 / 8.0)
    return matrix


def _code(planes: Tensor, steps: Tensor) -> Tensor:
    """Level-shifted (N, h, w) planes (h, w multiples of 8) through the 8×8 DCT, quantisation to
    `steps` (N, 1, 8, 1, 8) and back."""
    count, height, width = planes.shape
    dct = _dct_matrix(planes.device, planes.dtype)
    blocks = torch.matmul(dct, planes.view(count, height // 8, 8, width)).view(count, height // 8, 8, width // 8, 8)
    coefficients = torch.matmul(blocks, dct.T)  # (N, rows of blocks, u, columns of blocks, v)
    # Rounded to the nearest whole multiple of the step (halves up; libjpeg rounds them away
    # from zero, which differs only for negative coefficients exactly half way).
    levels = coefficients.div_(steps).add_(0.5).floor_().mul_(steps)
    restored = torch.matmul(levels, dct).view(count, height // 8, 8, width)
    return torch.matmul(dct.T, restored).view(count, height, width)


class Jpeg(Degradation):
    """JPEG compression at a per-image `quality` (libjpeg's scale): 8×8 blocking, ringing around
    strokes, smeared colour; the block grid starts at a random place, as in a crop of a larger
    scan (`jpeg`).

    >>> from manurestore.degradations.random import ImageRandom
    >>> page = torch.rand(1, 3, 32, 32)
    >>> coded = Jpeg(quality=(20, 20))(page, ImageRandom([5]))
    >>> bool((coded - page).abs().mean() > 0.05)
    True
    """

    name = "jpeg"
    description = "JPEG compression artefacts (blocking, ringing, chroma smear) at a per-image quality"

    class Params(ParamsModel):
        quality: Annotated[RangeValue, Bounds(1, 100, integer=True), Field(description="JPEG quality (libjpeg's 1–100)")] = Range(10, 60)

    def sample(self, n, gen, device):
        return {
            "quality": self.params.draw("quality", gen),
            "offset_y": gen.integers(0, MCU - 1),
            "offset_x": gen.integers(0, MCU - 1),
        }

    def apply(self, x, draws, gen, out=None):
        return jpeg(x, draws["quality"], offset_y=draws["offset_y"], offset_x=draws["offset_x"], out=out)
