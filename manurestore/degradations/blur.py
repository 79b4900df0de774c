"""Gaussian blur with a per-image kernel size, as from a slightly defocused camera."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, field_validator

from manurestore.degradations import functional
from manurestore.degradations.base import Degradation, ParamsModel
from manurestore.degradations.functional import opencv_sigma

__all__ = ["GaussianBlur", "opencv_sigma"]  # the sigma of each kernel size, for scripts that mimic the op


class GaussianBlur(Degradation):
    """Each image picks one of `kernel_sizes`; sigma follows from it as OpenCV derives it
    (`functional.gaussian_blur` says how borders are treated).

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
        # On the host: the blur groups images by kernel size, which it must know there.
        sizes = torch.tensor(self.params.kernel_sizes)
        choice = gen.integers(0, len(sizes) - 1, host=True)
        return {"kernel_size": sizes[choice.to(sizes.device)]}

    def apply(self, x, draws, gen, out=None):
        return functional.gaussian_blur(x, draws["kernel_size"], out=out)
