"""The degradation gallery: one page under every op alone and under every preset, side by side.

Each op (built-in or plugin) is applied alone, always firing, at its default range; each shipped
preset is applied as training applies it (each step with its probability). Every tile uses the
same per-image seed as `degrade` would for this file, and says what fired with which values.
Large pages are shown downscaled with a 1:1 crop of their busiest region under them, because
noise and specks vanish when a page is shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from manurestore.degradations.files import degrade_page
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.viz import panels
from manurestore.viz.flow import describe_fired, describe_op
from manurestore.viz.panels import Text

TILE_WIDTH = 480
TILE_HEIGHT = 360
MAX_FIGURE_WIDTH = 2500
DETAIL_BELOW_SCALE = 0.75
SEVERITY = ("light", "aged", "heavy")  # shipped presets, mildest first


@dataclass
class Entry:
    title: str
    note: str
    pipeline: Pipeline | None  # None: the clean page itself
    problem: str | None = None  # why this entry could not be built
    is_preset: bool = False


def preset_entries() -> list[Entry]:
    """Every shipped preset, mildest first."""
    from manurestore.degradations.presets import list_presets
    from manurestore.errors import ManurestoreError

    names = sorted(list_presets(), key=lambda name: (SEVERITY.index(name) if name in SEVERITY else len(SEVERITY), name))
    entries = []
    for name in names:
        try:
            pipeline = Pipeline.from_preset(name)
            entries.append(Entry(f"preset {name}", pipeline.description or "each step fires with its own probability",
                                 pipeline, is_preset=True))
        except ManurestoreError as error:
            entries.append(Entry(f"preset {name}", "", None, str(error), is_preset=True))
    return entries


def op_entries() -> list[Entry]:
    """Every installed op (built-in or plugin) alone, always firing, at its default range."""
    from manurestore.plugins import registry

    entries = []
    for name, info in sorted(registry().items()):
        source = "built-in op" if info.source == "built-in" else f"plugin op ({info.label})"
        try:
            entries.append(Entry(name, source, Pipeline([Step(info.cls(), 1.0)], name=name)))
        except Exception as error:  # a plugin whose defaults do not validate must not hide the rest
            entries.append(Entry(name, source, None, f"cannot build: {type(error).__name__}: {error}"))
    return entries


def _render(entry: Entry | None, clean: np.ndarray, identity: str, seed: int, device: torch.device,
            size: tuple[int, int], detail: panels.Box | None, pixelated: bool = False) -> tuple[Image.Image, list[Text], Image.Image | None]:
    """(display image, caption lines, 1:1 crop or None) of one tile; None is the clean page."""
    height, width = clean.shape[:2]
    if entry is None:
        lines = [Text("clean original", 22, True), Text(f"the page as given, {width}×{height} px", 16, muted=True)]
        page = clean
    else:
        lines = [Text(entry.title, 22, True), Text(entry.note, 16, muted=True)]
        page = clean
        if entry.problem is not None:
            lines.append(Text(entry.problem, 16))
            page = np.full_like(clean, 235)
        else:
            try:
                page, fired = degrade_page(clean, entry.pipeline, seed, identity, device)
                if entry.is_preset:
                    lines.append(Text(f"fired here: {describe_fired(fired)}", 16))
                else:
                    lines.append(Text(describe_op(fired[0]) if fired else "did not fire", 16))
            except Exception as error:  # a broken plugin op: show why, keep the rest of the gallery
                lines.append(Text(f"failed: {type(error).__name__}: {error}", 16))
                page = np.full_like(clean, 235)
    shown = panels.resize(page, size, pixelated=pixelated)
    footer = None
    if detail is not None:
        scale = size[0] / width
        panels.outline(shown, detail, scale)
        strip = Image.fromarray(panels.crop(page, detail))
        footer = Image.new("RGB", (strip.width, strip.height + 6), panels.BACKGROUND)
        footer.paste(strip, (0, 6))
    return shown, lines, footer


def presets_gallery(clean: np.ndarray, identity: str, seed: int, device: torch.device) -> Image.Image:
    """Clean page and every preset in the first rows, every op alone below, all labelled."""
    clean = panels.as_rgb(clean)
    height, width = clean.shape[:2]
    presets, ops = preset_entries(), op_entries()
    # Wide leaves get wider tiles (up to 800 px), so a palm leaf is not a thin sliver.
    box_w = int(min(800, max(TILE_WIDTH, TILE_HEIGHT * width / height * 0.45)))
    enlarge = max(1, min(4, box_w // width, TILE_HEIGHT // height))  # small pages: whole-pixel zoom
    size = (width * enlarge, height * enlarge) if enlarge > 1 else panels.fit_size(width, height, box_w, TILE_HEIGHT)
    scale = size[0] / width
    tile_w = max(size[0], 300)
    detail = None
    if scale < DETAIL_BELOW_SCALE:
        detail = panels.detail_box(clean, tile_w, max(48, min(tile_w * 3 // 10, 160)))
    cell_h = size[1] + 110 + (detail[3] - detail[1] if detail else 0)
    allowed = [c for c in range(1, 9) if c * (tile_w + 14) <= MAX_FIGURE_WIDTH] or [1]
    # Columns that fill the preset rows exactly, if any count above one does; else any that fit
    # (a single column would make a very tall figure).
    filling = [c for c in allowed if c > 1 and (1 + len(presets)) % c == 0]
    columns = panels.best_columns(1 + len(presets) + len(ops), tile_w, cell_h, target_aspect=1.3,
                                  choices=filling or allowed)

    def section(entries: list[Entry | None]) -> Image.Image:
        rendered = [_render(entry, clean, identity, seed, device, size, detail, enlarge > 1) for entry in entries]
        tiles = panels.labelled_tiles([r[0] for r in rendered], [r[1] for r in rendered],
                                      footers=[r[2] for r in rendered], min_width=300, row_size=columns)
        return panels.grid(tiles, columns, gap=14)

    first = section([None, *presets])
    second = section(ops) if ops else None
    notes = [
        Text(f"degradation gallery: {identity}", 26, True),
        Text(f"Top: the clean page and each shipped preset as training applies it (each step fires with its own "
             f"probability, so some may not fire on this page). Below: each op alone, always firing, at its "
             f"default range. Seed {seed}: `manurestore degrade --seed {seed}` gives this file the same damage.", 16),
    ]
    if enlarge > 1:
        notes.append(Text(f"Pages are shown at {enlarge}× (each pixel enlarged to {enlarge}×{enlarge}).", 16, muted=True))
    if detail is not None:
        left, top, right, bottom = detail
        notes.append(Text(f"Pages are shown at {scale:.0%}; the strip under each is the blue box at native "
                          f"resolution (1:1 pixels, x {left}–{right}, y {top}–{bottom}), where noise and specks show.",
                          16, muted=True))
    full_width = max(first.width, second.width if second else 0)
    parts = [panels.caption(notes, full_width, padding=14), first]
    if second is not None:
        parts += [panels.caption([Text("each op alone: built-in and installed plugin ops", 22, True)], full_width, padding=14), second]
    return panels.stack(parts)
