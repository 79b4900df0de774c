"""Gaussian blur with a per-image kernel size, as from a slightly defocused camera."""

from __future__ import annotations

import math
from typing import Annotated

import kornia
import torch
from pydantic import Field, field_validator
from torch import Tensor

from manurestore.degradations.base import Degradation, ParamsModel
from manurestore.memory import cpu_piece, new_batch

# Planes are blurred a few at a time, about this many values per piece and torch thread (on the
# CPU): the padded copies then stay in cache and are recycled by malloc rather than faulted in.
_CPU_PIECE = 1 << 19


def opencv_sigma(kernel_size: int) -> float:
    """The sigma OpenCV derives when asked for sigma 0: 0.3·((k − 1)/2 − 1) + 0.8."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def gaussian_weights(kernel_size: int) -> list[float]:
    """The taps exp(−n²/2σ²) at n = −k//2 … k//2, normalised to sum 1, with OpenCV's sigma."""
    sigma = opencv_sigma(kernel_size)
    taps = [math.exp(-((n - kernel_size // 2) ** 2) / (2.0 * sigma * sigma)) for n in range(kernel_size)]
    total = math.fsum(taps)
    return [tap / total for tap in taps]


class GaussianBlur(Degradation):
    """Each image picks one of `kernel_sizes`.

    The blur is separable (a horizontal then a vertical pass of the 1-D kernel) with reflected
    borders (OpenCV's BORDER_REFLECT_101), or replicated ones where the image is not larger
    than half the kernel. On the CPU the taps are added up a few planes at a time, straight from
    where the images lie; on an accelerator kornia convolves each kernel size's images at once.

    >>> op = GaussianBlur(kernel_sizes=[3, 5])
    """

    name = "gaussian_blur"
    description = "Gaussian blur, kernel size drawn per image (sigma as OpenCV derives it)"

    class Params(ParamsModel):
        kernel_sizes: Annotated[tuple[int, ...], Field(description="odd kernel sizes to choose from, each 3–31")] = (3, 5, 7)

        @field_validator("kernel_sizes")
        @classmethod
        def _odd_and_small(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
            if not sizes:
                raise ValueError("kernel_sizes: give at least one size")
            bad = [k for k in sizes if k < 3 or k > 31 or k % 2 == 0]
            if bad:
                raise ValueError(f"kernel_sizes: {bad} not odd sizes in [3, 31]")
            return tuple(sizes)

    def sample(self, n, gen, device):
        sizes = torch.tensor(self.params.kernel_sizes, device=device)
        choice = gen.integers(0, len(sizes) - 1)
        return {"kernel_size": sizes[choice]}

    def apply(self, x, draws, gen):
        return _blur(x.contiguous(), draws["kernel_size"], new_batch(x.shape, x.dtype, x.device))

    def _apply_inplace(self, x, draws, gen):
        """`apply` writing into `x` (the pipeline calls it on batches it owns)."""
        return _blur(x, draws["kernel_size"], x) if x.is_contiguous() else self.apply(x, draws, gen)


def _blur(x: Tensor, sizes: Tensor, out: Tensor) -> Tensor:
    """Blur contiguous (B, C, H, W) `x` into contiguous `out` (which may be `x`), image i with sizes[i].

    Images are taken where they lie, in runs of neighbours that share a kernel size: no gathering
    into a group and scattering back.
    """
    batch, channels, height, width = x.shape
    if x.numel() == 0:
        return out.copy_(x)
    if x.device.type != "cpu":
        return _blur_grouped(x, sizes, out)
    planes_in, planes_out = x.view(-1, height, width), out.view(-1, height, width)
    runs: list[tuple[int, int, int]] = []  # (size, first image, last image + 1)
    for index, size in enumerate(sizes.tolist()):
        if runs and runs[-1][0] == size and runs[-1][2] == index:
            runs[-1] = (size, runs[-1][1], index + 1)
        else:
            runs.append((int(size), index, index + 1))
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    step = batch * channels if x.device.type != "cpu" else max(1, cpu_piece(_CPU_PIECE) // (height * width))
    step = min(step, max(stop - first for _, first, stop in runs) * channels)
    radius = max(size for size, _, _ in runs) // 2
    # Scratch for the padded copies, shared by every run: (planes, H, W + 2r) and (planes, H + 2r, W).
    wide = new_batch((step * height * (width + 2 * radius),), work, x.device)
    tall = new_batch((step * (height + 2 * radius) * width,), work, x.device)
    result = None if out.dtype == work else new_batch((step, height, width), work, x.device)
    for size, first, stop in runs:
        border = "reflect" if min(height, width) > size // 2 else "replicate"
        weights, r = gaussian_weights(size), size // 2
        for start in range(first * channels, stop * channels, step):
            count = min(step, stop * channels - start)
            padded = wide[: count * height * (width + 2 * r)].view(count, height, width + 2 * r)
            across = tall[: count * (height + 2 * r) * width].view(count, height + 2 * r, width)
            padded[:, :, r : r + width].copy_(planes_in[start : start + count])
            _pad_edges(padded, r, width, -1, border)
            _correlate(padded, weights, width, -1, across[:, r : r + height])
            _pad_edges(across, r, height, -2, border)
            destination = planes_out[start : start + count] if result is None else result[:count]
            _correlate(across, weights, height, -2, destination)
            if result is not None:
                planes_out[start : start + count].copy_(destination)
    return out


def _blur_grouped(x: Tensor, sizes: Tensor, out: Tensor) -> Tensor:
    """On an accelerator: kornia's blur (a convolution there) for each kernel size's images at once."""
    groups: dict[int, list[int]] = {}
    for index, size in enumerate(sizes.tolist()):
        groups.setdefault(int(size), []).append(index)
    for size, images in groups.items():
        border = "reflect" if min(x.shape[-2:]) > size // 2 else "replicate"
        sigma = opencv_sigma(size)
        if len(images) == x.shape[0]:
            return out.copy_(kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type=border))
        chosen = torch.tensor(images, device=x.device)
        group = kornia.filters.gaussian_blur2d(x.index_select(0, chosen), (size, size), (sigma, sigma), border_type=border)
        out.index_copy_(0, chosen, group)
    return out


def _pad_edges(padded: Tensor, radius: int, size: int, dim: int, border: str) -> None:
    """Fill the `radius` cells at each end of `dim` around the `size` interior cells."""
    if radius == 0:
        return
    first, last = radius, radius + size - 1
    if border == "reflect":  # …, x2, x1 | x0, x1, x2, … (the edge cell is not repeated)
        for j in range(1, radius + 1):
            padded.select(dim, first - j).copy_(padded.select(dim, first + j))
            padded.select(dim, last + j).copy_(padded.select(dim, last - j))
    else:
        padded.narrow(dim, 0, radius).copy_(padded.narrow(dim, first, 1).expand_as(padded.narrow(dim, 0, radius)))
        padded.narrow(dim, last + 1, radius).copy_(padded.narrow(dim, last, 1).expand_as(padded.narrow(dim, 0, radius)))


def _correlate(padded: Tensor, weights: list[float], size: int, dim: int, out: Tensor) -> None:
    """out = Σ_j weights[j] · padded shifted by j along `dim` (a 'valid' 1-D correlation)."""
    torch.mul(padded.narrow(dim, 0, size), weights[0], out=out)
    for tap in range(1, len(weights)):
        out.add_(padded.narrow(dim, tap, size), alpha=weights[tap])
