"""Make the pictures in docs/synth.md: `python docs/make_synth_pictures.py` from the repository root.

Writes docs/images/synth-palm-leaf.png, synth-paper.png and synth-detail.png: two whole
pages, downscaled, and one crop at full resolution; and synth-materials.png: one page of
each leaf and paper material, the first seed that gives it. Deterministic: the same code
gives the same pictures. Each stays under 150 KB (fewer colours if needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from manurestore.data.synth import generate_page, render_page  # noqa: E402
from manurestore.data.synth.materials import LEAF_MATERIALS, PAPER_MATERIALS  # noqa: E402

OUT = ROOT / "docs" / "images"
LIMIT = 150 * 1024

# (file, seed, kind, downscaled width or None, crop box (left, top, right, bottom) or None)
PICTURES = [
    ("synth-palm-leaf.png", 11, "palm-leaf", 900, None),
    ("synth-paper.png", 1, "paper", 720, None),
    ("synth-detail.png", 1, "paper", None, (90, 170, 690, 370)),
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


def _first_of_each(kind: str, materials: list[str]) -> list[tuple[str, Image.Image]]:
    """(material, page) for the first seed that gives each material, at the kind's default size."""
    found: dict[str, Image.Image] = {}
    seed = 0
    while len(found) < len(materials):
        page, info = render_page(seed, kind)
        found.setdefault(info["material"], Image.fromarray(page))
        seed += 1
    return [(name, found[name]) for name in materials]


def _width(image: Image.Image, width: int) -> Image.Image:
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)


def _materials_sheet(width: int = 900) -> Image.Image:
    """Leaves two to a row, then the papers in one row, each labelled with its material."""
    gap, label = 6, 14
    leaves = _first_of_each("palm-leaf", [m.name for m in LEAF_MATERIALS])
    papers = _first_of_each("paper", [m.name for m in PAPER_MATERIALS])
    leaf_w = (width - gap) // 2
    paper_w = (width - gap * (len(papers) - 1)) // len(papers)
    tiles = [(name, _width(page, leaf_w)) for name, page in leaves]
    cards = [(name, _width(page, paper_w)) for name, page in papers]
    leaf_h = max(t.height for _, t in tiles) + label
    paper_h = max(c.height for _, c in cards) + label
    rows = (len(tiles) + 1) // 2
    sheet = Image.new("RGB", (width, rows * (leaf_h + gap) + paper_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (name, tile) in enumerate(tiles):
        x, y = (k % 2) * (leaf_w + gap), (k // 2) * (leaf_h + gap)
        draw.text((x + 2, y), name, fill=(40, 40, 40))
        sheet.paste(tile, (x, y + label))
    for k, (name, card) in enumerate(cards):
        x, y = k * (paper_w + gap), rows * (leaf_h + gap)
        draw.text((x + 2, y), name, fill=(40, 40, 40))
        sheet.paste(card, (x, y + label))
    return sheet


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pictures = []
    for name, seed, kind, width, box in PICTURES:
        image = Image.fromarray(generate_page(seed, kind))
        if box is not None:
            image = image.crop(box)
        if width is not None and image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        pictures.append((name, image))
    pictures.append(("synth-materials.png", _materials_sheet()))
    for name, image in pictures:
        size = _save_small(image, OUT / name)
        print(f"{OUT / name}: {image.width}x{image.height}, {size // 1024} KB")


if __name__ == "__main__":
    main()
