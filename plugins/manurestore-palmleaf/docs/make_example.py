"""Draw docs/example.png: a synthetic palm leaf, clean, under each op, and under presets/palm-leaf.toml.

    python docs/make_example.py                 # writes docs/example.png beside this script
    python docs/make_example.py --panels DIR    # also each panel at full size, for a closer look

Needs pillow, and the Noto Sans Devanagari font package for the script (a fallback of drawn
strokes is used without it): `pip install "manurestore-palmleaf[example]"`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from manurestore.batches import to_batch, to_images
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.plugins import register_plugin, registry
from manurestore_palmleaf import Cracks, EdgeFading, Holes, TideLines, plugin

PRESET = Path(__file__).resolve().parents[1] / "presets" / "palm-leaf.toml"

LEAF_SIZE = (1200, 220)  # width, height: a palm leaf is long and narrow
LEAF_COLOUR = (214, 184, 128)
INK = (38, 30, 24)
TEXT = [
    "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः । मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥",
    "दृष्ट्वा तु पाण्डवानीकं व्यूढं दुर्योधनस्तदा । आचार्यमुपसङ्गम्य राजा वचनमब्रवीत् ॥",
    "पश्यैतां पाण्डुपुत्राणामाचार्य महतीं चमूम् । व्यूढां द्रुपदपुत्रेण तव शिष्येण धीमता ॥",
    "अत्र शूरा महेष्वासा भीमार्जुनसमा युधि । युयुधानो विराटश्च द्रुपदश्च महारथः ॥",
]
EXAMPLES = [
    ("holes", Holes(count=(5, 5), chips=(2, 2)), 11),
    ("cracks", Cracks(count=(3, 3), split=(0.3, 0.4)), 4),
    ("tide_lines", TideLines(count=(2, 2), intensity=(0.65, 0.7)), 12),
    ("edge_fading", EdgeFading(width=(0.5, 0.5), strength=(0.85, 0.85)), 3),
]
PRESET_SEED = 5


def _font(size: int):
    try:
        import fontpkg

        return ImageFont.truetype(str(fontpkg.path("Noto Sans Devanagari")), size)
    except Exception:  # no font package: strokes instead of letters
        return None


def palm_leaf(seed: int = 0) -> Image.Image:
    """A clean synthetic leaf: fibre streaks along its length, four lines of incised text."""
    rng = np.random.default_rng(seed)
    width, height = LEAF_SIZE
    # Fibres: noise stretched along the leaf, a few percent of brightness.
    fibres = rng.normal(0.0, 1.0, (height // 2, width // 24 + 2))
    fibres = np.array(Image.fromarray(fibres.astype(np.float32)).resize((width, height), Image.BICUBIC))
    base = np.array(LEAF_COLOUR, dtype=np.float32) * (1.0 + 0.03 * fibres[..., None])
    leaf = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(leaf)
    font = _font(30)
    for row, line in enumerate(TEXT):
        y = 18 + row * 48
        if font is not None:
            draw.text((34, y), line, font=font, fill=INK)
        else:
            for x in range(34, width - 40, 22):
                draw.line([(x, y + 12), (x + 20, y + 12)], fill=INK, width=3)
                draw.line([(x + 8, y + 12), (x + 8 + rng.integers(-4, 4), y + 34)], fill=INK, width=3)
    # The string hole every palm-leaf manuscript is bound through.
    draw.ellipse([width // 3 - 9, height // 2 - 9, width // 3 + 9, height // 2 + 9], fill=(30, 24, 20))
    return leaf.filter(ImageFilter.GaussianBlur(0.6))


def to_tensor(image: Image.Image) -> torch.Tensor:
    return to_batch([np.asarray(image)], torch.device("cpu"))


def to_image(tensor: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_images(tensor)[0])


def render(panels: Path | None = None) -> Image.Image:
    clean = palm_leaf()
    x = to_tensor(clean)
    rows = [("clean", clean)]
    for label, op, seed in EXAMPLES:
        rows.append((label, to_image(Pipeline([Step(op)])(x, [seed]))))
    if "holes" not in registry():  # run from a checkout, not installed: register by hand
        register_plugin(plugin, name="manurestore-palmleaf")
    rows.append(("palm-leaf.toml", to_image(Pipeline.from_preset(PRESET)(x, [PRESET_SEED]))))
    if panels is not None:
        panels.mkdir(parents=True, exist_ok=True)
        for label, image in rows:
            image.save(panels / f"{label}.png")
    scale = 0.45
    tile_w, tile_h = int(LEAF_SIZE[0] * scale), int(LEAF_SIZE[1] * scale)
    label_w, gap = 110, 6
    sheet = Image.new("RGB", (label_w + tile_w + gap, len(rows) * (tile_h + gap) + gap), (250, 250, 247))
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(rows):
        top = gap + index * (tile_h + gap)
        sheet.paste(image.resize((tile_w, tile_h), Image.LANCZOS), (label_w, top))
        draw.text((8, top + tile_h // 2 - 6), label, fill=(20, 20, 20))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("example.png"))
    parser.add_argument("--panels", type=Path, help="also save each panel at full size here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sheet = render(args.panels)
    sheet.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
