"""Fonts for synthetic pages: found through their installed packages, shaped with raqm, measured once.

Two families: Kalam (looks handwritten) and Noto Sans Devanagari (a clean book hand, variable).
Measuring shaped Devanagari is the slow part of drawing a page, so faces, instances and text
widths are cached and shared between pages.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageFont, features

from manurestore.errors import ManurestoreError

_FONT_PACKAGES = (
    ("Kalam", "fontpkg_kalam", "fontpkg-kalam"),
    ("Noto Sans Devanagari", "fontpkg_noto_sans_devanagari", "fontpkg-noto-sans-devanagari"),
)


@dataclass(frozen=True)
class FontFace:
    family: str
    file: str  # file name inside the package, e.g. "Kalam-Regular.ttf"
    source: str  # a path or "package:module/files/name" when not on disk
    weight: int | None
    variable: bool


def require_raqm() -> None:
    """Refuse to draw without raqm: Pillow's basic layout would break conjuncts, matras and reph."""
    if not features.check("raqm"):
        raise ManurestoreError(
            "Pillow has no raqm (complex text layout), so Devanagari cannot be shaped "
            "correctly; install the Pillow wheel from PyPI (it bundles raqm) or install "
            "libraqm and reinstall Pillow"
        )


@functools.lru_cache(maxsize=None)
def font_families() -> dict[str, dict]:
    """The two font families, found through their installed packages (never fixed paths).

    Returns {family: {"package", "package_version", "version", "license", "faces": [FontFace]}}.
    """
    families: dict[str, dict] = {}
    for family, module, dist in _FONT_PACKAGES:
        try:
            root = importlib.resources.files(module)
        except ModuleNotFoundError:
            raise ManurestoreError(
                f"font package {dist} is not installed; install it with `pip install {dist}`"
            ) from None
        try:
            meta = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        entries = meta.get("files") or [
            {"path": f"files/{item.name}", "weight": None, "variable": "[" in item.name}
            for item in (root / "files").iterdir()
            if item.name.lower().endswith((".ttf", ".otf"))
        ]
        faces = []
        for entry in sorted(entries, key=lambda e: e["path"]):
            resource = root.joinpath(*entry["path"].split("/"))
            source = str(resource) if isinstance(resource, Path) else f"package:{module}/{entry['path']}"
            faces.append(
                FontFace(family, entry["path"].rsplit("/", 1)[-1], source, entry.get("weight"), bool(entry.get("variable")))
            )
        if not faces:
            raise ManurestoreError(f"font package {dist} has no font files; reinstall it with `pip install --force-reinstall {dist}`")
        try:
            package_version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            package_version = None
        families[family] = {
            "package": dist,
            "package_version": package_version,
            "version": meta.get("version"),
            "license": meta.get("license"),
            "faces": faces,
        }
    return families


def fonts_for_manifest() -> list[dict]:
    """What a data set's manifest records of each family, so its pages can be made again."""
    return [
        {
            "family": family, "files": [f.file for f in meta["faces"]], "version": meta["version"],
            "package": meta["package"], "package_version": meta["package_version"], "license": meta["license"],
        }
        for family, meta in font_families().items()
    ]


@functools.lru_cache(maxsize=8)
def font_bytes(source: str) -> bytes:
    """A font file's bytes, from disk or from inside a zipped package (a FontFace's `source`)."""
    if source.startswith("package:"):
        module, _, rel = source[len("package:"):].partition("/")
        return importlib.resources.files(module).joinpath(*rel.split("/")).read_bytes()
    return Path(source).read_bytes()


@functools.lru_cache(maxsize=256)
def _font(face: FontFace, size: float, weight: float | None = None, width: float | None = None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(io.BytesIO(font_bytes(face.source)), size, layout_engine=ImageFont.Layout.RAQM)
    if face.variable and (weight is not None or width is not None):
        values = []
        for axis in font.get_variation_axes():
            name = axis["name"].decode("ascii", "replace") if isinstance(axis["name"], bytes) else str(axis["name"])
            name = name.strip().lower()
            if name in ("weight", "wght") and weight is not None:
                values.append(float(np.clip(weight, axis["minimum"], axis["maximum"])))
            elif name in ("width", "wdth") and width is not None:
                values.append(float(np.clip(width, axis["minimum"], axis["maximum"])))
            else:
                values.append(float(axis["default"]))
        font.set_variation_by_axes(values)
    return font


@dataclass(frozen=True)
class FontChoice:
    """A face and, for the variable font, the instance a page is written in (hashable: caches key on it)."""

    face: FontFace
    weight: float | None
    width: float | None

    def at(self, size: float) -> ImageFont.FreeTypeFont:
        return _font(self.face, round(float(size) * 4) / 4, self.weight, self.width)

    @property
    def label(self) -> str:
        name = self.face.file.rsplit(".", 1)[0]
        if self.face.variable:
            name += f" wght={self.weight:.0f} wdth={self.width:.0f}"
        return name


def choose_font(rng: np.random.Generator) -> FontChoice:
    """The hand a page is written in, drawn from `rng`."""
    fams = font_families()
    if rng.random() < 0.6:  # Kalam looks handwritten; Noto is the clean book hand
        faces = {f.weight: f for f in fams["Kalam"]["faces"]}
        weight = [300, 400, 400, 700][int(rng.integers(4))]
        face = faces.get(weight) or fams["Kalam"]["faces"][0]
        return FontChoice(face, None, None)
    face = fams["Noto Sans Devanagari"]["faces"][0]
    if face.variable:
        # a few fixed instances: measuring text with this variable font is slow (~1 ms a
        # call), so widths are cached per instance and shared between pages
        return FontChoice(face, float(rng.choice([380, 460, 540, 620])), float(rng.choice([88, 100])))
    return FontChoice(face, None, None)


@functools.lru_cache(maxsize=16)
def vertical_metrics(choice: FontChoice) -> tuple[float, float]:
    """(height above baseline incl. top matras, depth below baseline) per unit font size."""
    font = choice.at(100)
    above = -font.getbbox("र्कीं", anchor="ls")[1]
    below = font.getbbox("द्रुकृ", anchor="ls")[3]
    return above / 100, below / 100


@functools.lru_cache(maxsize=200_000)
def width_at_100(choice: FontChoice, text: str) -> float:
    """Advance width of `text` at size 100; shaped advances scale linearly with size."""
    return choice.at(100).getlength(text, language="sa")
