"""Surfaces under the writing: smooth noise, colours, the backdrop a leaf or folio lies on, edge shading, light.

Both painters build their paper, leaf and table from these few pieces; every draw comes from
the page's generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Backdrop:
    """What the page lies on in the scan: its family ("dark", "grey" or "white") and its colour (0-255)."""

    name: str
    colour: tuple[int, int, int]


# (family, weight, colours): black velvet, dark wood, maroon and blue-grey cloth, a dark board (Khmer
# scans); grey cloth and card; a white sheet or the scanner's lid (Tamil leaves cut out onto white)
_BACKDROPS = (
    ("dark", 0.45, ((22, 20, 19), (40, 28, 20), (58, 22, 22), (28, 32, 40), (48, 44, 40))),
    ("grey", 0.25, ((96, 96, 94), (122, 120, 116), (148, 146, 140), (108, 112, 118))),
    ("white", 0.30, ((246, 246, 243), (238, 238, 234), (250, 249, 245), (232, 234, 236))),
)


def _luma(colour: Sequence[float]) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def choose_backdrop(rng: np.random.Generator, page_luminance: float, min_contrast: float) -> Backdrop:
    """A backdrop family whose colours all stand `min_contrast` grey levels apart from the page, and one of them.

    The families' weights are kept among those that stand apart; if none does, the farthest is taken.
    """
    apart = [min(abs(_luma(colour) - page_luminance) for colour in colours) for _, _, colours in _BACKDROPS]
    usable = [k for k, d in enumerate(apart) if d >= min_contrast] or [int(np.argmax(apart))]
    weights = np.asarray([_BACKDROPS[k][1] for k in usable])
    name, _, colours = _BACKDROPS[usable[int(rng.choice(len(usable), p=weights / weights.sum()))]]
    return Backdrop(name, colours[int(rng.integers(len(colours)))])


def backdrop(rng: np.random.Generator, ground: Backdrop, h: int, w: int) -> np.ndarray:
    """The table or cloth the page lies on: seen round its edges and through its string holes.

    A dark ground gets a grain (wood, velvet pile), grey cloth a fuzz and a fine weave, and a
    white sheet is nearly flat.
    """
    base = rgb(ground.colour) * (rng.uniform(0.8, 1.15) if ground.name != "white" else rng.uniform(0.97, 1.02))
    shade = 1.0 + (0.08 if ground.name != "white" else 0.02) * smooth_noise(rng, h, w, max(h, w) / 3)
    streaks = rng.uniform(2, 40) if ground.name == "dark" else 2.0  # wood grain, or a cloth's even fuzz
    grain = 1.0 + (0.05 if ground.name != "white" else 0.004) * smooth_noise(rng, h, w, 2.0, streaks)
    if ground.name == "grey":
        period = rng.uniform(2.5, 4.5)
        ys = np.cos(2 * np.pi * (np.arange(h, dtype=np.float32) + rng.uniform(0, period)) / period)
        xs = np.cos(2 * np.pi * (np.arange(w, dtype=np.float32) + rng.uniform(0, period)) / period)
        grain *= 1.0 + rng.uniform(0.02, 0.05) * np.outer(ys, xs)
    return np.clip(base[None, None, :] * (shade * grain)[..., None], 0, 1)


def uneven_light(rng: np.random.Generator, page: np.ndarray) -> None:
    """Light the page (in place) as a scanner lamp or a window does: gently uneven, slightly warm or cool.

    Brighter towards one side (up to 9% from side to side), a soft fall-off to the corners (up to
    6%), a faint large cloud, and a white balance a percent or two off. Moderate on purpose: a
    clean page must still look like a clean scan.
    """
    h, w, _ = page.shape
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(0.0, 0.09)
    light = slope * (math.cos(angle) * xs[None, :] + math.sin(angle) * ys[:, None])
    fall_off = rng.uniform(0.0, 0.06)
    light -= fall_off * 2 * (xs[None, :] ** 2 + ys[:, None] ** 2) - fall_off / 3  # mean about 0
    light += 0.01 * smooth_noise(rng, h, w, max(h, w) * 0.6)
    balance = 1.0 + rng.uniform(-0.015, 0.015) * np.asarray([1.0, 0.0, -1.0], np.float32)
    page *= (1.0 + light)[..., None] * balance.astype(np.float32)
    np.clip(page, 0, 1, out=page)


def blur(alpha: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray((np.clip(alpha, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.BoxBlur(max(1, int(radius)))), dtype=np.float32) / 255.0


def edge_shade(alpha: np.ndarray, radius: float) -> np.ndarray:
    """0 deep inside the shape, rising to 1 at its edge, over about `radius` pixels."""
    return np.clip(1.0 - (blur(alpha, radius) - 0.5) * 2.0, 0, 1)
