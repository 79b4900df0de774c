"""Pillow building blocks for the pictures: labelled tiles, heat maps with a colour bar, grids.

Every function takes and returns uint8 H×W×3 arrays or Pillow images, never writes files
(`manurestore.data.io.write_image` does that), and never changes an aspect ratio: large pages
are downscaled for display with both sides scaled alike, and `detail_box` picks a region to
show at native resolution beside them, so what downscaling hides (noise, specks, blur) stays
visible.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (90, 90, 90)
BOX_COLOUR = (0, 170, 255)
ERROR_CMAP = "inferno"

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


# --------------------------------------------------------------------------- fonts and text


@functools.lru_cache(maxsize=None)
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, so always there); Pillow's default font otherwise."""
    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)
    except Exception:  # no matplotlib font file: Pillow's own (scalable when FreeType is there)
        return ImageFont.load_default(size)


def text_width(text: str, face: ImageFont.ImageFont) -> int:
    left, _, right, _ = face.getbbox(text)
    return int(math.ceil(right - left))


def line_height(face: ImageFont.ImageFont) -> int:
    ascent, descent = face.getmetrics() if hasattr(face, "getmetrics") else (face.size, face.size // 4)
    return int(ascent + descent + max(2, (ascent + descent) // 6))


def wrap(text: str, face: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels; a word longer than the width is cut by characters."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = word if not current else f"{current} {word}"
        if text_width(candidate, face) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(word, face) > width and len(word) > 1:
            cut = len(word)
            while cut > 1 and text_width(word[:cut], face) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


@dataclass(frozen=True)
class Text:
    """A line of a caption: its text, size and whether it is bold or muted."""

    text: str
    size: int = 15
    bold: bool = False
    muted: bool = False


def caption(items: Sequence[Text | str], width: int, padding: int = 8, height: int | None = None) -> Image.Image:
    """A white band with the lines wrapped to `width`; at least `height` high when given."""
    laid_out: list[tuple[str, ImageFont.ImageFont, tuple[int, int, int]]] = []
    inner = max(8, width - 2 * padding)
    for item in items:
        item = Text(item) if isinstance(item, str) else item
        face = font(item.size, item.bold)
        colour = MUTED if item.muted else INK
        for line in wrap(item.text, face, inner):
            laid_out.append((line, face, colour))
    needed = padding * 2 + sum(line_height(face) for _, face, _ in laid_out)
    band = Image.new("RGB", (width, max(needed, height or 0)), BACKGROUND)
    draw = ImageDraw.Draw(band)
    y = padding
    for line, face, colour in laid_out:
        draw.text((padding, y), line, fill=colour, font=face)
        y += line_height(face)
    return band


# --------------------------------------------------------------------------- arrays and sizes


def as_rgb(array: np.ndarray) -> np.ndarray:
    """uint8 H×W, H×W×1 or H×W×3 → H×W×3."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def fit_size(width: int, height: int, max_width: int | None, max_height: int | None = None) -> tuple[int, int]:
    """The largest size within the bounds with the same aspect ratio; never larger than the page."""
    scale = 1.0
    if max_width:
        scale = min(scale, max_width / width)
    if max_height:
        scale = min(scale, max_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(array: np.ndarray, size: tuple[int, int], pixelated: bool = False) -> Image.Image:
    """A Pillow image of `array` at (width, height): Lanczos, or nearest for pixel-exact enlargements."""
    image = Image.fromarray(as_rgb(array))
    if image.size == tuple(size):
        return image
    method = Image.Resampling.NEAREST if pixelated else Image.Resampling.LANCZOS
    return image.resize(size, method, reducing_gap=None if pixelated else 3.0)


def downscale(array: np.ndarray, max_width: int | None, max_height: int | None = None) -> tuple[Image.Image, float]:
    """The page fitted into the bounds (aspect kept, never enlarged) and the scale used."""
    height, width = array.shape[:2]
    size = fit_size(width, height, max_width, max_height)
    return resize(array, size), size[0] / width


# --------------------------------------------------------------------------- where to look


def detail_box(page: np.ndarray, width: int, height: int) -> Box:
    """A width×height window (clipped to the page) with the most edges: text rather than margin.

    Edge density is measured on a copy reduced to at most ~1 megapixel, so the choice is quick on
    any page; the same page and size always give the same box.
    """
    page_h, page_w = page.shape[:2]
    width, height = min(width, page_w), min(height, page_h)
    if width == page_w and height == page_h:
        return 0, 0, page_w, page_h
    factor = max(1, math.ceil(math.sqrt(page_h * page_w / 1_000_000)))
    gray = as_rgb(page)[::factor, ::factor].astype(np.float32).mean(axis=2)
    edges = np.zeros_like(gray)
    edges[:, 1:] += np.abs(np.diff(gray, axis=1))
    edges[1:, :] += np.abs(np.diff(gray, axis=0))
    integral = np.pad(edges.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    bw, bh = max(1, width // factor), max(1, height // factor)
    small_h, small_w = gray.shape
    step_y, step_x = max(1, bh // 4), max(1, bw // 4)
    ys = np.unique(np.r_[np.arange(0, max(1, small_h - bh + 1), step_y), max(0, small_h - bh)])
    xs = np.unique(np.r_[np.arange(0, max(1, small_w - bw + 1), step_x), max(0, small_w - bw)])
    y0, x0 = ys[:, None], xs[None, :]
    y1, x1 = np.minimum(y0 + bh, small_h), np.minimum(x0 + bw, small_w)
    score = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    # Prefer the middle of the page among near-equal windows (ties are common on blank pages).
    centre = -(((y0 + bh / 2) / small_h - 0.5) ** 2 + ((x0 + bw / 2) / small_w - 0.5) ** 2)
    best = np.unravel_index(np.argmax(score + 1e-6 * (score.max() + 1) * centre), score.shape)
    top = min(int(ys[best[0]]) * factor, page_h - height)
    left = min(int(xs[best[1]]) * factor, page_w - width)
    return left, top, left + width, top + height


def crop(array: np.ndarray, box: Box) -> np.ndarray:
    left, top, right, bottom = box
    return array[top:bottom, left:right]


def outline(image: Image.Image, box: Box, scale: float, colour=BOX_COLOUR) -> Image.Image:
    """Draw `box` (page coordinates) on a display copy shown at `scale`."""
    left, top, right, bottom = (round(v * scale) for v in box)
    width = max(2, round(min(image.size) / 150))
    ImageDraw.Draw(image).rectangle(
        (left, top, max(left + 1, right - 1), max(top + 1, bottom - 1)), outline=colour, width=width
    )
    return image


# --------------------------------------------------------------------------- heat maps


def error_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| averaged over RGB, float32 H×W in 0–255 units."""
    return np.abs(as_rgb(a).astype(np.int16) - as_rgb(b).astype(np.int16)).mean(axis=2, dtype=np.float32)


def nice_ceiling(value: float, minimum: float = 8.0) -> float:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at or above `value`, at least `minimum`."""
    value = max(float(value), minimum)
    exponent = math.floor(math.log10(value))
    for mantissa in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        candidate = mantissa * 10**exponent
        if candidate >= value - 1e-9:
            return candidate
    return 10.0 ** (exponent + 1)


def error_scale(error: np.ndarray) -> float:
    """Colour-bar top: a round number at the 99.5th percentile, so a few outliers do not wash it out."""
    sample = error[:: max(1, error.shape[0] // 512), :: max(1, error.shape[1] // 512)]
    return min(255.0, nice_ceiling(float(np.percentile(sample, 99.5)) if sample.size else 0.0))


def colourize(values: np.ndarray, vmax: float, cmap: str = ERROR_CMAP) -> np.ndarray:
    """float H×W in [0, vmax] (clipped) → uint8 H×W×3 through a matplotlib colour map."""
    import matplotlib

    lut = (matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)
    index = np.clip(values * (255.0 / max(vmax, 1e-9)), 0, 255).round().astype(np.uint8)
    return lut[index]


def colour_bar(width: int, vmax: float, label: str, cmap: str = ERROR_CMAP, size: int = 13) -> Image.Image:
    """A horizontal colour bar with ticks at 0, ¼, ½, ¾ and the top (marked ≥: values above are clipped)."""
    face = font(size)
    padding, bar_h = 10, max(14, size + 2)
    bar_w = max(40, width - 2 * padding)
    ramp = colourize(np.tile(np.linspace(0, vmax, bar_w, dtype=np.float32), (bar_h, 1)), vmax, cmap)
    label_lines = wrap(label, face, bar_w)
    height = padding + line_height(face) * len(label_lines) + bar_h + 5 + line_height(face) + padding // 2
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = padding // 2
    for line in label_lines:
        draw.text((padding, y), line, fill=INK, font=face)
        y += line_height(face)
    image.paste(Image.fromarray(ramp), (padding, y))
    draw.rectangle((padding, y, padding + bar_w - 1, y + bar_h - 1), outline=MUTED)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if bar_w >= 240 else [0.0, 0.5, 1.0]
    for fraction in ticks:
        x = padding + round(fraction * (bar_w - 1))
        draw.line((x, y + bar_h, x, y + bar_h + 4), fill=INK)
        value = fraction * vmax
        text = f"{value:g}" if fraction < 1 else f"≥{value:g}"
        tw = text_width(text, face)
        draw.text((min(max(padding, x - tw // 2), width - padding - tw), y + bar_h + 5), text, fill=INK, font=face)
    return image


# --------------------------------------------------------------------------- tiles and layout


def tile(image: Image.Image, header: Image.Image | None = None, footer: Image.Image | None = None,
         width: int | None = None) -> Image.Image:
    """header / image / footer stacked, the image centred in `width` (never stretched)."""
    width = max(width or 0, image.width, header.width if header else 0, footer.width if footer else 0)
    parts = [part for part in (header, image, footer) if part is not None]
    out = Image.new("RGB", (width, sum(part.height for part in parts)), BACKGROUND)
    y = 0
    for part in parts:
        out.paste(part, ((width - part.width) // 2 if part is image else 0, y))
        y += part.height
    return out


def labelled_tiles(images: Sequence[Image.Image], captions: Sequence[Sequence[Text | str]],
                   footers: Sequence[Image.Image | None] | None = None, min_width: int = 220,
                   row_size: int | None = None) -> list[Image.Image]:
    """One tile per image with its caption above and its footer (a colour bar, a crop) below.

    Tiles share one width; the captions of each row (`row_size` tiles, default all) share one
    height, so the images of a row line up.
    """
    width = max([min_width] + [image.width for image in images])
    row_size = row_size or len(images)
    headers = [caption(lines, width) for lines in captions]
    for start in range(0, len(headers), row_size):
        height = max(header.height for header in headers[start : start + row_size])
        for index in range(start, min(start + row_size, len(headers))):
            headers[index] = caption(captions[index], width, height=height)
    footers = list(footers or [None] * len(images))
    return [tile(image, header, footer, width) for image, header, footer in zip(images, headers, footers)]


def grid(tiles: Sequence[Image.Image], columns: int, gap: int = 12, margin: int = 12,
         background=BACKGROUND) -> Image.Image:
    """Tiles in rows of `columns`, top-left aligned in cells as wide as the widest tile and as
    high as the highest tile of their row."""
    columns = max(1, min(columns, len(tiles)))
    rows = [tiles[start : start + columns] for start in range(0, len(tiles), columns)]
    cell_w = max(t.width for t in tiles)
    heights = [max(t.height for t in row) for row in rows]
    out = Image.new("RGB", (2 * margin + columns * cell_w + (columns - 1) * gap,
                            2 * margin + sum(heights) + (len(rows) - 1) * gap), background)
    y = margin
    for row, height in zip(rows, heights):
        for column, item in enumerate(row):
            out.paste(item, (margin + column * (cell_w + gap), y))
        y += height + gap
    return out


def stack(parts: Sequence[Image.Image], gap: int = 0, background=BACKGROUND) -> Image.Image:
    """Images one under the other, left aligned, on the widest one's width."""
    width = max(part.width for part in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts) + gap * (len(parts) - 1)), background)
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height + gap
    return out


def best_columns(count: int, cell_w: int, cell_h: int, target_aspect: float = 1.6,
                 choices: Sequence[int] | None = None) -> int:
    """How many columns make a grid of `count` cells closest to `target_aspect` (width / height)."""
    options = choices or range(1, count + 1)

    def distance(columns: int) -> float:
        rows = math.ceil(count / columns)
        return abs(math.log((columns * cell_w) / (rows * cell_h) / target_aspect))

    return min(options, key=lambda columns: (distance(columns), -columns))


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).copy()
