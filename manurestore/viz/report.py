"""The HTML report: one self-contained page with a before/after slider for every restored scan.

Everything is inside the one file: images as base64 data URIs, the CSS and the script inline, no
fonts, scripts or styles from anywhere else, so it opens offline and can be mailed around. Each
page gets a comparison whose divider is dragged (or moved with the slider under it) between the
degraded input on the left and the restored output on the right, zoom buttons that show the
embedded pixels 1:1, 2× or 4× (pixelated, scrollable), and, when a clean target exists, PSNR and
SSIM of the input and of the output against it.

To keep the file a sane size, each picture is embedded at most `max_side` pixels on its long side
as a JPEG; a page that had to be shrunk also gets a second comparison of its busiest region at
native resolution. Metrics are always computed on the full-resolution pages. The initial view can be
set in the URL: `report.html#slider=0` shows only the restored output, `#slider=100` only the
input, `#slider=30&zoom=2` the divider at 30 % and every picture at 2×, `&left=clean` the clean
target left of the line (where there is one) instead of the input.

The page template, its style sheet and its script are package data in `report_assets/`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from manurestore.data.io import write_text
from manurestore.viz import panels

DEFAULT_MAX_SIDE = 2000
DEFAULT_QUALITY = 90
DETAIL_SIZE = (960, 600)  # native-resolution crop shown for pages that were downscaled


@dataclass
class PageEntry:
    """One scan's section of the report (HTML already rendered, so no pixels are kept)."""

    name: str
    html: str
    metrics: dict | None = None  # {"identity": {...}, "restored": {...}, "gain": {...}}


@dataclass
class ReportOptions:
    title: str = "manurestore restoration report"
    model: str = ""
    max_side: int = DEFAULT_MAX_SIDE
    quality: int = DEFAULT_QUALITY
    notes: list[str] = field(default_factory=list)


@cache
def report_asset(name: str) -> str:
    """The page template, style sheet or script, kept as files in `report_assets/` so they read and lint as what they are."""
    return resources.files("manurestore.viz").joinpath("report_assets", name).read_text(encoding="utf-8")


def data_uri(image: Image.Image | np.ndarray, quality: int) -> str:
    """A JPEG data URI (4:4:4 chroma, so thin red rubrics stay red)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(panels.as_rgb(image))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _metrics(degraded: np.ndarray, restored: np.ndarray, clean: np.ndarray) -> dict:
    from manurestore.inference.evaluation import page_metrics

    identity, out = page_metrics(degraded, clean), page_metrics(restored, clean)
    return {"identity": identity, "restored": out,
            "gain": {key: out[key] - identity[key] for key in ("psnr", "ssim", "mse")}}


def _gain_class(value: float) -> str:
    return "gain-pos" if value > 0 else ("gain-neg" if value < 0 else "")


def metrics_table(metrics: dict, caption: str = "") -> str:
    i, r, g = metrics["identity"], metrics["restored"], metrics["gain"]
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="metrics">{head}<tr><th></th><th>PSNR</th><th>SSIM</th></tr>'
        f"<tr><td>degraded input vs clean</td><td>{i['psnr']:.2f} dB</td><td>{i['ssim']:.4f}</td></tr>"
        f"<tr><td>restored output vs clean</td><td>{r['psnr']:.2f} dB</td><td>{r['ssim']:.4f}</td></tr>"
        f"<tr><th>gain</th><th class=\"{_gain_class(g['psnr'])}\">{g['psnr']:+.2f} dB</th>"
        f"<th class=\"{_gain_class(g['ssim'])}\">{g['ssim']:+.4f}</th></tr></table>"
    )


def _comparison(key: str, layers: dict[str, Image.Image], label: str, quality: int) -> str:
    """One slider: the restored output underneath, the input (or the clean target) clipped on top."""
    after = layers["restored"]
    width, height = after.size
    has_clean = "clean" in layers
    uris = {role: data_uri(image, quality) for role, image in layers.items()}
    befores = [f'<img class="before" data-role="degraded" src="{uris["degraded"]}" alt="degraded input">']
    if has_clean:
        befores.append(f'<img class="before" data-role="clean" src="{uris["clean"]}" alt="clean target" hidden>')
    radios = ""
    if has_clean:
        radios = (
            '<span>left of the line: '
            f'<label><input type="radio" name="left-{key}" value="degraded" data-label="degraded input" checked> degraded input</label> '
            f'<label><input type="radio" name="left-{key}" value="clean" data-label="clean target"> clean target</label></span>'
        )
    zoom = "".join(
        f'<button type="button" data-zoom="{level}" aria-pressed="{str(level == "fit").lower()}">{text}</button>'
        for level, text in (("fit", "fit"), ("1", "1:1"), ("2", "2×"), ("4", "4×"))
    )
    return f"""
<div class="compare" data-w="{width}" data-h="{height}">
  <div class="toolbar"><span class="what">{html.escape(label)}</span><span class="zoom">zoom {zoom}</span>{radios}</div>
  <div class="viewport">
    <div class="stage" style="--ar: {width} / {height};">
      <img class="after" data-role="restored" src="{uris['restored']}" alt="restored output">
      {''.join(befores)}
      <div class="divider"></div>
      <span class="tag left">degraded input</span><span class="tag right">restored output</span>
    </div>
  </div>
  <input class="slider" type="range" min="0" max="100" step="0.1" value="50" aria-label="divider position: 0 shows only the restored output, 100 only the input">
</div>"""



def build_page(index: int, name: str, degraded: np.ndarray, restored: np.ndarray, clean: np.ndarray | None = None,
               *, max_side: int = DEFAULT_MAX_SIDE, quality: int = DEFAULT_QUALITY) -> PageEntry:
    """The section for one scan: header, metrics (with a clean target), the comparison(s)."""
    degraded, restored = panels.as_rgb(degraded), panels.as_rgb(restored)
    clean = None if clean is None else panels.as_rgb(clean)
    height, width = degraded.shape[:2]
    metrics = None if clean is None else _metrics(degraded, restored, clean)
    pages = {"degraded": degraded, "restored": restored, **({"clean": clean} if clean is not None else {})}
    layers = {}
    scale = 1.0
    for role, page in pages.items():
        layers[role], scale = panels.downscale(page, max_side, max_side)
    shown_w, shown_h = layers["restored"].size
    if scale < 1:
        size_note = f"{width}×{height} px, embedded at {shown_w}×{shown_h} ({scale:.0%}); detail below at native resolution"
    else:
        size_note = f"{width}×{height} px, embedded at full resolution"
    parts = [f'<section class="page" id="page-{index}"><h2>{html.escape(name)} <small>{size_note}</small></h2>']
    if metrics is not None:
        parts.append(metrics_table(metrics))
    else:
        parts.append('<p class="note">no clean target for this page, so no metrics (use --pairs DIR with degraded/ and clean/)</p>')
    parts.append(_comparison(f"{index}", layers, "whole page", quality))
    if scale < 1:
        box = panels.detail_box(clean if clean is not None else degraded, *DETAIL_SIZE)
        left, top, right, bottom = box
        crops = {role: Image.fromarray(panels.crop(page, box)) for role, page in pages.items()}
        parts.append(_comparison(f"{index}-detail", crops, f"detail at native resolution: x {left}–{right}, y {top}–{bottom}", quality))
    parts.append("</section>")
    return PageEntry(name, "\n".join(parts), metrics)


def mean_metrics(entries: list[PageEntry]) -> dict | None:
    rows = [entry.metrics for entry in entries if entry.metrics is not None]
    if not rows:
        return None
    return {group: {key: float(np.mean([row[group][key] for row in rows])) for key in ("psnr", "ssim", "mse")}
            for group in ("identity", "restored", "gain")}


def render_report(entries: list[PageEntry], options: ReportOptions, failures: list[str] = ()) -> str:
    mean = mean_metrics(entries)
    measured = sum(entry.metrics is not None for entry in entries)
    summary = ""
    if mean is not None and measured > 1:
        summary = metrics_table(mean, f"mean over the {measured} page(s) with a clean target")
    index = "".join(
        f'<li><a href="#page-{number}">{html.escape(entry.name)}</a>'
        + (f' <span class="{_gain_class(entry.metrics["gain"]["psnr"])}">{entry.metrics["gain"]["psnr"]:+.2f} dB</span>' if entry.metrics else "")
        + "</li>"
        for number, entry in enumerate(entries, start=1)
    )
    failed = ""
    if failures:
        failed = '<div class="failures"><b>not included:</b><ul>' + "".join(f"<li>{html.escape(f)}</li>" for f in failures) + "</ul></div>"
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in options.notes)
    model = f" · model {html.escape(options.model)}" if options.model else ""
    return report_asset("report.html").format(
        title=html.escape(options.title),
        style=report_asset("report.css"),
        script=report_asset("report.js"),
        count=len(entries),
        model=model,
        max_side=options.max_side,
        quality=options.quality,
        notes=notes,
        summary=summary,
        index=f"<ol>{index}</ol>" if len(entries) > 1 else "",
        failures=failed,
        pages="\n".join(entry.html for entry in entries),
    )


def write_report(path: Path, text: str, *, overwrite: bool = False, protected: Collection[str | PathLike] = ()) -> Path:
    """Write the HTML in one step by the rules every output follows: never over one of the
    command's inputs (`protected`), even with `overwrite`; over an existing file only with it,
    also when another process wrote one meanwhile (a one-line OutputError)."""
    return write_text(path, text, overwrite=overwrite, protected=protected)
