"""Make the pictures in docs/model-card.md from held-out synthetic pages.

    manurestore synth heldout --pages 16 --seed 777 --val-fraction 0.99
    python docs/make_model_card_pictures.py heldout/val/page-0002.png            # a paper folio
    python docs/make_model_card_pictures.py heldout/val/page-0014.png leaf       # an ochre palm leaf

It runs `manurestore visualize flow` with the bundled model (preset aged, seed 0) and keeps two
pictures, named model-card-NAME.png and model-card-NAME-detail.png (NAME: `page` unless given): the
whole page (degraded above, restored below, shown at half size) and a detail at native resolution
(degraded left, restored right), quantised to keep them small.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

IMAGES = Path(__file__).resolve().parent / "images"


def small_png(image: Image.Image, path: Path) -> None:
    image.convert("RGB").quantize(192, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)


def main(page: str, name: str = "page") -> None:
    with tempfile.TemporaryDirectory() as temp:
        subprocess.run([sys.executable, "-m", "manurestore", "visualize", "flow", page, "-o", temp,
                        "--preset", "aged", "--seed", "0"], check=True)
        degraded = Image.open(Path(temp) / "2_degraded_input.jpg")
        restored = Image.open(Path(temp) / "3_restored_output.jpg")
        width = degraded.width // 2
        height = round(degraded.height * width / degraded.width)
        whole = Image.new("RGB", (width, 2 * height + 6), "white")
        whole.paste(degraded.resize((width, height), Image.LANCZOS), (0, 0))
        whole.paste(restored.resize((width, height), Image.LANCZOS), (0, height + 6))
        small_png(whole, IMAGES / f"model-card-{name}.png")
        box = (60, 0, 500, 230)
        left, right = degraded.crop(box), restored.crop(box)
        detail = Image.new("RGB", (left.width * 2 + 6, left.height), "white")
        detail.paste(left, (0, 0))
        detail.paste(right, (left.width + 6, 0))
        small_png(detail, IMAGES / f"model-card-{name}-detail.png")


if __name__ == "__main__":
    main(*sys.argv[1:3])
