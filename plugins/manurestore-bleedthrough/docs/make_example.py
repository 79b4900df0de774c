"""Draw docs/example.png: a synthetic paper page, clean and under each of this plugin's ops.

    python docs/make_example.py                 # writes docs/example.png beside this script
    python docs/make_example.py --panels DIR    # also each panel at full size, for a closer look

Needs pillow, and the Noto Sans Devanagari font package for the script (a fallback of drawn
strokes is used without it): `pip install "manurestore-bleedthrough[example]"`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from manurestore.batches import to_batch, to_images
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore_bleedthrough import BleedThrough, InkBleed

PAGE_SIZE = (520, 240)  # width, height
PAPER = (236, 224, 196)
INK = (30, 26, 24)
TEXT = [
    "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।",
    "मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥",
    "दृष्ट्वा तु पाण्डवानीकं व्यूढं दुर्योधनस्तदा ।",
    "आचार्यमुपसङ्गम्य राजा वचनमब्रवीत् ॥",
    "पश्यैतां पाण्डुपुत्राणामाचार्य महतीं चमूम् ।",
]
EXAMPLES = [
    ("bleed_through", [BleedThrough(strength=(0.45, 0.45))], 5),
    ("ink_bleed", [InkBleed(spread=(2, 2), strength=(0.7, 0.7))], 2),
    ("both", [InkBleed(), BleedThrough()], 9),
]


def _font(size: int):
    try:
        import fontpkg

        return ImageFont.truetype(str(fontpkg.path("Noto Sans Devanagari")), size)
    except Exception:  # no font package: strokes instead of letters
        return None


def paper_page(seed: int = 0) -> Image.Image:
    """A clean synthetic page: mottled paper, five lines of text."""
    rng = np.random.default_rng(seed)
    width, height = PAGE_SIZE
    mottle = rng.normal(0.0, 1.0, (height // 16 + 2, width // 16 + 2)).astype(np.float32)
    mottle = np.array(Image.fromarray(mottle).resize((width, height), Image.BICUBIC))
    base = np.array(PAPER, dtype=np.float32) * (1.0 + 0.025 * mottle[..., None])
    page = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(page)
    font = _font(26)
    for row, line in enumerate(TEXT):
        y = 12 + row * 44
        if font is not None:
            draw.text((24, y), line, font=font, fill=INK)
        else:
            for x in range(30, width - 40, 24):
                draw.line([(x, y + 12), (x + 22, y + 12)], fill=INK, width=3)
                draw.line([(x + 9, y + 12), (x + 9 + rng.integers(-4, 4), y + 36)], fill=INK, width=3)
    return page.filter(ImageFilter.GaussianBlur(0.5))


def to_tensor(image: Image.Image) -> torch.Tensor:
    return to_batch([np.asarray(image)], torch.device("cpu"))


def to_image(tensor: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_images(tensor)[0])


def render(panels: Path | None = None) -> Image.Image:
    clean = paper_page()
    x = to_tensor(clean)
    tiles = [("clean", clean)]
    for label, ops, seed in EXAMPLES:
        tiles.append((label, to_image(Pipeline([Step(op) for op in ops])(x, [seed]))))
    if panels is not None:
        panels.mkdir(parents=True, exist_ok=True)
        for label, image in tiles:
            image.save(panels / f"{label}.png")
    width, height = PAGE_SIZE
    gap, caption = 8, 18
    sheet = Image.new("RGB", (2 * width + 3 * gap, 2 * (height + caption) + 3 * gap), (250, 250, 247))
    draw = ImageDraw.Draw(sheet)
    for index, (label, image) in enumerate(tiles):
        left = gap + (index % 2) * (width + gap)
        top = gap + (index // 2) * (height + caption + gap)
        draw.text((left, top + 2), label, fill=(20, 20, 20))
        sheet.paste(image, (left, top + caption))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("example.png"))
    parser.add_argument("--panels", type=Path, help="also save each panel at full size here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sheet = render(args.panels)
    sheet.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
