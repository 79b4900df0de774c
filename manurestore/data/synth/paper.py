"""Paper folios (pothi format): paper or parchment, red margin rules, a blank motif the text flows round.

:func:`paint_paper_folio` reads top to bottom as the order in which the page's generator is
drawn from; moving a step moves every later draw and changes every page, so steps keep their order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from manurestore.data.synth.fonts import FontChoice, choose_font, vertical_metrics
from manurestore.data.synth.ink import RED_INKS, apply_ink, hline, vary_strokes, vline
from manurestore.data.synth.layout import TextBlock, Writing, fit_lines, rule_lines, text_units, write_lines, write_margin_number
from manurestore.data.synth.materials import PAPER_MATERIALS, Substrate, choose_substrate
from manurestore.data.synth.text import to_devanagari_digits
from manurestore.data.synth.texture import (
    Backdrop, backdrop, choose_backdrop, edge_shade, noise1d, rgb, smooth_noise, uneven_light,
)

# (name, share of folios, colour): carbon black, iron-gall brown, and a faded brown-black
_INKS = (("black", 0.5, (28, 24, 22)), ("brown", 0.3, (74, 48, 30)), ("faded", 0.2, (86, 72, 60)))
_MOTIF_SHAPES = ["square", "diamond", "circle", "none"]
_MIN_CONTRAST = 20  # grey levels between the paper and its backdrop (the cut edge and its shading show too)


@dataclass(frozen=True)
class PaperFolio:
    """What was painted on a folio: its writing, the ink, the central blank, material and colour, backdrop."""

    writing: Writing
    ink: str  # one of _INKS' names
    motif: str  # one of _MOTIF_SHAPES
    material: str  # one of PAPER_MATERIALS' names
    colour: tuple[int, int, int]  # the paper's colour before texture and light, 0-255
    backdrop: str  # "dark", "grey" or "white"


@dataclass(frozen=True)
class _Folio:
    """The folio's rectangle in page pixels; it may reach past the page (full bleed)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def within(self, w: int, h: int) -> _Folio:
        """The part of the folio that lies on the page."""
        return _Folio(max(self.x0, 0), max(self.y0, 0), min(self.x1, w), min(self.y1, h))

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def paint_paper_folio(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, PaperFolio]:
    """A folio on its backdrop as float RGB (h, w, 3) in 0..1, and what was painted on it."""
    scale = h / 512.0
    folio = _folio_rectangle(rng, w, h)
    mask = _folio_mask(rng, folio, w, h, scale)
    substrate = choose_substrate(rng, PAPER_MATERIALS)
    ground = choose_backdrop(rng, substrate.luminance, _MIN_CONTRAST)
    page = _paper_on_backdrop(rng, substrate, ground, mask, w, h, scale)
    visible = folio.within(w, h)

    block = _text_block(rng, visible)
    choice = choose_font(rng)
    above, below = vertical_metrics(choice)
    n_lines, pitch, size = fit_lines(int(rng.integers(7, 12)), block.bottom - block.top, block.right - block.left,
                                     above + below, rng.uniform(0.92, 1.15), per_line=(26, 60))
    red_color = rgb(RED_INKS[int(rng.integers(len(RED_INKS)))])
    ink_name, ink_color = _ink(rng)
    shape, motifs = _central_motifs(rng, block, visible.width, pitch, n_lines)
    pad = size * rng.uniform(0.35, 0.7)
    lines = rule_lines(rng, n_lines, block, pitch, size, choice, above=above, below=below,
                       cuts=functools.partial(_round_the_motifs, shape, motifs, pad))

    continuous = rng.random() < 0.5
    red_marks = rng.random() < 0.75
    units = text_units(
        rng, continuous=continuous, red_marks=red_marks,
        red_words=0.03 if rng.random() < 0.4 else 0.0, invocation=rng.random() < 0.15,
    )
    ink, red, texts = write_lines(rng, lines, choice, units, (h, w), continuous=continuous, above=above, below=below)
    margin_text = _folio_number(rng, ink, visible, block, pitch, choice, size, above=above, below=below)
    ink_mask, red_mask = vary_strokes(rng, ink, red, size, pitch)

    deco, stroke_half = _margin_rules(rng, block, visible, size, scale, w, h)
    _decorate_motifs(rng, deco, shape, motifs, stroke_half)
    apply_ink(page, deco * rng.uniform(0.7, 0.9), red_color)
    apply_ink(page, ink_mask * rng.uniform(0.9, 0.97), ink_color)
    apply_ink(page, red_mask * rng.uniform(0.85, 0.95), red_color)
    uneven_light(rng, page)
    writing = Writing.of(choice, size, texts, margin_text, continuous)
    return page, PaperFolio(writing, ink_name, shape, substrate.material.name, substrate.colour, ground.name)


def _folio_rectangle(rng: np.random.Generator, w: int, h: int) -> _Folio:
    """Full bleed, or a strip of backdrop round the folio."""
    if rng.random() < 0.4:
        return _Folio(-2.0, -2.0, w + 2.0, h + 2.0)
    m = min(w, h) * rng.uniform(0.012, 0.04, size=4)
    return _Folio(m[0], m[1], w - m[2], h - m[3])


def _folio_mask(rng: np.random.Generator, folio: _Folio, w: int, h: int, scale: float) -> np.ndarray:
    """Coverage of the folio, antialiased, its cut edges wavering by a pixel."""
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    jit_x = noise1d(rng, h, 60 * scale)[:, None] * 0.7
    jit_y = noise1d(rng, w, 60 * scale)[None, :] * 0.7
    dist = np.minimum(np.minimum(xs - folio.x0 + jit_x, folio.x1 - xs + jit_x),
                      np.minimum(ys - folio.y0 + jit_y, folio.y1 - ys + jit_y))
    return np.clip(dist + 0.5, 0, 1)


def _paper_on_backdrop(
    rng: np.random.Generator, substrate: Substrate, ground: Backdrop, folio: np.ndarray, w: int, h: int, scale: float,
) -> np.ndarray:
    """The paper, its tone, fibres and darker edges, on the backdrop wherever `folio` does not cover."""
    material = substrate.material
    tone = _paper_tone(rng, material.mottle, w, h, scale)
    fibres = _fibres(rng, w, h, scale)
    tone -= 0.035 * material.fibres * fibres * (1 if rng.random() < 0.7 else -0.6)  # darker fibres, or lighter
    edge = edge_shade(folio, 18 * scale)
    tone *= 1.0 - 0.07 * material.edges * edge
    page = substrate.rgb[None, None, :] * tone[..., None]
    back = backdrop(rng, ground, h, w)
    if material.name == "parchment":
        page = _parchment(rng, page, back, edge, w, h, scale)
    elif material.name == "grey":
        page *= 1.0 - _specks(rng, w, h, scale)[..., None]
    page = np.clip(page, 0, 1)
    return page * folio[..., None] + back * (1 - folio[..., None])


def _paper_tone(rng: np.random.Generator, mottle: float, w: int, h: int, scale: float) -> np.ndarray:
    """Brightness of the paper around 1: cloudy at three scales, sometimes with chain lines."""
    tone = (
        1.0
        + 0.025 * mottle * smooth_noise(rng, h, w, 160 * scale)
        + 0.012 * smooth_noise(rng, h, w, 24 * scale)
        + 0.008 * smooth_noise(rng, h, w, 1.5)
    )
    if rng.random() < 0.5:  # chain lines of hand-made paper
        xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
        period = rng.uniform(70, 120) * scale
        tone += 0.008 * np.cos(2 * np.pi * (xs + rng.uniform(0, period)) / period) ** 8
    return tone


def _fibres(rng: np.random.Generator, w: int, h: int, scale: float) -> np.ndarray:
    """A few hundred short faint strands, as coverage 0..1."""
    fib = Image.new("L", (w, h), 0)
    fd = ImageDraw.Draw(fib)
    n_fib = int(rng.integers(150, 400) * (w * h) / (1024 * 512))
    for _ in range(n_fib):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(4, 22) * scale
        bend = rng.uniform(-0.4, 0.4)
        pts = [(x + math.cos(ang + bend * t) * length * t, y + math.sin(ang + bend * t) * length * t) for t in (0, 0.33, 0.66, 1.0)]
        fd.line(pts, fill=int(rng.integers(60, 255)), width=1)
    return np.asarray(fib, dtype=np.float32) / 255.0


def _parchment(
    rng: np.random.Generator, page: np.ndarray, back: np.ndarray, edge: np.ndarray, w: int, h: int, scale: float,
) -> np.ndarray:
    """Parchment's unevenness: yellower, browner patches (more towards the edges), hair follicles, thin places.

    Where the skin is thin it is slightly translucent: the backdrop shows through a little.
    """
    patches = np.clip(smooth_noise(rng, h, w, 90 * scale, 140 * scale) * 0.6 + 0.6 * edge, 0, 1.5)
    yellowing = np.asarray([0.0, -0.05, -0.16], np.float32) * rng.uniform(0.5, 1.2)
    page = page * (1.0 + patches[..., None] * yellowing)
    page *= 1.0 - _follicles(rng, w, h, scale)[..., None]
    thin = np.clip(0.5 + 0.4 * smooth_noise(rng, h, w, 70 * scale, 110 * scale), 0, 1) ** 2 * rng.uniform(0.02, 0.06)
    return page * (1.0 - thin[..., None]) + back * thin[..., None]


def _follicles(rng: np.random.Generator, w: int, h: int, scale: float) -> np.ndarray:
    """Hair follicles of the skin: tiny dark pores in groups of two to four, as darkening 0..~0.15."""
    pores = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(pores)
    n_groups = int(rng.integers(250, 600) * (w * h) / (1024 * 512))
    for _ in range(n_groups):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(2, 5))):
            px, py = x + rng.normal(0, 2.5 * scale), y + rng.normal(0, 2.5 * scale)
            r = rng.uniform(0.4, 0.9) * max(scale, 0.6)
            draw.ellipse((px - r, py - r, px + r, py + r), fill=int(rng.integers(60, 255)))
    return np.asarray(pores, dtype=np.float32) / 255.0 * rng.uniform(0.08, 0.16)


def _specks(rng: np.random.Generator, w: int, h: int, scale: float) -> np.ndarray:
    """Rag paper's inclusions: a scatter of small dark specks and short dark threads, as darkening 0..~0.3."""
    specks = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(specks)
    for _ in range(int(rng.integers(40, 160) * (w * h) / (1024 * 512))):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() < 0.7:
            r = rng.uniform(0.4, 1.3) * max(scale, 0.6)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(80, 255)))
        else:
            ang, length = rng.uniform(0, np.pi), rng.uniform(3, 10) * scale
            draw.line((x, y, x + math.cos(ang) * length, y + math.sin(ang) * length), fill=int(rng.integers(60, 200)))
    return np.asarray(specks, dtype=np.float32) / 255.0 * rng.uniform(0.15, 0.3)


def _ink(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """The folio's ink: its name and colour (a little darker or lighter than the usual)."""
    names = [name for name, _, _ in _INKS]
    shares = np.asarray([share for _, share, _ in _INKS])
    k = int(rng.choice(len(_INKS), p=shares / shares.sum()))
    return names[k], rgb(_INKS[k][2]) * rng.uniform(0.85, 1.15)


def _text_block(rng: np.random.Generator, visible: _Folio) -> TextBlock:
    """The written area: the visible folio less margins of about a tenth of it."""
    fw, fh = visible.width, visible.height
    return TextBlock(
        left=visible.x0 + fw * rng.uniform(0.075, 0.13),
        right=visible.x1 - fw * rng.uniform(0.075, 0.13),
        top=visible.y0 + fh * rng.uniform(0.07, 0.12),
        bottom=visible.y1 - fh * rng.uniform(0.08, 0.13),
    )


def _central_motifs(
    rng: np.random.Generator, block: TextBlock, folio_width: float, pitch: float, n_lines: int,
) -> tuple[str, list[tuple[float, float, float]]]:
    """The blank's shape and its centres and radii (x, y, r): none, one, or now and then three."""
    left, right = block.left, block.right
    cx, cy = (left + right) / 2 + rng.uniform(-0.01, 0.01) * folio_width, block.top + pitch * n_lines / 2
    shape = str(rng.choice(_MOTIF_SHAPES, p=[0.35, 0.35, 0.15, 0.15]))
    radius = pitch * rng.uniform(1.0, 1.6)
    motifs = []
    if shape != "none":
        motifs.append((cx, cy, radius))
        if rng.random() < 0.12 and right - left > 30 * radius:
            off = (right - left) * rng.uniform(0.27, 0.32)
            motifs += [(cx - off, cy, radius * 0.8), (cx + off, cy, radius * 0.8)]
    return shape, motifs


def _round_the_motifs(
    shape: str, motifs: list[tuple[float, float, float]], pad: float, band_top: float, band_bottom: float,
) -> list[tuple[float, float]]:
    """The stretches of a line (letters from band_top to band_bottom) that the motifs keep blank."""
    cuts = []
    for mx, my, r in motifs:
        dy = 0.0 if band_top <= my <= band_bottom else min(abs(band_top - my), abs(band_bottom - my))
        half = _shape_halfwidth(shape, r, dy)
        if half >= 0:
            cuts.append((mx - half - pad, mx + half + pad))
    return cuts


def _folio_number(
    rng: np.random.Generator, ink: np.ndarray, visible: _Folio, block: TextBlock, pitch: float,
    choice: FontChoice, size: float, *, above: float, below: float,
) -> list[str]:
    """Most folios carry their number in the right margin, low down; returns what was written."""
    if rng.random() < 0.6:
        number = to_devanagari_digits(int(rng.integers(2, 240)))
        x = block.right + (visible.x1 - block.right) * rng.uniform(0.35, 0.55)
        baseline = block.bottom - pitch * rng.uniform(0.2, 1.2)
        write_margin_number(ink, number, x, baseline, choice, size, above=above, below=below)
        return [number]
    return []


def _margin_rules(
    rng: np.random.Generator, block: TextBlock, visible: _Folio, size: float, scale: float, w: int, h: int,
) -> tuple[np.ndarray, float]:
    """Red double lines down both sides of the text, or a double frame round it: (coverage, stroke half-width)."""
    left, right, top, bottom = block.left, block.right, block.top, block.bottom
    deco = np.zeros((h, w), np.float32)
    half = max(0.6, rng.uniform(0.6, 1.2) * scale)
    sep = rng.uniform(3.5, 7.0) * scale
    gap = size * rng.uniform(0.35, 0.8)
    wob_v = noise1d(rng, h, 80 * scale) * 0.5
    wob_h = noise1d(rng, w, 80 * scale) * 0.5
    framed = rng.random() < 0.35
    vy0, vy1 = (top - gap, bottom + gap) if framed else (visible.y0, visible.y1)
    outer = sep if framed else 0.0  # in a frame the outer lines reach the outer corners
    for x, extend in ((left - gap, 0.0), (left - gap - sep, outer), (right + gap, 0.0), (right + gap + sep, outer)):
        vline(deco, x, vy0 - extend, vy1 + extend, half, wob_v)
    if framed:
        hline(deco, top - gap, left - gap, right + gap, half, wob_h)
        hline(deco, top - gap - sep, left - gap - sep, right + gap + sep, half, wob_h)
        hline(deco, bottom + gap, left - gap, right + gap, half, wob_h)
        hline(deco, bottom + gap + sep, left - gap - sep, right + gap + sep, half, wob_h)
    return deco, half


def _decorate_motifs(
    rng: np.random.Generator, deco: np.ndarray, shape: str, motifs: list[tuple[float, float, float]], half: float,
) -> None:
    """A red dot, an outline, both or neither in each blank motif, drawn into `deco`."""
    h, w = deco.shape
    decoration = str(rng.choice(["blank", "dot", "outline", "both"], p=[0.3, 0.3, 0.2, 0.2]))
    for mx, my, r in motifs:
        box = int(r + 6)
        ya, yb = max(0, int(my - box)), min(h, int(my + box))
        xa, xb = max(0, int(mx - box)), min(w, int(mx + box))
        dy = np.arange(ya, yb, dtype=np.float32)[:, None] + 0.5 - my
        dx = np.arange(xa, xb, dtype=np.float32)[None, :] + 0.5 - mx
        if decoration in ("outline", "both"):
            d = _shape_distance(shape, dx, dy, r * 0.85)
            np.maximum(deco[ya:yb, xa:xb], np.clip(half - np.abs(d) + 0.5, 0, 1), out=deco[ya:yb, xa:xb])
        if decoration in ("dot", "both"):
            d = np.hypot(dx, dy) - r * rng.uniform(0.12, 0.22)
            np.maximum(deco[ya:yb, xa:xb], np.clip(-d + 0.5, 0, 1), out=deco[ya:yb, xa:xb])


def _shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance from the outline of a motif of radius r (negative inside)."""
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - r) / math.sqrt(2)
    return np.maximum(np.abs(dx), np.abs(dy)) - r  # square


def _shape_halfwidth(shape: str, r: float, dy_min: float) -> float:
    """Half-width of a centred shape of radius r over a band whose nearest row is dy_min away."""
    if dy_min >= r:
        return -1.0
    if shape == "circle":
        return math.sqrt(r * r - dy_min * dy_min)
    if shape == "diamond":
        return r - dy_min
    return r
