"""Palm-leaf leaves: long, narrow, straw to dark brown or grey, rounded ends, string holes the text keeps clear of.

:func:`paint_palm_leaf` reads top to bottom as the order in which the page's generator is drawn
from; moving a step moves every later draw and changes every page, so steps keep their order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from manurestore.data.synth.fonts import FontChoice, choose_font, vertical_metrics
from manurestore.data.synth.ink import RED_INKS, apply_ink, hline, vary_strokes, vline
from manurestore.data.synth.layout import (
    MIN_FONT_SIZE, Line, TextBlock, Writing, fit_lines, rule_lines, text_units, write_lines, write_margin_number,
)
from manurestore.data.synth.materials import LEAF_MATERIALS, Substrate, choose_substrate
from manurestore.data.synth.text import to_devanagari_digits
from manurestore.data.synth.texture import (
    Backdrop, backdrop, blur, choose_backdrop, edge_shade, noise1d, rgb, smooth_noise, uneven_light,
)

# lamp black rubbed into the incisions; now and then browner
_INKS = {"black": (24, 20, 16), "brown-black": (52, 38, 26)}
_MIN_CONTRAST = 45  # grey levels between the leaf and its backdrop


@dataclass(frozen=True)
class PalmLeaf:
    """What was painted on a leaf: its writing, string holes, material and colour, backdrop and ink."""

    writing: Writing
    holes: int  # 1 or 2
    material: str  # one of LEAF_MATERIALS' names
    colour: tuple[int, int, int]  # the leaf's colour before texture and light, 0-255
    backdrop: str  # "dark", "grey" or "white"
    ink: str  # one of _INKS


@dataclass(frozen=True)
class _Leaf:
    """The leaf's outline in page pixels: centred near (cx, cy), rounded ends, a slight taper and bend."""

    length: float
    height: float
    scale: float  # the leaf's height over 300 pixels: what the sizes of its texture are scaled by
    cx: float
    cy: float
    end_r: float  # how far the rounding of each end reaches in
    power: float  # of the superellipse that rounds the ends
    taper: float
    bend: float

    @property
    def x_left(self) -> float:
        return self.cx - self.length / 2

    @property
    def x_right(self) -> float:
        return self.cx + self.length / 2

    def along(self, x):
        """Position along the leaf: -1 at its left end, 0 at the centre, 1 at its right end."""
        return (x - self.cx) / (self.length / 2)

    def middle(self, u):
        """The y of the leaf's middle line at position `u` along it (it bends a little)."""
        return self.cy + self.bend * (1 - u**2)


@dataclass(frozen=True, eq=False)
class _Holes:
    """The string holes: their centres and radius, the coverage they cut out, the worn rim round them."""

    centres: list[tuple[float, float]]
    radius: float
    cut: np.ndarray
    rim: np.ndarray


def paint_palm_leaf(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, PalmLeaf]:
    """A leaf on its backdrop as float RGB (h, w, 3) in 0..1, and what was painted on it."""
    leaf = _leaf_outline(rng, w, h)
    coverage = _leaf_coverage(rng, leaf, w, h)
    holes = _string_holes(rng, leaf, w, h)
    coverage *= 1 - holes.cut
    substrate = choose_substrate(rng, LEAF_MATERIALS)
    surface = _leaf_surface(rng, leaf, substrate, coverage, holes.rim, w, h)

    block = _text_block(rng, leaf)
    n_lines = int(rng.integers(4, 9))
    choice = choose_font(rng)
    above, below = vertical_metrics(choice)
    spacing = rng.uniform(0.9, 1.1)
    n_lines, pitch, size = fit_lines(n_lines, block.bottom - block.top, block.right - block.left, above + below, spacing,
                                     per_line=(14, 80))
    band_mode = rng.random() < 0.65  # blank column the full height, or only round the hole
    gap_half = holes.radius * (rng.uniform(2.5, 4.5) if band_mode else rng.uniform(1.6, 2.4)) + size * 0.3
    if band_mode:
        block, n_lines, pitch, size = _fit_between_holes(block, holes, gap_half, n_lines, pitch, size,
                                                         line_height=(above + below) * spacing)
    lines = rule_lines(rng, n_lines, block, pitch, size, choice, above=above, below=below,
                       cuts=functools.partial(_round_the_holes, holes, gap_half, band_mode))

    continuous = rng.random() < 0.6
    red_marks = rng.random() < 0.25
    units = text_units(rng, continuous=continuous, red_marks=red_marks, red_words=0.0, invocation=rng.random() < 0.1)
    ink, red, texts = write_lines(rng, lines, choice, units, (h, w), continuous=continuous, above=above, below=below)
    margin_text = _folio_number(rng, ink, leaf, block, choice, size, above=above, below=below)
    # the text and its ruling follow the leaf's gentle bend
    bend_shift = _bend_shift(leaf, w)
    ink_mask, red_mask = vary_strokes(rng, ink, red, size, pitch, bend_shift)

    ink_name = "black" if rng.random() < 0.7 else "brown-black"
    ink_color = rgb(_INKS[ink_name]) * rng.uniform(0.8, 1.3)
    ruling, margins = _rules(rng, lines, block, leaf.scale, size, above, bend_shift, w, h)
    apply_ink(surface, ruling, ink_color)
    apply_ink(surface, margins * rng.uniform(0.25, 0.5), ink_color)
    apply_ink(surface, ink_mask * rng.uniform(0.88, 0.96), ink_color)
    apply_ink(surface, red_mask * 0.85, rgb(RED_INKS[int(rng.integers(len(RED_INKS)))]))
    ground = choose_backdrop(rng, substrate.luminance, _MIN_CONTRAST)
    page = _on_backdrop(rng, surface, coverage, ground, leaf.scale, w, h)
    uneven_light(rng, page)
    writing = Writing.of(choice, size, texts, margin_text, continuous)
    return page, PalmLeaf(writing, len(holes.centres), substrate.material.name, substrate.colour, ground.name, ink_name)


def _leaf_outline(rng: np.random.Generator, w: int, h: int) -> _Leaf:
    """Nearly the page's width, at most a third as high as it is long, a little off centre."""
    leaf_len = w * rng.uniform(0.9, 0.965)
    leaf_h = min(h * rng.uniform(0.68, 0.84), leaf_len / 3.2)
    cx = w / 2 + rng.uniform(-0.01, 0.01) * w
    cy = h / 2 + rng.uniform(-0.03, 0.03) * h
    end_r = leaf_h * rng.uniform(0.3, 0.8)
    power = rng.uniform(2.0, 3.5)
    taper = rng.uniform(-0.05, 0.05)
    bend = rng.uniform(-0.01, 0.01) * leaf_h
    return _Leaf(leaf_len, leaf_h, leaf_h / 300.0, cx, cy, end_r, power, taper, bend)


def _leaf_coverage(rng: np.random.Generator, leaf: _Leaf, w: int, h: int) -> np.ndarray:
    """The leaf's coverage, antialiased: vertical coverage per column, 4 sub-columns for the ends."""
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    edge_top = noise1d(rng, w, 40 * leaf.scale) * 0.5
    edge_bot = noise1d(rng, w, 40 * leaf.scale) * 0.5
    coverage = np.zeros((h, w), np.float32)
    for sub in (0.125, 0.375, 0.625, 0.875):
        x = np.arange(w, dtype=np.float32) + sub
        u = leaf.along(x)
        half = leaf.height / 2 * (1 + leaf.taper * u)
        into_end = np.maximum(0, np.abs(x - leaf.cx) - (leaf.length / 2 - leaf.end_r)) / leaf.end_r
        prof = np.where(into_end < 1, np.clip(1 - into_end**leaf.power, 0, 1) ** (1 / leaf.power), 0.0)
        half = half * prof
        centre = leaf.middle(u)
        top = centre - half + edge_top
        bot = centre + half + edge_bot
        cov = np.clip(np.minimum(ys - top[None, :], bot[None, :] - ys) + 0.5, 0, 1)
        cov[:, prof <= 0] = 0
        coverage += cov * 0.25
    return coverage


def _string_holes(rng: np.random.Generator, leaf: _Leaf, w: int, h: int) -> _Holes:
    """One hole near the middle or two about a third of the way in, on the leaf's middle line."""
    n_holes = 2 if rng.random() < 0.55 else 1
    if n_holes == 2:
        f = rng.uniform(0.25, 0.33)
        hole_x = [leaf.x_left + leaf.length * f, leaf.x_right - leaf.length * rng.uniform(0.25, 0.33)]
    else:
        hole_x = [leaf.cx + rng.uniform(-0.04, 0.04) * leaf.length]
    hole_r = leaf.height * rng.uniform(0.04, 0.065)
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    cut = np.zeros((h, w), np.float32)
    rim = np.zeros((h, w), np.float32)
    centres = []
    box = int(hole_r * 6) + 2
    for hx in hole_x:
        hy = leaf.middle(leaf.along(hx)) + rng.uniform(-0.02, 0.02) * leaf.height
        centres.append((hx, hy))
        ya, yb = max(0, int(hy) - box), min(h, int(hy) + box)
        xa, xb = max(0, int(hx) - box), min(w, int(hx) + box)
        d = np.hypot(xs[:, xa:xb] - hx, ys[ya:yb] - hy)
        cut[ya:yb, xa:xb] = np.maximum(cut[ya:yb, xa:xb], np.clip(hole_r - d + 0.5, 0, 1))
        rim[ya:yb, xa:xb] = np.maximum(rim[ya:yb, xa:xb], np.exp(-np.maximum(d - hole_r, 0) / (hole_r * 0.6)))
    return _Holes(centres, hole_r, cut, rim)


def _leaf_surface(
    rng: np.random.Generator, leaf: _Leaf, substrate: Substrate, coverage: np.ndarray, rim: np.ndarray, w: int, h: int,
) -> np.ndarray:
    """The leaf's colour and texture over the whole page (the backdrop goes round it later)."""
    material = substrate.material
    shift = _bend_shift(leaf, w)
    tone, streaks = _striations(rng, leaf, shift, material.fibres, w, h)
    patches = smooth_noise(rng, h, w, leaf.height * 0.5, leaf.height * 1.2)
    tone += 0.03 * material.mottle * patches + 0.008 * smooth_noise(rng, h, w, 1.5)
    edge = edge_shade(coverage, 10 * leaf.scale)
    tone *= 1.0 - rng.uniform(0.12, 0.25) * material.edges * edge**1.5
    tone *= 1.0 - 0.15 * rim
    ends = _worn_ends(leaf, w)
    tone *= 1.0 - 0.10 * ends
    # browner where handled, at the edges and in some striations: less green and, most, less blue
    browner = np.clip(0.5 * patches + 0.3 * edge + 0.4 * ends + 0.6 * streaks, 0, 1) * rng.uniform(0.04, 0.1)
    tint = np.asarray([0.0, -0.35, -0.9], np.float32)
    return np.clip(substrate.rgb[None, None, :] * tone[..., None] * (1.0 + browner[..., None] * tint), 0, 1)


def _bend_shift(leaf: _Leaf, w: int) -> np.ndarray:
    """How far down the leaf's middle line lies at each column, relative to its centre (its bend)."""
    return (leaf.bend * (1 - leaf.along(np.arange(w, dtype=np.float32) + 0.5) ** 2)).astype(np.float32)


def _along_the_leaf(
    rng: np.random.Generator, shift: np.ndarray, h: int, w: int, cell_y: float, cell_x: float,
) -> np.ndarray:
    """Smooth noise stretched along the leaf (`cell_x` long, `cell_y` across) whose rows follow its bend."""
    reach = int(np.ceil(np.abs(shift).max())) + 1
    noise = smooth_noise(rng, h + 2 * reach, w, cell_y, cell_x)
    rows = np.arange(h, dtype=np.float32)[:, None] + reach - shift[None, :]
    top = np.floor(rows).astype(np.int64)
    frac = rows - top
    upper = np.take_along_axis(noise, top, axis=0)
    lower = np.take_along_axis(noise, np.minimum(top + 1, h + 2 * reach - 1), axis=0)
    return upper + (lower - upper) * frac


def _striations(
    rng: np.random.Generator, leaf: _Leaf, shift: np.ndarray, strength: float, w: int, h: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(tone around 1, where browner 0..1): the leaf's parallel fibres and striations, following its bend.

    Broad bands, striations a few pixels wide that differ a little in colour, long fine fibres
    lighter and darker than the leaf, and sparse dark veins.
    """
    bands = smooth_noise(rng, h, w, leaf.height * rng.uniform(0.06, 0.12), leaf.length * rng.uniform(0.1, 0.3))
    streaks = _along_the_leaf(rng, shift, h, w, rng.uniform(3, 8) * leaf.scale, leaf.length * rng.uniform(0.1, 0.4))
    fibres = _along_the_leaf(rng, shift, h, w, max(1.1, rng.uniform(1.1, 1.8) * leaf.scale),
                             rng.uniform(60, 200) * leaf.scale)
    veins = smooth_noise(rng, h, w, rng.uniform(1.0, 1.8), rng.uniform(80, 200) * leaf.scale)
    veins = np.clip(veins - 1.0, 0, None)  # only the strongest ridges: sparse dark veins
    tone = (1.0 + 0.025 * bands
            + strength * (rng.uniform(0.01, 0.025) * streaks + rng.uniform(0.012, 0.03) * fibres
                          - 0.035 * veins * rng.uniform(0.5, 1.0)))
    return tone, np.clip(-streaks * strength * 0.5, 0, 1)


def _worn_ends(leaf: _Leaf, w: int) -> np.ndarray:
    """0 along most of the leaf, rising to 1 at its ends, which darken a little with handling."""
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    return np.clip((np.abs(xs - leaf.cx) - (leaf.length / 2 - 2.5 * leaf.end_r)) / (2.5 * leaf.end_r), 0, 1)


def _text_block(rng: np.random.Generator, leaf: _Leaf) -> TextBlock:
    """The written area: clear of the rounded ends, within the leaf's narrowest height."""
    min_half = leaf.height / 2 * (1 - abs(leaf.taper))
    margin = leaf.length * rng.uniform(0.025, 0.05)
    left, right = leaf.x_left + leaf.end_r * 0.6 + margin, leaf.x_right - leaf.end_r * 0.6 - margin
    top = leaf.cy - min_half * rng.uniform(0.72, 0.8)
    bottom = leaf.cy + min_half * rng.uniform(0.72, 0.8)
    return TextBlock(left, right, top, bottom)


def _fit_between_holes(
    block: TextBlock, holes: _Holes, gap_half: float, n_lines: int, pitch: float, size: float, *, line_height: float,
) -> tuple[TextBlock, int, float, float]:
    """(block, lines, pitch, size) so that each column between the holes holds several aksharas.

    A column too narrow for that gets a smaller hand and more lines, centred where the block was.
    """
    edges = [block.left] + [e for hx, _ in holes.centres for e in (hx - gap_half, hx + gap_half)] + [block.right]
    narrowest = min(edges[i + 1] - edges[i] for i in range(0, len(edges), 2))
    if narrowest >= 6 * size:
        return block, n_lines, pitch, size
    size = max(narrowest / 6, MIN_FONT_SIZE)
    n_lines = int(np.clip((block.bottom - block.top) // (line_height * size), 1, 8))
    pitch = line_height * size
    middle = (block.top + block.bottom) / 2
    top, bottom = middle - pitch * n_lines / 2, middle + pitch * n_lines / 2
    return TextBlock(block.left, block.right, top, bottom), n_lines, pitch, size


def _round_the_holes(
    holes: _Holes, gap_half: float, band_mode: bool, band_top: float, band_bottom: float,
) -> list[tuple[float, float]]:
    """The stretches of a line that the holes keep blank: always (band mode) or where a hole is near."""
    cuts = []
    for hx, hy in holes.centres:
        near = band_top - holes.radius * 2.2 < hy < band_bottom + holes.radius * 2.2
        if band_mode or near:
            cuts.append((hx - gap_half, hx + gap_half))
    return cuts


def _folio_number(
    rng: np.random.Generator, ink: np.ndarray, leaf: _Leaf, block: TextBlock, choice: FontChoice, size: float,
    *, above: float, below: float,
) -> list[str]:
    """Half the leaves carry their number in the left margin; returns what was written."""
    if rng.random() < 0.5:
        number = to_devanagari_digits(int(rng.integers(2, 300)))
        x = (leaf.x_left + leaf.end_r * 0.5 + block.left) / 2
        write_margin_number(ink, number, x, leaf.cy + size * 0.3, choice, size, above=above, below=below)
        return [number]
    return []


def _rules(
    rng: np.random.Generator, lines: list[Line], block: TextBlock, scale: float, size: float, above: float,
    bend_shift: np.ndarray, w: int, h: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(ruling, margin lines) as coverage: faint lines the text hangs from, double lines closing the block."""
    deco = np.zeros((h, w), np.float32)
    wob_h = noise1d(rng, w, 100 * scale) * 0.4 + bend_shift
    wob_v = noise1d(rng, h, 60 * scale) * 0.4
    if rng.random() < 0.75:  # faint ruling, one line per text line (the text hangs from it)
        for line in lines:
            y = line.baseline - above * size * 0.6
            for x0, x1 in line.intervals:
                hline(deco, y, x0 - size * 0.2, x1 + size * 0.2, 0.45 * max(scale, 0.6), wob_h)
    ruling = deco * rng.uniform(0.07, 0.14)
    margins = np.zeros((h, w), np.float32)
    if rng.random() < 0.7:  # double vertical lines closing the text block
        left, right, top, bottom = block.left, block.right, block.top, block.bottom
        sep = rng.uniform(3, 6) * scale
        for x in (left - size * 0.4, left - size * 0.4 - sep, right + size * 0.4, right + size * 0.4 + sep):
            shift = float(bend_shift[int(np.clip(x, 0, w - 1))])
            vline(margins, x, top - size * 0.1 + shift, bottom + size * 0.1 + shift, 0.6 * max(scale, 0.6), wob_v)
    return ruling, margins


def _on_backdrop(
    rng: np.random.Generator, surface: np.ndarray, coverage: np.ndarray, ground: Backdrop, scale: float, w: int, h: int,
) -> np.ndarray:
    """The leaf laid on its backdrop, with a soft shadow a little below it (light from above)."""
    back = backdrop(rng, ground, h, w)
    drop = max(1, int(round(3 * scale)))
    shadow = np.zeros_like(coverage)
    shadow[drop:] = blur(coverage, 7 * scale)[:-drop]
    depth = 0.45 if ground.name == "dark" else 0.3  # on a pale ground a shadow that deep looks painted on
    back *= (1.0 - depth * shadow * (1 - coverage))[..., None]
    return surface * coverage[..., None] + back * (1 - coverage[..., None])
