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
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

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
    return _TEMPLATE.format(
        title=html.escape(options.title),
        style=_STYLE,
        script=_SCRIPT,
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


def write_report(path: Path, text: str) -> None:
    """Write the HTML in one step (temp file, then rename), readable like any file the user makes."""
    from manurestore.atomic import atomic_write_text

    atomic_write_text(path, text)


_STYLE = """
:root { color-scheme: light; --accent: #0a66c2; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; margin: 0; background: #eeede9; color: #1d1d1d; }
header, section.page { max-width: 1400px; margin: 0 auto 14px; padding: 10px 18px; }
header h1 { font-size: 20px; margin: 2px 0 4px; }
header h1 small, h2 small { color: #666; font-weight: normal; font-size: 13px; }
.note { color: #555; font-size: 13px; margin: 2px 0; }
header ol { margin: 4px 0; padding-left: 22px; font-size: 13px; columns: 3 260px; }
section.page { background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.1); }
h2 { font-size: 17px; margin: 2px 0 6px; overflow-wrap: anywhere; }
table.metrics { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; font-variant-numeric: tabular-nums; }
table.metrics caption { text-align: left; font-size: 13px; color: #555; }
table.metrics th, table.metrics td { padding: 2px 12px; text-align: right; border-bottom: 1px solid #e2e2e2; }
table.metrics th:first-child, table.metrics td:first-child { text-align: left; }
.gain-pos { color: #1a7f37; } .gain-neg { color: #c62828; }
.failures { color: #c62828; font-size: 13px; }
.compare { margin: 8px 0 14px; }
.toolbar { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; font-size: 13px; margin: 0 0 4px; }
.toolbar .what { font-weight: 600; }
.toolbar button { font: inherit; padding: 1px 9px; margin-left: 3px; border: 1px solid #b8b8b8; background: #f6f6f6; border-radius: 4px; cursor: pointer; }
.toolbar button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: #fff; }
.viewport { background: #2b2b2b; border-radius: 4px; overflow: hidden; }
.compare.zoomed .viewport { overflow: auto; max-height: 80vh; }
.stage { position: relative; margin: 0 auto; aspect-ratio: var(--ar); width: min(100%, calc(78vh * (var(--ar)))); cursor: ew-resize; touch-action: pan-y; user-select: none; -webkit-user-select: none; }
.compare.zoomed .stage { width: var(--zw); max-width: none; margin: 0; touch-action: none; }
.stage img { position: absolute; top: 0; left: 0; width: 100%; height: 100%; display: block; pointer-events: none; -webkit-user-drag: none; }
.stage img[hidden] { display: none; }
.compare.zoomed .stage img, .compare.enlarged .stage img { image-rendering: pixelated; }
.stage img.before { clip-path: inset(0 50% 0 0); -webkit-clip-path: inset(0 50% 0 0); }
.divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; margin-left: -1px; background: #fff; box-shadow: 0 0 0 1px rgba(0,0,0,.45); pointer-events: none; }
.divider::after { content: "\\2194"; position: absolute; top: 50%; left: 50%; transform: translate(-50%, -50%); width: 28px; height: 28px; line-height: 28px; border-radius: 50%; text-align: center; background: #fff; color: #111; font-size: 16px; box-shadow: 0 1px 4px rgba(0,0,0,.45); }
.tag { position: absolute; top: 8px; padding: 1px 8px; font-size: 12px; background: rgba(0,0,0,.62); color: #fff; border-radius: 3px; pointer-events: none; white-space: nowrap; }
.tag.left { left: 8px; } .tag.right { right: 8px; }
input.slider { width: 100%; margin: 6px 0 0; accent-color: var(--accent); }
"""

_SCRIPT = """
(function () {
  "use strict";
  function param(name) {
    var pattern = new RegExp("(?:^|[#?&])" + name + "=([^&#]*)");
    var match = pattern.exec(location.hash) || pattern.exec(location.search);
    return match ? decodeURIComponent(match[1]) : null;
  }
  function fromUrl() {
    var value = parseFloat(param("slider"));
    return isNaN(value) ? 50 : Math.min(100, Math.max(0, value));
  }
  function zoomFromUrl() {
    var value = param("zoom");
    return value === "1" || value === "2" || value === "4" ? value : "fit";
  }
  function setup(cmp) {
    var stage = cmp.querySelector(".stage"), viewport = cmp.querySelector(".viewport");
    var range = cmp.querySelector("input.slider"), divider = cmp.querySelector(".divider");
    var after = cmp.querySelector("img.after"), befores = cmp.querySelectorAll("img.before");
    var leftTag = cmp.querySelector(".tag.left"), buttons = cmp.querySelectorAll("button[data-zoom]");
    function set(pos) {
      pos = Math.min(100, Math.max(0, pos));
      var clip = "inset(0 " + (100 - pos) + "% 0 0)";
      for (var i = 0; i < befores.length; i++) { befores[i].style.clipPath = clip; befores[i].style.webkitClipPath = clip; }
      divider.style.left = pos + "%";
      range.value = pos;
      cmp.dataset.pos = pos;
    }
    cmp.setSlider = set;
    range.addEventListener("input", function () { set(parseFloat(range.value)); });
    var dragging = false;
    function follow(event) {
      var box = stage.getBoundingClientRect();
      set((event.clientX - box.left) / box.width * 100);
    }
    stage.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      dragging = true;
      stage.setPointerCapture(event.pointerId);
      follow(event);
      event.preventDefault();
    });
    stage.addEventListener("pointermove", function (event) { if (dragging) follow(event); });
    stage.addEventListener("pointerup", function () { dragging = false; });
    stage.addEventListener("pointercancel", function () { dragging = false; });
    function enlarged() {  // fit mode showing the page at 2× or more: show its pixels, not a blur
      var natural = after.naturalWidth || parseInt(cmp.dataset.w, 10);
      cmp.classList.toggle("enlarged", stage.clientWidth * (window.devicePixelRatio || 1) >= 2 * natural);
    }
    cmp.enlarged = enlarged;
    function zoom(level) {
      for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("aria-pressed", String(buttons[i].dataset.zoom === level));
      if (level === "fit") { cmp.classList.remove("zoomed"); return; }
      var natural = after.naturalWidth || parseInt(cmp.dataset.w, 10);
      stage.style.setProperty("--zw", (natural * parseFloat(level) / (window.devicePixelRatio || 1)) + "px");
      cmp.classList.add("zoomed");
      viewport.scrollLeft = parseFloat(cmp.dataset.pos) / 100 * stage.offsetWidth - viewport.clientWidth / 2;
      viewport.scrollTop = (stage.offsetHeight - viewport.clientHeight) / 2;
    }
    for (var b = 0; b < buttons.length; b++) {
      buttons[b].addEventListener("click", function () { zoom(this.dataset.zoom); });
    }
    var radios = cmp.querySelectorAll("input[type=radio]");
    for (var r = 0; r < radios.length; r++) {
      radios[r].addEventListener("change", function () { left(this.value); });
    }
    cmp.zoom = zoom;
    function left(role) {  // which picture is left of the line: the input, or the clean target
      var radio = cmp.querySelector("input[type=radio][value=" + role + "]");
      if (!radio) return;
      radio.checked = true;
      for (var i = 0; i < befores.length; i++) befores[i].hidden = befores[i].dataset.role !== role;
      leftTag.textContent = radio.dataset.label;
    }
    cmp.left = left;
    set(fromUrl());
    left(param("left") === "clean" ? "clean" : "degraded");
    if (after.complete) enlarged(); else after.addEventListener("load", enlarged);
    var initialZoom = zoomFromUrl();
    if (initialZoom !== "fit") {
      if (after.complete) zoom(initialZoom); else after.addEventListener("load", function () { zoom(initialZoom); });
    }
  }
  var all = document.querySelectorAll(".compare");
  for (var i = 0; i < all.length; i++) setup(all[i]);
  window.addEventListener("hashchange", function () {
    var pos = fromUrl(), level = zoomFromUrl();
    var role = param("left") === "clean" ? "clean" : "degraded";
    for (var i = 0; i < all.length; i++) { all[i].setSlider(pos); all[i].zoom(level); all[i].left(role); }
  });
  window.addEventListener("resize", function () {
    for (var i = 0; i < all.length; i++) all[i].enlarged();
  });
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title} <small>{count} page(s){model}</small></h1>
<p class="note">Drag across a picture, or move the slider under it: left of the line is the degraded input, right of it the restored output. The zoom buttons show the embedded pixels 1:1 (or 2×, 4×), pixelated, with scroll bars. Links can set the view: #slider=0 (restored only), #slider=100 (input only), &amp;zoom=2, &amp;left=clean.</p>
<p class="note">To keep this file small, every picture is embedded at most {max_side} px on its long side as JPEG quality {quality}; pages that were larger also get a detail at native resolution. Metrics are computed on the full-resolution pages.</p>
{notes}{summary}{failures}
{index}
</header>
{pages}
<script>{script}</script>
</body>
</html>
"""
