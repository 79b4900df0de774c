"""The training-flow picture: clean → degraded → restored, and where the restored page is still wrong.

The page is degraded exactly as `manurestore degrade` would degrade it (the per-image seed from the
job's seed and the file name, rounded to 8 bits), with the record of which ops fired and the values
they drew, then restored at full resolution by the tiler `restore` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from manurestore.degradations.files import degrade_page
from manurestore.degradations.pipeline import Pipeline
from manurestore.inference.evaluation import page_metrics
from manurestore.inference.tiling import TiledRestorer
from manurestore.viz import panels
from manurestore.viz.panels import Text

MAX_WIDTH = 2000  # the figure's page area, pixels
MAX_HEIGHT = 1500
GAP = 12
MIN_PANEL_WIDTH = 280
DETAIL_BELOW_SCALE = 0.75  # panels shown smaller than this get a row of 1:1 crops


@dataclass
class FlowResult:
    identity: str
    clean: np.ndarray  # uint8 H×W×3
    degraded: np.ndarray
    restored: np.ndarray
    fired: list[dict]  # ops that fired, with their drawn values
    degraded_metrics: dict  # degraded vs clean
    restored_metrics: dict  # restored vs clean


def run_flow(clean: np.ndarray, pipeline: Pipeline, seed: int, identity: str, restorer: TiledRestorer,
             device: torch.device) -> FlowResult:
    clean = panels.as_rgb(clean)
    degraded, fired = degrade_page(clean, pipeline, seed, identity, device)
    restored = restorer.restore(degraded)
    return FlowResult(identity, clean, degraded, restored, fired,
                      page_metrics(degraded, clean), page_metrics(restored, clean))


def format_value(value) -> str | None:
    """A drawn value as short text; per-slot lists (a stain's centres) are left out."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return None


def describe_op(record: dict) -> str:
    """`gaussian_noise sigma=0.041`: the op and its scalar draws."""
    values = [f"{key}={text}" for key, value in record.items() if key != "op" and (text := format_value(value)) is not None]
    return " ".join([str(record["op"]), *values])


def signed(value: float, decimals: int) -> str:
    """+1.23 / −0.45, and ±0.00 for what rounds to zero (not "-0.000")."""
    text = f"{round(value, decimals) + 0.0:+.{decimals}f}"
    return "±" + text[1:] if float(text) == 0 else text


def describe_fired(fired: list[dict]) -> str:
    return "; ".join(describe_op(record) for record in fired) if fired else "none (the page is unchanged)"


def _layout(width: int, height: int) -> tuple[int, float]:
    """(columns, scale) for four panels: the arrangement that shows the page largest, then the
    one closest to a 16:10 figure. Small pages are enlarged by a whole factor (at most 4, and to
    about 480 pixels wide) so their pixels stay square; large pages are shrunk."""
    options = []
    for columns in (4, 2, 1):
        rows = 4 // columns
        scale = min((MAX_WIDTH - (columns - 1) * GAP) / (columns * width), (MAX_HEIGHT - rows * 160) / (rows * height))
        options.append((columns, scale))
    best = max(scale for _, scale in options)
    near = [columns for columns, scale in options if scale >= min(best, 1.0) * 0.95]
    shown = min(best, 1.0)
    columns = panels.best_columns(4, round(width * shown), round(height * shown) + 160, choices=near)
    scale = dict(options)[columns]
    if scale >= 2:
        return columns, float(max(1, min(4, int(scale), 480 // width)))
    return columns, min(1.0, scale)


def flow_figure(result: FlowResult, *, preset: str, seed: int, model: str) -> Image.Image:
    """Title, four labelled panels (clean, degraded, restored, error heat map with a colour bar),
    and 1:1 crops of the busiest region when the panels had to be shrunk."""
    height, width = result.clean.shape[:2]
    columns, scale = _layout(width, height)
    enlarge = int(scale) if scale > 1 else 1
    size = (width * enlarge, height * enlarge) if enlarge > 1 else panels.fit_size(width, height, max(1, round(width * scale)))
    scale = size[0] / width
    error = panels.error_map(result.restored, result.clean)
    vmax = panels.error_scale(error)
    heat = panels.colourize(error, vmax)
    images = [panels.resize(page, size, pixelated=enlarge > 1) for page in (result.clean, result.degraded, result.restored, heat)]

    detail = None
    if scale < DETAIL_BELOW_SCALE:
        panel_w = max(MIN_PANEL_WIDTH, size[0])
        figure_w = columns * panel_w + (columns - 1) * GAP
        crop_w = max(64, (figure_w - 3 * GAP) // 4)
        detail = panels.detail_box(result.clean, crop_w, max(48, min(crop_w * 3 // 4, 400)))
        for image in images:
            panels.outline(image, detail, scale)

    tile_w = max(MIN_PANEL_WIDTH, size[0])
    k = min(1.5, max(1.0, tile_w / 640))  # text grows with the panels, so it reads at the same zoom

    def pt(points: int) -> int:
        return round(points * k)

    dm, rm = result.degraded_metrics, result.restored_metrics
    shown = f"shown at {scale:.0%}" + (" (pixels enlarged)" if enlarge > 1 else "")
    captions = [
        [Text("1  clean original", pt(18), True), Text(f"{width}×{height} px, {shown}", pt(15), muted=True)],
        [Text("2  degraded input", pt(18), True), Text(f"preset {preset}, seed {seed}", pt(15), muted=True),
         Text(f"PSNR {dm['psnr']:.2f} dB · SSIM {dm['ssim']:.3f} vs clean", pt(15))],
        [Text("3  restored output", pt(18), True), Text(f"model {model}", pt(15), muted=True),
         Text(f"PSNR {rm['psnr']:.2f} dB ({signed(rm['psnr'] - dm['psnr'], 2)}) · "
              f"SSIM {rm['ssim']:.3f} ({signed(rm['ssim'] - dm['ssim'], 3)}) vs clean", pt(15))],
        [Text("4  error |restored − clean|", pt(18), True),
         Text(f"mean {float(error.mean()):.2f} · max {float(error.max()):.0f} on the 0–255 scale", pt(15), muted=True)],
    ]
    bar = panels.colour_bar(tile_w, vmax, "mean absolute error over R, G, B (0–255); brighter is worse", size=pt(13))
    tiles = panels.labelled_tiles(images, captions, footers=[None, None, None, bar], min_width=MIN_PANEL_WIDTH)
    body = panels.grid(tiles, columns, gap=GAP)

    title = panels.caption([
        Text(f"training flow: {result.identity}", pt(22), True),
        Text(f"ops that fired: {describe_fired(result.fired)}", pt(16)),
        Text(f"degraded vs clean: PSNR {dm['psnr']:.2f} dB, SSIM {dm['ssim']:.3f}   →   "
             f"restored vs clean: PSNR {rm['psnr']:.2f} dB, SSIM {rm['ssim']:.3f}   "
             f"(gain {signed(rm['psnr'] - dm['psnr'], 2)} dB, {signed(rm['ssim'] - dm['ssim'], 3)})", pt(16), True),
    ], body.width, padding=14)
    parts = [title, body]
    if detail is not None:
        parts.append(_detail_row(result, heat, detail, body.width, pt))
    return panels.stack(parts)


def _detail_row(result: FlowResult, heat: np.ndarray, box: panels.Box, width: int, pt) -> Image.Image:
    left, top, right, bottom = box
    crops = [Image.fromarray(panels.crop(page, box)) for page in (result.clean, result.degraded, result.restored, heat)]
    names = ["clean", "degraded", "restored", "error"]
    tiles = panels.labelled_tiles(crops, [[Text(f"{name}, 1:1", pt(14), True)] for name in names], min_width=64)
    row = panels.grid(tiles, 4, gap=GAP)
    header = panels.caption([Text(f"native resolution (1:1 pixels) of the blue box: x {left}–{right}, y {top}–{bottom}", pt(16), True)],
                            max(width, row.width), padding=14)
    return panels.stack([header, row])
