"""Gaussian blurs with a per-image strength: by kernel size (OpenCV's sigma), or by sigma.

`blur_kernel_sizes` is the built-in `gaussian_blur` op's work: separable, with reflected borders
(OpenCV's BORDER_REFLECT_101), or replicated ones where the image is not larger than half the
kernel. On the CPU a native loop blurs each plane (`manurestore.native`), or, without it, torch
adds the taps up a few planes at a time, straight from where the images lie; on an accelerator
kornia convolves each kernel size's images at once.
`gaussian_blur_sigma` takes any sigma per image, for ops that blur what they draw.
"""

from __future__ import annotations

import math

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from manurestore import native
from manurestore.degradations.fields import wide_float
from manurestore.devices import to_device
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


def blur_kernel_sizes(x: Tensor, sizes: Tensor, out: Tensor) -> Tensor:
    """Blur contiguous (B, C, H, W) `x` into contiguous `out` (which may be `x`), image i with
    the odd kernel size sizes[i]; returns `out`.

    Images are taken where they lie, in runs of neighbours that share a kernel size: no gathering
    into a group and scattering back.
    """
    if x.numel() == 0:
        return out.copy_(x)
    if x.device.type != "cpu":
        return _blur_with_kornia(x, sizes, out)
    batch, channels, height, width = x.shape
    planes_in, planes_out = x.view(-1, height, width), out.view(-1, height, width)
    runs: list[tuple[int, int, int]] = []  # (size, first image, last image + 1)
    for index, size in enumerate(sizes.tolist()):
        if runs and runs[-1][0] == size and runs[-1][2] == index:
            runs[-1] = (size, runs[-1][1], index + 1)
        else:
            runs.append((int(size), index, index + 1))
    if native.active(x) and out.dtype == torch.float32:  # one native loop per pass (`native`)
        native.blur(planes_in, planes_out, [(gaussian_weights(size), _border(height, width, size), first * channels,
                                             stop * channels) for size, first, stop in runs])
        return out
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    step = max(1, cpu_piece(_CPU_PIECE) // (height * width))
    step = min(step, max(stop - first for _, first, stop in runs) * channels)
    radius = max(size for size, _, _ in runs) // 2
    # Scratch shared by every run: the planes padded on all four sides, and their horizontal blur.
    square = new_batch((step * (height + 2 * radius) * (width + 2 * radius),), work, x.device)
    tall = new_batch((step * (height + 2 * radius) * width,), work, x.device)
    for size, first, stop in runs:
        pad = _PADDERS[_border(height, width, size)]
        weights, r = gaussian_weights(size), size // 2
        for start in range(first * channels, stop * channels, step):
            count = min(step, stop * channels - start)
            padded = square[: count * (height + 2 * r) * (width + 2 * r)].view(count, height + 2 * r, width + 2 * r)
            across = tall[: count * (height + 2 * r) * width].view(count, height + 2 * r, width)
            # One call pads both ways: blurring the padded rows across gives exactly the padded
            # rows of the blurred planes, so the pass down needs no padding of its own.
            pad(planes_in[start : start + count].to(work), [r, r, r, r], out=padded)
            _correlate(padded, weights, width, -1, across)
            destination = planes_out[start : start + count]
            if destination.dtype == work:
                _correlate(across, weights, height, -2, destination)
            else:
                destination.copy_(_correlate(across, weights, height, -2, torch.empty_like(destination, dtype=work)))
    return out


# Padding of (planes, H, W) on all four sides into a given tensor: reflected as OpenCV's
# BORDER_REFLECT_101 (the edge cell is not repeated), or replicated.
_PADDERS = {"reflect": torch.ops.aten.reflection_pad2d.out, "replicate": torch.ops.aten.replication_pad2d.out}


def _border(height: int, width: int, kernel_size: int) -> str:
    """Reflected borders, or replicated ones where the image is too small to reflect."""
    return "reflect" if min(height, width) > kernel_size // 2 else "replicate"


def _blur_with_kornia(x: Tensor, sizes: Tensor, out: Tensor) -> Tensor:
    """On an accelerator: kornia's blur (a convolution there) for each kernel size's images at once."""
    groups: dict[int, list[int]] = {}
    for index, size in enumerate(sizes.tolist()):
        groups.setdefault(int(size), []).append(index)
    for size, images in groups.items():
        border = _border(*x.shape[-2:], size)
        sigma = opencv_sigma(size)
        if len(images) == x.shape[0]:
            return out.copy_(kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type=border))
        chosen = to_device(np.array(images), x.device)
        group = kornia.filters.gaussian_blur2d(x.index_select(0, chosen), (size, size), (sigma, sigma), border_type=border)
        out.index_copy_(0, chosen, group)
    return out


def _correlate(padded: Tensor, weights: list[float], size: int, dim: int, out: Tensor) -> Tensor:
    """out = Σ_j weights[j] · padded shifted by j along `dim` (a 'valid' 1-D correlation); returns out."""
    torch.mul(padded.narrow(dim, 0, size), weights[0], out=out)
    for tap in range(1, len(weights)):
        out.add_(padded.narrow(dim, tap, size), alpha=weights[tap])
    return out


def gaussian_blur_sigma(x: Tensor, sigma: Tensor, max_sigma: float) -> Tensor:
    """Blur each image of a (B, C, H, W) batch with its own Gaussian sigma (B,), in pixels.

    The kernel reaches 3·`max_sigma` pixels each side for every image: pass the op's largest
    sigma (its parameter's `high`), never the batch's, or an image would blur differently alone
    and inside a batch. Borders are replicated; a sigma near 0 leaves the image as it is (and
    `max_sigma` 0 returns `x` itself). The weights are computed in `wide_float`, the blur in
    float32; the result has x's dtype.

    >>> x = torch.zeros(2, 1, 15, 15)
    >>> x[:, :, 7, 7] = 1.0
    >>> out = gaussian_blur_sigma(x, torch.tensor([0.0, 1.5]), max_sigma=2.0)
    >>> float(out[0, 0, 7, 7]), round(float(out[1].sum()), 4)
    (1.0, 1.0)
    """
    radius = int(math.ceil(3.0 * max_sigma))
    if radius <= 0 or x.numel() == 0:
        return x
    batch, channels, height, width = x.shape
    dtype = wide_float(x.device)
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=dtype)
    s = sigma.to(dtype).clamp_min(1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (taps / s) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).float()  # (B, 2r + 1)
    weight = kernel.repeat_interleave(channels, dim=0)  # one kernel per (image, channel) plane
    planes = x.float().reshape(1, batch * channels, height, width)
    planes = F.pad(planes, (radius, radius, 0, 0), mode="replicate")
    planes = F.conv2d(planes, weight.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    planes = F.pad(planes, (0, 0, radius, radius), mode="replicate")
    planes = F.conv2d(planes, weight.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return planes.view(batch, channels, height, width).to(x.dtype)
