"""Ink on a page: shaped text drawn as coverage masks, ruled lines, the scribe's uneven pen, the blend onto the surface.

Text and rules are drawn as float coverage (0..1) first and coloured last, so the hand's
waviness and pressure can bend and thicken all the strokes of a page at once.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from manurestore.data.synth.texture import smooth_noise

# Red for rubrics and rules, on both leaves and folios.
RED_INKS = ((176, 44, 30), (196, 62, 38), (160, 38, 36), (204, 80, 44))


def apply_ink(page: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Multiply-blend `color` over `page` with coverage `alpha` (paper texture shows through)."""
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return
    ya, yb, xa, xb = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    page[ya:yb, xa:xb] *= 1.0 - alpha[ya:yb, xa:xb, None] * (1.0 - color)


def vline(mask: np.ndarray, x: float, y0: float, y1: float, half: float, wobble: np.ndarray) -> None:
    """A ruled vertical line into `mask`, `half` pixels either side of x, shifted by `wobble[y]`."""
    h, w = mask.shape
    ya, yb = max(0, int(y0)), min(h, int(math.ceil(y1)))
    xa, xb = max(0, int(x - half - 3)), min(w, int(x + half + 4))
    if ya >= yb or xa >= xb:
        return
    xs = np.arange(xa, xb, dtype=np.float32) + 0.5
    a = np.clip(half - np.abs(xs[None, :] - x - wobble[ya:yb, None]) + 0.5, 0, 1)
    np.maximum(mask[ya:yb, xa:xb], a, out=mask[ya:yb, xa:xb])


def hline(mask: np.ndarray, y: float, x0: float, x1: float, half: float, wobble: np.ndarray) -> None:
    """A ruled horizontal line into `mask`, `half` pixels either side of y, shifted by `wobble[x]`."""
    h, w = mask.shape
    xa, xb = max(0, int(x0)), min(w, int(math.ceil(x1)))
    ya, yb = max(0, int(y - half - 3)), min(h, int(y + half + 4))
    if ya >= yb or xa >= xb:
        return
    ys = np.arange(ya, yb, dtype=np.float32) + 0.5
    a = np.clip(half - np.abs(ys[:, None] - y - wobble[None, xa:xb]) + 0.5, 0, 1)
    np.maximum(mask[ya:yb, xa:xb], a, out=mask[ya:yb, xa:xb])


def _dilate(m: np.ndarray) -> np.ndarray:
    """Each pixel the max of itself and its four neighbours: a stroke one pixel bolder."""
    out = m.copy()
    np.maximum(out[1:], m[:-1], out=out[1:])
    np.maximum(out[:-1], m[1:], out=out[:-1])
    np.maximum(out[:, 1:], m[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], m[:, 1:], out=out[:, :-1])
    return out


def _erode(m: np.ndarray) -> np.ndarray:
    """Each pixel the min of itself and its four neighbours: a stroke one pixel finer."""
    out = m.copy()
    np.minimum(out[1:], m[:-1], out=out[1:])
    np.minimum(out[:-1], m[1:], out=out[:-1])
    np.minimum(out[:, 1:], m[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], m[:, 1:], out=out[:, :-1])
    return out


def paste_run(
    canvas: np.ndarray, x: float, baseline: float, text: str, font: ImageFont.FreeTypeFont,
    width: float, above: float, below: float, size: float, anchor: str = "ls",
) -> None:
    """Draw `text` (coverage 0..1) into the float canvas, its anchor at (x, baseline).

    The strip is sized from the known advance width and the font's vertical metrics plus a
    margin for overhangs: a getbbox call would cost as much as the rendering itself with
    the variable font.
    """
    pad = int(math.ceil(size * 0.6)) + 2
    top = int(math.ceil(size * (above * 1.35 + 0.1))) + 2
    depth = int(math.ceil(size * (below * 1.6 + 0.1))) + 2
    origin = pad + (width / 2 if anchor[0] == "m" else 0.0)
    fx, fy = x - math.floor(x), baseline - math.floor(baseline)
    strip = Image.new("L", (int(width) + 2 * pad + 2, top + depth), 0)
    ImageDraw.Draw(strip).text((origin + fx, top + fy), text, font=font, fill=255, anchor=anchor, language="sa")
    x_left = math.floor(x) - int(origin - pad) - pad
    _max_into(canvas, np.asarray(strip, dtype=np.float32) / 255.0, x_left, math.floor(baseline) - top)


def _max_into(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = canvas.shape
    ph, pw = patch.shape
    xa, ya = max(0, x), max(0, y)
    xb, yb = min(w, x + pw), min(h, y + ph)
    if xa < xb and ya < yb:
        np.maximum(canvas[ya:yb, xa:xb], patch[ya - y:yb - y, xa - x:xb - x], out=canvas[ya:yb, xa:xb])


def vary_strokes(
    rng: np.random.Generator, ink: np.ndarray, red: np.ndarray, size: float, pitch: float,
    column_shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline waviness, stroke-width and ink-density variation, applied to the text masks."""
    h, w = ink.shape
    used = (ink > 0) | (red > 0)
    rows, cols_any = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
    if rows.size == 0:
        return ink, red
    amp = size * rng.uniform(0.025, 0.06)
    reach = int(math.ceil(amp * 3 + 4 + (np.abs(column_shift).max() if column_shift is not None else 0)))
    ya, yb = max(0, rows[0] - reach), min(h, rows[-1] + reach + 1)
    xa, xb = max(0, cols_any[0] - 2), min(w, cols_any[-1] + 3)
    masks = np.stack([ink[ya:yb, xa:xb], red[ya:yb, xa:xb]])
    ch, cw = yb - ya, xb - xa
    # slow vertical displacement: lines undulate and drift by a pixel or two
    disp = smooth_noise(rng, ch, cw, pitch * 1.3, size * rng.uniform(4, 9)) * amp
    if column_shift is not None:  # e.g. the bend of a palm leaf
        disp += column_shift[None, xa:xb]
    ys = np.arange(ch, dtype=np.float32)[:, None] - disp
    y0 = np.floor(ys)
    frac = ys - y0
    y0 = y0.astype(np.int64)
    a = np.clip(y0, 0, ch - 1)
    b = np.clip(y0 + 1, 0, ch - 1)
    cols = np.arange(cw)[None, :]
    has_red = bool(masks[1].any())
    layers = (0, 1) if has_red else (0,)
    # pen pressure: blend towards a dilated or eroded stroke, smoothly over the page
    stroke = smooth_noise(rng, ch, cw, size * 2.5) * rng.uniform(0.12, 0.25) + rng.uniform(-0.1, 0.12)
    thick = np.clip(stroke, 0, 0.45)
    thin = np.clip(-stroke, 0, 0.35)
    # ink density: the pen runs dry and is re-dipped; darker and lighter passages
    density = 1.0 - np.clip(0.5 + 0.5 * smooth_noise(rng, ch, cw, size * 3.0, size * 6.0), 0, 1) * rng.uniform(0.08, 0.2)
    out = [ink, red]
    for k in layers:
        m = masks[k][a, cols] * (1 - frac) + masks[k][b, cols] * frac
        m = m + thick * (_dilate(m) - m) - thin * (m - _erode(m))
        full = np.zeros((h, w), np.float32)
        full[ya:yb, xa:xb] = np.clip(m, 0, 1) * density
        out[k] = full
    return out[0], out[1]
