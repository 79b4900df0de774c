"""Surfaces under the writing: smooth noise, colours, the backdrop a leaf or folio lies on, edge shading.

Both painters build their paper, leaf and table from these few pieces; every draw comes from
the page's generator.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

def smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float | None = None) -> np.ndarray:
    """Smooth noise, roughly unit variance, features about `cell` pixels wide."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(math.ceil(h / max(cell_y, 1.0))) + 1)
    gw = max(2, int(math.ceil(w / max(cell_x, 1.0))) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) * 1.3


def noise1d(rng: np.random.Generator, n: int, cell: float) -> np.ndarray:
    """Smooth noise along one axis, about `cell` samples between bumps: wobbly edges and ruled lines."""
    knots = max(2, int(n / max(cell, 1.0)) + 2)
    grid = rng.standard_normal(knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), grid).astype(np.float32)


def rgb(values: Sequence[float]) -> np.ndarray:
    """0-255 colour -> float32 0-1."""
    return np.asarray(values, dtype=np.float32) / 255.0


def mix(a: Sequence[float], b: Sequence[float], t: float) -> np.ndarray:
    """The colour a fraction `t` of the way from `a` to `b`."""
    return rgb(a) * (1 - t) + rgb(b) * t


_BACKDROPS = (
    (22, 20, 19),  # black velvet / dark table
    (40, 28, 20),  # dark wood
    (58, 22, 22),  # maroon cloth
    (28, 32, 40),  # dark blue-grey cloth
    (48, 44, 40),  # grey board
)


def backdrop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The table or cloth the page lies on: seen round its edges and through its string holes."""
    base = rgb(_BACKDROPS[int(rng.integers(len(_BACKDROPS)))]) * rng.uniform(0.8, 1.15)
    shade = 1.0 + 0.08 * smooth_noise(rng, h, w, max(h, w) / 3)
    grain = 1.0 + 0.05 * smooth_noise(rng, h, w, 2.0, rng.uniform(2, 40))
    return np.clip(base[None, None, :] * (shade * grain)[..., None], 0, 1)


def blur(alpha: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray((np.clip(alpha, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.BoxBlur(max(1, int(radius)))), dtype=np.float32) / 255.0


def edge_shade(alpha: np.ndarray, radius: float) -> np.ndarray:
    """0 deep inside the shape, rising to 1 at its edge, over about `radius` pixels."""
    return np.clip(1.0 - (blur(alpha, radius) - 0.5) * 2.0, 0, 1)
