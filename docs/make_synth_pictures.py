"""Make the pictures in docs/synth.md: `python docs/make_synth_pictures.py` from the repository root.

Writes docs/images/synth-palm-leaf.png, synth-paper.png and synth-detail.png: two whole
pages, downscaled, and one crop at full resolution. Deterministic: the same code gives
the same pictures. Each stays under 150 KB (fewer colours if needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from manurestore.data.synth import generate_page  # noqa: E402

OUT = ROOT / "docs" / "images"
LIMIT = 150 * 1024

# (file, seed, kind, downscaled width or None, crop box (left, top, right, bottom) or None)
PICTURES = [
    ("synth-palm-leaf.png", 11, "palm-leaf", 900, None),
    ("synth-paper.png", 1, "paper", 720, None),
    ("synth-detail.png", 1, "paper", None, (90, 190, 690, 390)),
]


def _save_small(image: Image.Image, path: Path) -> int:
    """Save as PNG; if over the limit, as a 256-colour (then fewer) octree palette until it fits.

    Octree keeps the small red areas (rubrics, margin lines) red; median cut turns them brown.
    """
    image.save(path, optimize=True)
    colours = 256
    while path.stat().st_size > LIMIT and colours >= 16:
        image.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
        colours //= 2
    return path.stat().st_size


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, seed, kind, width, box in PICTURES:
        image = Image.fromarray(generate_page(seed, kind))
        if box is not None:
            image = image.crop(box)
        if width is not None and image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        size = _save_small(image, OUT / name)
        print(f"{OUT / name}: {image.width}x{image.height}, {size // 1024} KB")


if __name__ == "__main__":
    main()
