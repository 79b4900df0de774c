"""Gaussian blur with a per-image kernel size, as from a slightly defocused camera."""

from __future__ import annotations

from typing import Annotated

import kornia
import torch
from pydantic import Field, field_validator

from manurestore.degradations.base import Degradation, ParamsModel


def opencv_sigma(kernel_size: int) -> float:
    """The sigma OpenCV derives when asked for sigma 0: 0.3·((k − 1)/2 − 1) + 0.8."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


class GaussianBlur(Degradation):
    """Each image picks one of `kernel_sizes`; images sharing a size are blurred together.

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
        out = x.clone()
        for size in draws["kernel_size"].unique().tolist():
            chosen = (draws["kernel_size"] == size).nonzero().view(-1)
            group = x[chosen]
            # Reflect padding needs the image to be larger than half the kernel.
            border = "reflect" if min(x.shape[-2:]) > size // 2 else "replicate"
            sigma = opencv_sigma(size)
            out[chosen] = kornia.filters.gaussian_blur2d(group, (size, size), (sigma, sigma), border_type=border)
        return out
