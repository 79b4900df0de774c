"""Synthetic CLEAN Sanskrit manuscript pages: palm-leaf leaves and paper (pothi) folios.

Everything here is deterministic: each page draws from its own ``numpy.random.Generator``
seeded from ``(seed, kind, width, height)``; no global random state is touched.
Text is Devanagari made only of valid orthographic syllables (aksharas) and is shaped
by Pillow's raqm layout (HarfBuzz), so conjuncts, reph and matras render correctly.

Public API (used by the CLI, training and tests):

* :func:`generate_page` -- one page as uint8 H×W×3.
* :func:`render_page` -- the same page plus a small dict describing it (fonts, text lines).
* :func:`make_syllables`, :func:`make_word`, :func:`make_verse` -- the text generator.
* :func:`is_valid_devanagari_syllable`, :func:`is_valid_devanagari_text` -- the grammar.
* :func:`synth_dataset` -- a train/val folder of pages plus ``manifest.json``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from manurestore import __version__
from manurestore.data.io import write_image
from manurestore.errors import ManurestoreError, UsageError

__all__ = [
    "DEFAULT_PAGES",
    "DEFAULT_VAL_FRACTION",
    "KINDS",
    "KIND_CHOICES",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "default_size",
    "font_families",
    "generate_page",
    "is_synth_output",
    "is_valid_devanagari_syllable",
    "is_valid_devanagari_text",
    "make_syllables",
    "make_verse",
    "make_word",
    "page_seed",
    "parse_size",
    "render_page",
    "resolve_kind",
    "synth_dataset",
    "to_devanagari_digits",
]

KINDS = ("palm-leaf", "paper")
KIND_CHOICES = KINDS + ("mixed",)
DEFAULT_PAGES = 48
DEFAULT_VAL_FRACTION = 0.15
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "manurestore-synth"
MANIFEST_VERSION = 1
MIN_SIDE, MAX_SIDE = 64, 8192

# ---------------------------------------------------------------------------------------------
# Devanagari text: an akshara (orthographic syllable) generator and the grammar that checks it.
# ---------------------------------------------------------------------------------------------

VIRAMA = "\u094d"  # ्
ANUSVARA = "\u0902"  # ं
VISARGA = "\u0903"  # ः
CHANDRABINDU = "\u0901"  # ँ
DANDA = "\u0964"  # ।
DOUBLE_DANDA = "\u0965"  # ॥
OM = "\u0950"  # ॐ
DIGITS = "०१२३४५६७८९"

# Sanskrit consonants with rough text frequencies (single consonant onsets).
_CONSONANT_WEIGHTS = {
    "क": 3.5, "ख": 0.4, "ग": 1.6, "घ": 0.3, "ङ": 0.05,
    "च": 2.2, "छ": 0.3, "ज": 1.4, "झ": 0.05, "ञ": 0.05,
    "ट": 0.5, "ठ": 0.2, "ड": 0.3, "ढ": 0.1, "ण": 1.0,
    "त": 6.5, "थ": 0.6, "द": 2.8, "ध": 1.6, "न": 5.5,
    "प": 3.0, "फ": 0.1, "ब": 0.7, "भ": 1.5, "म": 4.5,
    "य": 3.8, "र": 5.0, "ल": 1.3, "व": 4.5,
    "श": 1.6, "ष": 1.4, "स": 4.5, "ह": 1.8,
}
CONSONANTS = "".join(_CONSONANT_WEIGHTS)

# Conjuncts that occur in Sanskrit (C + ् + C, a few triples). Every one is a valid onset.
CONJUNCTS = tuple(
    "क्ष त्र ज्ञ श्र स्त द्ध द्व न्त न्द न्न स्व त्व प्र क्र ग्र ध्य र्म र्थ र्व र्ण च्च त्त ष्ट ष्ठ "
    "ष्ण म्ब म्भ ञ्च ञ्ज ङ्ग ङ्क स्म त्म न्य श्च ह्म ब्र द्य ण्ड ण्ट न्ध ल्प ल्ल प्त क्त स्थ द्र भ्य "
    "त्य क्य स्य स्त्र न्त्र त्र्य ष्ट्र र्त्य ज्ज द्भ ग्ध ब्ध स्क ह्न ह्य ह्व श्व क्व ज्य व्य श्य द्म "
    "न्म प्य म्य ग्न त्स र्ध्व श्न ष्प ष्क र्ग र्य र्त र्द र्ध र्श र्ष र्ह".split()
)
_RAKAR_BASES = "कगतदपबभमशसवधघ"  # C + ्र
_YAPHALA_BASES = "कतदनमसवशधभप"  # C + ्य

# Independent vowels (only at the start of a word) and dependent vowel signs (matras).
_VOWEL_WEIGHTS = {
    "अ": 0.30, "आ": 0.12, "इ": 0.12, "ई": 0.02, "उ": 0.12, "ऊ": 0.02,
    "ऋ": 0.03, "ए": 0.12, "ऐ": 0.03, "ओ": 0.06, "औ": 0.03,
}
INDEPENDENT_VOWELS = "".join(_VOWEL_WEIGHTS) + "ॠऌ"
_MATRA_WEIGHTS = {
    "": 0.42, "ा": 0.15, "ि": 0.10, "ी": 0.05, "ु": 0.08, "ू": 0.03,
    "ृ": 0.025, "े": 0.07, "ै": 0.02, "ो": 0.04, "ौ": 0.01,
}
MATRAS = "".join(m for m in _MATRA_WEIGHTS if m) + "ॄ"

_INVOCATIONS = (
    "॥ श्रीगणेशाय नमः ॥",
    "॥ श्री ॥",
    "ॐ नमः शिवाय ॥",
    "॥ श्रीसरस्वत्यै नमः ॥",
    "॥ श्रीगुरुभ्यो नमः ॥",
)


def _table(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    p = np.fromiter(weights.values(), dtype=np.float64)
    return list(weights), np.cumsum(p / p.sum())


_TABLES: dict[int, tuple[list[str], np.ndarray]] = {}


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    table = _TABLES.get(id(weights))
    if table is None:
        table = _TABLES[id(weights)] = _table(weights)
    keys, cdf = table
    return keys[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(keys) - 1)]


def _onset(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.15:
        return CONJUNCTS[int(rng.integers(len(CONJUNCTS)))]
    if r < 0.19:
        return _RAKAR_BASES[int(rng.integers(len(_RAKAR_BASES)))] + VIRAMA + "र"
    if r < 0.22:
        return _YAPHALA_BASES[int(rng.integers(len(_YAPHALA_BASES)))] + VIRAMA + "य"
    return _weighted(rng, _CONSONANT_WEIGHTS)


def _consonant_syllable(rng: np.random.Generator) -> str:
    onset = _onset(rng)
    matra = _weighted(rng, _MATRA_WEIGHTS)
    if matra == "ृ" and onset.endswith("र"):
        matra = "ु"  # रृ / ्रृ do not occur in Sanskrit
    mod = ANUSVARA if rng.random() < 0.06 else ""
    return onset + matra + mod


def make_syllables(rng: np.random.Generator, n: int) -> list[str]:
    """`n` aksharas that together form one Sanskrit-looking word.

    The first may be an independent vowel (अ, इ, ए ...), the others start with a consonant
    or conjunct and may carry a matra and anusvara; the last may carry a visarga, and a
    word-final halanta consonant (म्, त्, न्, क्) may follow as one extra akshara.
    Every element passes :func:`is_valid_devanagari_syllable`.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    out: list[str] = []
    for i in range(n):
        if i == 0 and rng.random() < 0.14:
            vowel = _weighted(rng, _VOWEL_WEIGHTS)
            out.append(vowel + (ANUSVARA if rng.random() < 0.05 else ""))
        else:
            out.append(_consonant_syllable(rng))
    ending = rng.random()
    last = out[-1]
    if ending < 0.22 and not last.endswith(ANUSVARA):
        out[-1] = last + VISARGA
    elif ending < 0.40 and not last.endswith(ANUSVARA):
        out.append(str(rng.choice(["म्", "म्", "म्", "म्", "त्", "न्", "क्"])))
    return out


def make_word(rng: np.random.Generator, syllables: int | None = None) -> str:
    """One word of `syllables` aksharas (2 to 5 when None)."""
    n = int(rng.integers(2, 6)) if syllables is None else syllables
    return "".join(make_syllables(rng, n))


def to_devanagari_digits(number: int) -> str:
    """12 -> '१२'."""
    return "".join(DIGITS[int(d)] for d in str(int(number)))


def _pada_words(rng: np.random.Generator, syllables: int) -> list[list[str]]:
    """Words (as akshara lists) whose syllables add up to `syllables` (halanta not counted)."""
    words: list[list[str]] = []
    left = syllables
    while left > 0:
        n = min(left, int(rng.integers(2, 6)))
        if left - n == 1:  # avoid a one-syllable tail word most of the time
            n = left
        words.append(make_syllables(rng, n))
        left -= n
    return words


def _verse_tokens(
    rng: np.random.Generator, number: int | None, padas: int, syllables_per_pada: int
) -> list[tuple[str, object]]:
    """A verse as tokens: ("word", [aksharas]) and ("mark", "।" | "॥" | "१२")."""
    tokens: list[tuple[str, object]] = []
    for p in range(padas):
        tokens.extend(("word", w) for w in _pada_words(rng, syllables_per_pada))
        if p == padas - 1:
            tokens.append(("mark", DOUBLE_DANDA))
            if number is not None:
                tokens.append(("num", to_devanagari_digits(number)))
                tokens.append(("mark", DOUBLE_DANDA))
        elif p % 2 == 1:
            tokens.append(("mark", DANDA))
    return tokens


def make_verse(
    rng: np.random.Generator,
    number: int | None = None,
    *,
    padas: int = 4,
    syllables_per_pada: int = 8,
) -> str:
    """A śloka-shaped verse: 4 pādas of 8 syllables, '।' after the 2nd, '॥ 12 ॥' at the end.

    >>> make_verse(np.random.default_rng(0), 12)  # doctest: +SKIP
    'धर्मक्षेत्रे कुरुक्षेत्रे ... । ... ॥ १२ ॥'
    """
    parts = []
    for kind, value in _verse_tokens(rng, number, padas, syllables_per_pada):
        parts.append("".join(value) if kind == "word" else value)  # type: ignore[arg-type]
    return " ".join(parts)


_C = f"[{CONSONANTS}]"
_SYL = rf"(?:{_C}{VIRAMA}){{0,3}}{_C}[{MATRAS}]?[{ANUSVARA}{VISARGA}{CHANDRABINDU}]?"
_HAL = rf"(?:{_C}{VIRAMA}){{1,3}}"
_VOW = rf"[{INDEPENDENT_VOWELS}][{ANUSVARA}{VISARGA}{CHANDRABINDU}]?"
_SYLLABLE_RE = re.compile(rf"{_SYL}|{_HAL}|{_VOW}")
_TOKEN_RE = re.compile(
    rf"(?P<hal>{_HAL}(?!{_C}))|(?P<syl>{_SYL})|(?P<vow>{_VOW})"
    rf"|(?P<mark>[{DANDA}{DOUBLE_DANDA}{OM}])|(?P<num>[{DIGITS}]+)|(?P<space> +)"
)


def is_valid_devanagari_syllable(text: str) -> bool:
    """True when `text` is exactly one valid akshara.

    Grammar: (C ्){0..3} C [matra] [ं|ः|ँ]  |  (C ्){1..3} (word-final halanta)  |  V [ं|ः|ँ]
    with C a Sanskrit consonant, V an independent vowel; रृ does not occur.
    """
    return bool(_SYLLABLE_RE.fullmatch(text)) and "रृ" not in text


def is_valid_devanagari_text(text: str, *, continuous: bool = False) -> bool:
    """True when every token of `text` is a valid word, daṇḍa, ॐ or Devanagari number.

    A word is a run of aksharas in which an independent vowel may only come first and a
    halanta consonant only last. ``continuous=True`` accepts scriptio continua (words
    written without spaces, lines broken anywhere between aksharas): there a vowel may
    follow any akshara, since a word boundary can fall anywhere.
    """
    if "रृ" in text or not text.strip():
        return False
    pos = 0
    in_word = 0  # aksharas so far in the current word
    after_halanta = False
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            return False
        kind = m.lastgroup
        if kind in ("syl", "hal", "vow"):
            if after_halanta and not continuous:
                return False
            if kind == "vow" and in_word and not continuous:
                return False
            in_word += 1
            after_halanta = kind == "hal"
        else:
            in_word = 0
            after_halanta = False
        pos = m.end()
    return True


# ---------------------------------------------------------------------------------------------
# Fonts
# ---------------------------------------------------------------------------------------------

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


def _require_raqm() -> None:
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


@functools.lru_cache(maxsize=8)
def _font_bytes(source: str) -> bytes:
    if source.startswith("package:"):
        module, _, rel = source[len("package:"):].partition("/")
        return importlib.resources.files(module).joinpath(*rel.split("/")).read_bytes()
    return Path(source).read_bytes()


@functools.lru_cache(maxsize=256)
def _font(face: FontFace, size: float, weight: float | None = None, width: float | None = None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(io.BytesIO(_font_bytes(face.source)), size, layout_engine=ImageFont.Layout.RAQM)
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
class _FontChoice:
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


def _choose_font(rng: np.random.Generator) -> _FontChoice:
    fams = font_families()
    if rng.random() < 0.6:  # Kalam looks handwritten; Noto is the clean book hand
        faces = {f.weight: f for f in fams["Kalam"]["faces"]}
        weight = [300, 400, 400, 700][int(rng.integers(4))]
        face = faces.get(weight) or fams["Kalam"]["faces"][0]
        return _FontChoice(face, None, None)
    face = fams["Noto Sans Devanagari"]["faces"][0]
    if face.variable:
        # a few fixed instances: measuring text with this variable font is slow (~1 ms a
        # call), so widths are cached per instance and shared between pages
        return _FontChoice(face, float(rng.choice([380, 460, 540, 620])), float(rng.choice([88, 100])))
    return _FontChoice(face, None, None)


@functools.lru_cache(maxsize=16)
def _vertical_metrics(choice: _FontChoice) -> tuple[float, float]:
    """(height above baseline incl. top matras, depth below baseline) per unit font size."""
    font = choice.at(100)
    above = -font.getbbox("र्कीं", anchor="ls")[1]
    below = font.getbbox("द्रुकृ", anchor="ls")[3]
    return above / 100, below / 100


# ---------------------------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float | None = None) -> np.ndarray:
    """Smooth noise, roughly unit variance, features about `cell` pixels wide."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(math.ceil(h / max(cell_y, 1.0))) + 1)
    gw = max(2, int(math.ceil(w / max(cell_x, 1.0))) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) * 1.3


def _noise1d(rng: np.random.Generator, n: int, cell: float) -> np.ndarray:
    knots = max(2, int(n / max(cell, 1.0)) + 2)
    grid = rng.standard_normal(knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), grid).astype(np.float32)


def _rgb(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32) / 255.0


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> np.ndarray:
    return _rgb(a) * (1 - t) + _rgb(b) * t


def _apply_ink(page: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Multiply-blend `color` over `page` with coverage `alpha` (paper texture shows through)."""
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return
    ya, yb, xa, xb = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    page[ya:yb, xa:xb] *= 1.0 - alpha[ya:yb, xa:xb, None] * (1.0 - color)


def _vline(mask: np.ndarray, x: float, y0: float, y1: float, half: float, wobble: np.ndarray) -> None:
    h, w = mask.shape
    ya, yb = max(0, int(y0)), min(h, int(math.ceil(y1)))
    xa, xb = max(0, int(x - half - 3)), min(w, int(x + half + 4))
    if ya >= yb or xa >= xb:
        return
    xs = np.arange(xa, xb, dtype=np.float32) + 0.5
    a = np.clip(half - np.abs(xs[None, :] - x - wobble[ya:yb, None]) + 0.5, 0, 1)
    np.maximum(mask[ya:yb, xa:xb], a, out=mask[ya:yb, xa:xb])


def _hline(mask: np.ndarray, y: float, x0: float, x1: float, half: float, wobble: np.ndarray) -> None:
    h, w = mask.shape
    xa, xb = max(0, int(x0)), min(w, int(math.ceil(x1)))
    ya, yb = max(0, int(y - half - 3)), min(h, int(y + half + 4))
    if ya >= yb or xa >= xb:
        return
    ys = np.arange(ya, yb, dtype=np.float32) + 0.5
    a = np.clip(half - np.abs(ys[:, None] - y - wobble[None, xa:xb]) + 0.5, 0, 1)
    np.maximum(mask[ya:yb, xa:xb], a, out=mask[ya:yb, xa:xb])


def _shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - r) / math.sqrt(2)
    return np.maximum(np.abs(dx), np.abs(dy)) - r  # square


def _shape_halfwidth(shape: str, r: float, dy_min: float) -> float:
    """Half-width of a centred shape of radius r over a band whose nearest row is dy_min away."""
    if dy_min >= r:
        return -1.0
    if shape == "circle":
        return math.sqrt(r * r - dy_min * dy_min)
    if shape == "diamond":
        return r - dy_min
    return r


def _dilate(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    np.maximum(out[1:], m[:-1], out=out[1:])
    np.maximum(out[:-1], m[1:], out=out[:-1])
    np.maximum(out[:, 1:], m[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], m[:, 1:], out=out[:, :-1])
    return out


def _erode(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    np.minimum(out[1:], m[:-1], out=out[1:])
    np.minimum(out[:-1], m[1:], out=out[:-1])
    np.minimum(out[:, 1:], m[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], m[:, 1:], out=out[:, :-1])
    return out


# ---------------------------------------------------------------------------------------------
# Text layout
# ---------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    text: str
    red: bool
    space_before: bool


@dataclass
class _Line:
    baseline: float
    intervals: list[tuple[float, float]]
    size: float


def _free_intervals(cuts, left: float, right: float, min_width: float) -> list[tuple[float, float]]:
    """The stretches of [left, right] outside the `cuts` that are wide enough to hold text."""
    intervals, x = [], left
    for c0, c1 in sorted(cuts):
        if c0 - x > min_width:
            intervals.append((x, c0))
        x = max(x, c1)
    if right - x > min_width:
        intervals.append((x, right))
    return intervals


def _text_units(rng: np.random.Generator, *, continuous: bool, red_marks: bool, red_words: float, invocation: bool) -> Iterator[_Unit]:
    """An endless stream of layout units: words (spaced) or aksharas (scriptio continua)."""
    verse = int(rng.integers(1, 140))
    tight_numbers = continuous or rng.random() < 0.5
    if invocation:
        text = _INVOCATIONS[int(rng.integers(len(_INVOCATIONS)))]
        for part in text.split(" "):
            yield _Unit(part, red_marks or red_words > 0, True)
    first = True
    carry = ""
    while True:
        tokens = _verse_tokens(rng, verse, 4, 8)
        if first and not invocation:  # a folio begins in the middle of a verse
            tokens = tokens[int(rng.integers(0, max(1, len(tokens) - 3))):]
        first = False
        i = 0
        while i < len(tokens):
            kind, value = tokens[i]
            if kind == "word":
                red = rng.random() < red_words
                aks = list(value)  # type: ignore[call-overload]
                if continuous:
                    # a halanta (म्) joins the next akshara into a conjunct when written
                    # continuously, so it travels with it as one unit
                    if carry:
                        aks[0] = carry + aks[0]
                        carry = ""
                    if aks[-1].endswith(VIRAMA):
                        carry = aks.pop()
                    for a in aks:
                        yield _Unit(a, red, False)
                else:
                    yield _Unit("".join(aks), red, True)
                i += 1
                continue
            if carry:
                yield _Unit(carry, False, False)
                carry = ""
            # a run of marks and numbers: "।" or "॥ १२ ॥"
            j = i
            while j < len(tokens) and tokens[j][0] != "word":
                j += 1
            group = [str(v) for _, v in tokens[i:j]]
            text = "".join(group) if tight_numbers else " ".join(group)
            yield _Unit(text, red_marks, True)
            i = j
        verse += 1


@functools.lru_cache(maxsize=200_000)
def _width100(choice: _FontChoice, text: str) -> float:
    """Advance width of `text` at size 100; shaped advances scale linearly with size."""
    return choice.at(100).getlength(text, language="sa")


def _paste_run(
    canvas: np.ndarray, x: float, baseline: float, text: str, font: ImageFont.FreeTypeFont,
    width: float, above: float, below: float, size: float, anchor: str = "ls",
) -> None:
    """Draw `text` (coverage 0..1) into the float canvas, its anchor at (x, baseline).

    The strip is sized from the known advance width and the font's vertical metrics plus a
    margin for overhangs: a getbbox call would cost as much as the rendering itself with
    the variable font.
    """
    pad = int(math.ceil(size * 0.6)) + 2
    top = int(math.ceil(size * (above * 1.35 + 0.1))) + 2
    depth = int(math.ceil(size * (below * 1.6 + 0.1))) + 2
    origin = pad + (width / 2 if anchor[0] == "m" else 0.0)
    fx, fy = x - math.floor(x), baseline - math.floor(baseline)
    strip = Image.new("L", (int(width) + 2 * pad + 2, top + depth), 0)
    ImageDraw.Draw(strip).text((origin + fx, top + fy), text, font=font, fill=255, anchor=anchor, language="sa")
    x_left = math.floor(x) - int(origin - pad) - pad
    _max_into(canvas, np.asarray(strip, dtype=np.float32) / 255.0, x_left, math.floor(baseline) - top)


def _max_into(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = canvas.shape
    ph, pw = patch.shape
    xa, ya = max(0, x), max(0, y)
    xb, yb = min(w, x + pw), min(h, y + ph)
    if xa < xb and ya < yb:
        np.maximum(canvas[ya:yb, xa:xb], patch[ya - y:yb - y, xa - x:xb - x], out=canvas[ya:yb, xa:xb])


def _layout(
    rng: np.random.Generator,
    lines: list[_Line],
    choice: _FontChoice,
    ink: np.ndarray,
    red: np.ndarray,
    units: Iterator[_Unit],
    *,
    continuous: bool,
    above: float,
    below: float,
) -> list[str]:
    """Fill `lines` with `units`, justified as scribes do; draws into the black and red canvases.

    Units are placed by their shaped advance widths (which add up exactly: a halanta travels
    with the akshara it joins). The slack at the end of each interval is spread over a few
    gaps; each stretch between those gaps is shaped and drawn whole. Returns each line's
    text (parts joined by a space, or not at all in scriptio continua).
    """
    texts: list[str] = []
    pending = next(units)
    after_mark = False
    for line in lines:
        font = choice.at(line.size)
        k = line.size / 100.0
        space_char = _width100(choice, " ") * k
        gap_w = space_char * (0.7 if continuous else 1.0)
        pieces_text: list[str] = []
        for x0, x1 in line.intervals:
            placed: list[tuple[float, _Unit, bool, float]] = []  # (x, unit, gap before, width)
            x = x0
            while True:
                w = _width100(choice, pending.text) * k
                gap = gap_w if placed and (pending.space_before or (continuous and after_mark)) else 0.0
                if x + gap + w > x1:
                    break
                placed.append((x + gap, pending, gap > 0, w))
                x += gap + w
                after_mark = pending.text[0] in (DANDA, DOUBLE_DANDA) or pending.text[0] in DIGITS
                pending = next(units)
            if not placed:
                continue
            n = len(placed)
            sep = "" if continuous else " "
            # justify: open the slack at a few places -- some spaces in spaced writing, some
            # akshara joins in scriptio continua (scribes leave small uneven gaps there)
            slack = x1 - x
            gapped = [i for i in range(1, n) if placed[i][2]]
            joins = [i for i in range(1, n) if not placed[i][2]]
            slots: list[int] = []
            if not continuous and slack > 0.5 and gapped:
                want = int(np.clip(math.ceil(slack / (0.6 * gap_w)), 1, len(gapped)))
                slots = sorted(gapped[int(j)] for j in rng.choice(len(gapped), size=want, replace=False))
                per_slot = min(slack / len(slots), 1.5 * gap_w + 0.15 * line.size)
            elif continuous and slack > 0.5 and n > 1:
                # the daṇḍa gaps first, then at most one join in four
                room = len(gapped) + max(1, len(joins) // 4) if joins else len(gapped)
                want = int(np.clip(math.ceil(slack / (0.25 * line.size)), 1, max(room, 1)))
                extra = max(0, want - len(gapped))
                picked = [joins[int(j)] for j in rng.choice(len(joins), size=min(extra, len(joins)), replace=False)] if joins else []
                slots = sorted(set(gapped) | set(picked))
                per_slot = min(slack / len(slots), 0.35 * line.size) if slots else 0.0
            else:
                per_slot = 0.0
            # pieces: drawn one by one, each shaped whole; a new piece starts at a slot, at a
            # gap of scriptio continua, or where the colour changes
            slot_set = set(slots)
            pieces: list[list[int]] = []
            shift = 0.0
            shifts: list[float] = []
            for i, (_, unit, gapped_i, _) in enumerate(placed):
                if i in slot_set:
                    shift += per_slot
                if i == 0 or i in slot_set or (continuous and gapped_i) or unit.red != placed[i - 1][1].red:
                    pieces.append([i])
                    shifts.append(shift)
                else:
                    pieces[-1].append(i)
            for members, piece_shift in zip(pieces, shifts):
                first = placed[members[0]]
                text = sep.join(placed[i][1].text for i in members)
                width = sum(placed[i][3] for i in members) + (len(members) - 1) * (0.0 if continuous else space_char)
                _paste_run(red if first[1].red else ink, first[0] + piece_shift, line.baseline, text, font, width, above, below, line.size)
            pieces_text.append(sep.join(u.text for _, u, _, _ in placed))
        texts.append(" ".join(pieces_text))
    return texts


def _finish_text(
    rng: np.random.Generator, ink: np.ndarray, red: np.ndarray, size: float, pitch: float,
    column_shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline waviness, stroke-width and ink-density variation, applied to the text masks."""
    h, w = ink.shape
    used = (ink > 0) | (red > 0)
    rows, cols_any = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
    if rows.size == 0:
        return ink, red
    amp = size * rng.uniform(0.025, 0.06)
    reach = int(math.ceil(amp * 3 + 4 + (np.abs(column_shift).max() if column_shift is not None else 0)))
    ya, yb = max(0, rows[0] - reach), min(h, rows[-1] + reach + 1)
    xa, xb = max(0, cols_any[0] - 2), min(w, cols_any[-1] + 3)
    masks = np.stack([ink[ya:yb, xa:xb], red[ya:yb, xa:xb]])
    ch, cw = yb - ya, xb - xa
    # slow vertical displacement: lines undulate and drift by a pixel or two
    disp = _smooth_noise(rng, ch, cw, pitch * 1.3, size * rng.uniform(4, 9)) * amp
    if column_shift is not None:  # e.g. the bend of a palm leaf
        disp += column_shift[None, xa:xb]
    ys = np.arange(ch, dtype=np.float32)[:, None] - disp
    y0 = np.floor(ys)
    frac = ys - y0
    y0 = y0.astype(np.int64)
    a = np.clip(y0, 0, ch - 1)
    b = np.clip(y0 + 1, 0, ch - 1)
    cols = np.arange(cw)[None, :]
    has_red = bool(masks[1].any())
    layers = (0, 1) if has_red else (0,)
    # pen pressure: blend towards a dilated or eroded stroke, smoothly over the page
    stroke = _smooth_noise(rng, ch, cw, size * 2.5) * rng.uniform(0.12, 0.25) + rng.uniform(-0.1, 0.12)
    thick = np.clip(stroke, 0, 0.45)
    thin = np.clip(-stroke, 0, 0.35)
    # ink density: the pen runs dry and is re-dipped; darker and lighter passages
    density = 1.0 - np.clip(0.5 + 0.5 * _smooth_noise(rng, ch, cw, size * 3.0, size * 6.0), 0, 1) * rng.uniform(0.08, 0.2)
    out = [ink, red]
    for k in layers:
        m = masks[k][a, cols] * (1 - frac) + masks[k][b, cols] * frac
        m = m + thick * (_dilate(m) - m) - thin * (m - _erode(m))
        full = np.zeros((h, w), np.float32)
        full[ya:yb, xa:xb] = np.clip(m, 0, 1) * density
        out[k] = full
    return out[0], out[1]


_MIN_FONT_SIZE = 7.0  # smaller Devanagari is a grey smudge, whatever the page size


def _fit_lines(
    n_lines: int, height: float, width: float, extent: float, spacing: float, per_line: tuple[float, float]
) -> tuple[int, float, float]:
    """(lines, pitch, font size) for a text block; `extent` is the font's height per unit size.

    The size follows from the line count, unless a line would then hold fewer than
    per_line[0] or more than per_line[1] ems (odd --size shapes); then the line count follows
    from the clamped size.
    """
    pitch = height / n_lines
    size = pitch / (extent * spacing)
    clamped = max(float(np.clip(size, width / per_line[1], width / per_line[0])), _MIN_FONT_SIZE)
    if abs(clamped - size) > 1e-6:
        n_lines = max(1, int(height / (extent * spacing * clamped)))
        pitch = height / n_lines
        size = max(min(clamped, pitch / (extent * spacing)), _MIN_FONT_SIZE)
    return n_lines, pitch, size


# ---------------------------------------------------------------------------------------------
# Backgrounds and substrates
# ---------------------------------------------------------------------------------------------

_BACKDROPS = (
    (22, 20, 19),  # black velvet / dark table
    (40, 28, 20),  # dark wood
    (58, 22, 22),  # maroon cloth
    (28, 32, 40),  # dark blue-grey cloth
    (48, 44, 40),  # grey board
)


def _backdrop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _rgb(_BACKDROPS[int(rng.integers(len(_BACKDROPS)))]) * rng.uniform(0.8, 1.15)
    shade = 1.0 + 0.08 * _smooth_noise(rng, h, w, max(h, w) / 3)
    grain = 1.0 + 0.05 * _smooth_noise(rng, h, w, 2.0, rng.uniform(2, 40))
    return np.clip(base[None, None, :] * (shade * grain)[..., None], 0, 1)


def _blur(alpha: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray((np.clip(alpha, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.BoxBlur(max(1, int(radius)))), dtype=np.float32) / 255.0


def _edge_shade(alpha: np.ndarray, radius: float) -> np.ndarray:
    """0 deep inside the shape, rising to 1 at its edge, over about `radius` pixels."""
    return np.clip(1.0 - (_blur(alpha, radius) - 0.5) * 2.0, 0, 1)


# ---------------------------------------------------------------------------------------------
# Paper folio
# ---------------------------------------------------------------------------------------------

_PAPER = ((242, 231, 204), (236, 219, 180), (226, 203, 158), (232, 214, 172), (222, 198, 150))
_INKS = {"black": (28, 24, 22), "brown": (74, 48, 30)}
_REDS = ((176, 44, 30), (196, 62, 38), (160, 38, 36), (204, 80, 44))


def _paper_page(rng: np.random.Generator, w: int, h: int, info: dict) -> np.ndarray:
    scale = h / 512.0
    # folio rectangle: full bleed or with a strip of backdrop round it
    if rng.random() < 0.4:
        fx0 = fy0 = -2.0
        fx1, fy1 = w + 2.0, h + 2.0
    else:
        m = min(w, h) * rng.uniform(0.012, 0.04, size=4)
        fx0, fy0, fx1, fy1 = m[0], m[1], w - m[2], h - m[3]
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    jit_x = _noise1d(rng, h, 60 * scale)[:, None] * 0.7
    jit_y = _noise1d(rng, w, 60 * scale)[None, :] * 0.7
    dist = np.minimum(np.minimum(xs - fx0 + jit_x, fx1 - xs + jit_x), np.minimum(ys - fy0 + jit_y, fy1 - ys + jit_y))
    folio = np.clip(dist + 0.5, 0, 1)

    paper = _mix(_PAPER[int(rng.integers(len(_PAPER)))], _PAPER[int(rng.integers(len(_PAPER)))], rng.random())
    paper = paper * rng.uniform(0.96, 1.02)
    tone = (
        1.0
        + 0.025 * _smooth_noise(rng, h, w, 160 * scale)
        + 0.012 * _smooth_noise(rng, h, w, 24 * scale)
        + 0.008 * _smooth_noise(rng, h, w, 1.5)
    )
    if rng.random() < 0.5:  # chain lines of hand-made paper
        period = rng.uniform(70, 120) * scale
        tone += 0.008 * np.cos(2 * np.pi * (xs + rng.uniform(0, period)) / period) ** 8
    # fibres: a few hundred short faint strands
    fib = Image.new("L", (w, h), 0)
    fd = ImageDraw.Draw(fib)
    n_fib = int(rng.integers(150, 400) * (w * h) / (1024 * 512))
    for _ in range(n_fib):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(4, 22) * scale
        bend = rng.uniform(-0.4, 0.4)
        pts = [(x + math.cos(ang + bend * t) * length * t, y + math.sin(ang + bend * t) * length * t) for t in (0, 0.33, 0.66, 1.0)]
        fd.line(pts, fill=int(rng.integers(60, 255)), width=1)
    fib_a = np.asarray(fib, dtype=np.float32) / 255.0
    tone -= 0.035 * fib_a * (1 if rng.random() < 0.7 else -0.6)
    edge = _edge_shade(folio, 18 * scale)
    tone *= 1.0 - 0.07 * edge
    page = np.clip(paper[None, None, :] * tone[..., None], 0, 1)
    back = _backdrop(rng, h, w)
    page = page * folio[..., None] + back * (1 - folio[..., None])

    # ---- layout --------------------------------------------------------------------------
    fw, fh = min(fx1, w) - max(fx0, 0), min(fy1, h) - max(fy0, 0)
    left = max(fx0, 0) + fw * rng.uniform(0.075, 0.13)
    right = min(fx1, w) - fw * rng.uniform(0.075, 0.13)
    top = max(fy0, 0) + fh * rng.uniform(0.07, 0.12)
    bottom = min(fy1, h) - fh * rng.uniform(0.08, 0.13)
    choice = _choose_font(rng)
    above, below = _vertical_metrics(choice)
    n_lines, pitch, size = _fit_lines(int(rng.integers(7, 12)), bottom - top, right - left, above + below,
                                      rng.uniform(0.92, 1.15), per_line=(26, 60))
    red_color = _rgb(_REDS[int(rng.integers(len(_REDS)))])
    ink_name = "black" if rng.random() < 0.65 else "brown"
    ink_color = _rgb(_INKS[ink_name]) * rng.uniform(0.85, 1.15)

    # central blank: square, diamond or circle, sometimes with a red dot or outline
    cx, cy = (left + right) / 2 + rng.uniform(-0.01, 0.01) * fw, top + pitch * n_lines / 2
    shape = str(rng.choice(["square", "diamond", "circle", "none"], p=[0.35, 0.35, 0.15, 0.15]))
    radius = pitch * rng.uniform(1.0, 1.6)
    motifs = []
    if shape != "none":
        motifs.append((cx, cy, radius))
        if rng.random() < 0.12 and right - left > 30 * radius:
            off = (right - left) * rng.uniform(0.27, 0.32)
            motifs += [(cx - off, cy, radius * 0.8), (cx + off, cy, radius * 0.8)]
    pad = size * rng.uniform(0.35, 0.7)
    lines = []
    for i in range(n_lines):
        baseline = top + i * pitch + above * size * 0.92
        band_top, band_bottom = baseline - above * size * 0.75, baseline + below * size * 0.5
        cuts = []
        for mx, my, r in motifs:
            dy = 0.0 if band_top <= my <= band_bottom else min(abs(band_top - my), abs(band_bottom - my))
            half = _shape_halfwidth(shape, r, dy)
            if half >= 0:
                cuts.append((mx - half - pad, mx + half + pad))
        intervals = _free_intervals(cuts, left, right, min_width=size * 2.5)
        jitter = rng.uniform(0.97, 1.03) if choice.face.family == "Kalam" else 1.0
        lines.append(_Line(baseline, intervals, size * jitter))

    ink = np.zeros((h, w), np.float32)
    red = np.zeros((h, w), np.float32)
    continuous = rng.random() < 0.5
    red_marks = rng.random() < 0.75
    units = _text_units(
        rng, continuous=continuous, red_marks=red_marks,
        red_words=0.03 if rng.random() < 0.4 else 0.0, invocation=rng.random() < 0.15,
    )
    texts = _layout(rng, lines, choice, ink, red, units, continuous=continuous, above=above, below=below)

    # folio number in the right margin
    extras = []
    if rng.random() < 0.6:
        font = choice.at(size * 0.8)
        number = to_devanagari_digits(int(rng.integers(2, 240)))
        nx = right + (min(fx1, w) - right) * rng.uniform(0.35, 0.55)
        _paste_run(ink, nx, bottom - pitch * rng.uniform(0.2, 1.2), number, font,
                   _width100(choice, number) * size * 0.8 / 100, above, below, size * 0.8, anchor="ms")
        extras.append(number)
    ink_mask, red_mask = _finish_text(rng, ink, red, size, pitch)

    # red double margin lines (full height or a frame), motif decoration
    deco = np.zeros((h, w), np.float32)
    half = max(0.6, rng.uniform(0.6, 1.2) * scale)
    sep = rng.uniform(3.5, 7.0) * scale
    gap = size * rng.uniform(0.35, 0.8)
    wob_v = _noise1d(rng, h, 80 * scale) * 0.5
    wob_h = _noise1d(rng, w, 80 * scale) * 0.5
    framed = rng.random() < 0.35
    vy0, vy1 = (top - gap, bottom + gap) if framed else (max(fy0, 0), min(fy1, h))
    outer = sep if framed else 0.0  # in a frame the outer lines reach the outer corners
    for x, extend in ((left - gap, 0.0), (left - gap - sep, outer), (right + gap, 0.0), (right + gap + sep, outer)):
        _vline(deco, x, vy0 - extend, vy1 + extend, half, wob_v)
    if framed:
        _hline(deco, top - gap, left - gap, right + gap, half, wob_h)
        _hline(deco, top - gap - sep, left - gap - sep, right + gap + sep, half, wob_h)
        _hline(deco, bottom + gap, left - gap, right + gap, half, wob_h)
        _hline(deco, bottom + gap + sep, left - gap - sep, right + gap + sep, half, wob_h)
    decoration = str(rng.choice(["blank", "dot", "outline", "both"], p=[0.3, 0.3, 0.2, 0.2]))
    for mx, my, r in motifs:
        box = int(r + 6)
        ya, yb = max(0, int(my - box)), min(h, int(my + box))
        xa, xb = max(0, int(mx - box)), min(w, int(mx + box))
        dy = np.arange(ya, yb, dtype=np.float32)[:, None] + 0.5 - my
        dx = np.arange(xa, xb, dtype=np.float32)[None, :] + 0.5 - mx
        if decoration in ("outline", "both"):
            d = _shape_distance(shape, dx, dy, r * 0.85)
            np.maximum(deco[ya:yb, xa:xb], np.clip(half - np.abs(d) + 0.5, 0, 1), out=deco[ya:yb, xa:xb])
        if decoration in ("dot", "both"):
            d = np.hypot(dx, dy) - r * rng.uniform(0.12, 0.22)
            np.maximum(deco[ya:yb, xa:xb], np.clip(-d + 0.5, 0, 1), out=deco[ya:yb, xa:xb])
    _apply_ink(page, deco * rng.uniform(0.7, 0.9), red_color)
    _apply_ink(page, ink_mask * rng.uniform(0.9, 0.97), ink_color)
    _apply_ink(page, red_mask * rng.uniform(0.85, 0.95), red_color)

    info.update(
        font=choice.label, font_family=choice.face.family, font_size=round(size, 2), lines=texts,
        margin_text=extras, continuous=continuous, ink=ink_name, motif=shape,
    )
    return page


# ---------------------------------------------------------------------------------------------
# Palm leaf
# ---------------------------------------------------------------------------------------------

_LEAF = ((212, 182, 130), (198, 164, 112), (185, 148, 98), (168, 130, 84), (150, 112, 72), (220, 192, 142))


def _palm_page(rng: np.random.Generator, w: int, h: int, info: dict) -> np.ndarray:
    leaf_len = w * rng.uniform(0.9, 0.965)
    leaf_h = min(h * rng.uniform(0.68, 0.84), leaf_len / 3.2)
    scale = leaf_h / 300.0
    cx = w / 2 + rng.uniform(-0.01, 0.01) * w
    cy = h / 2 + rng.uniform(-0.03, 0.03) * h
    x_left, x_right = cx - leaf_len / 2, cx + leaf_len / 2
    end_r = leaf_h * rng.uniform(0.3, 0.8)
    power = rng.uniform(2.0, 3.5)
    taper = rng.uniform(-0.05, 0.05)
    bend = rng.uniform(-0.01, 0.01) * leaf_h

    # leaf mask, antialiased: vertical coverage per column, 4 sub-columns for the ends
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    edge_top = _noise1d(rng, w, 40 * scale) * 0.5
    edge_bot = _noise1d(rng, w, 40 * scale) * 0.5
    leaf = np.zeros((h, w), np.float32)
    for sub in (0.125, 0.375, 0.625, 0.875):
        x = np.arange(w, dtype=np.float32) + sub
        u = (x - cx) / (leaf_len / 2)
        half = leaf_h / 2 * (1 + taper * u)
        into_end = np.maximum(0, np.abs(x - cx) - (leaf_len / 2 - end_r)) / end_r
        prof = np.where(into_end < 1, np.clip(1 - into_end**power, 0, 1) ** (1 / power), 0.0)
        half = half * prof
        centre = cy + bend * (1 - u**2)
        top = centre - half + edge_top
        bot = centre + half + edge_bot
        cov = np.clip(np.minimum(ys - top[None, :], bot[None, :] - ys) + 0.5, 0, 1)
        cov[:, prof <= 0] = 0
        leaf += cov * 0.25
    # string holes
    n_holes = 2 if rng.random() < 0.55 else 1
    if n_holes == 2:
        f = rng.uniform(0.25, 0.33)
        hole_x = [x_left + leaf_len * f, x_right - leaf_len * rng.uniform(0.25, 0.33)]
    else:
        hole_x = [cx + rng.uniform(-0.04, 0.04) * leaf_len]
    hole_r = leaf_h * rng.uniform(0.04, 0.065)
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    hole = np.zeros((h, w), np.float32)
    rim = np.zeros((h, w), np.float32)
    holes = []
    box = int(hole_r * 6) + 2
    for hx in hole_x:
        u = (hx - cx) / (leaf_len / 2)
        hy = cy + bend * (1 - u**2) + rng.uniform(-0.02, 0.02) * leaf_h
        holes.append((hx, hy))
        ya, yb = max(0, int(hy) - box), min(h, int(hy) + box)
        xa, xb = max(0, int(hx) - box), min(w, int(hx) + box)
        d = np.hypot(xs[:, xa:xb] - hx, ys[ya:yb] - hy)
        hole[ya:yb, xa:xb] = np.maximum(hole[ya:yb, xa:xb], np.clip(hole_r - d + 0.5, 0, 1))
        rim[ya:yb, xa:xb] = np.maximum(rim[ya:yb, xa:xb], np.exp(-np.maximum(d - hole_r, 0) / (hole_r * 0.6)))
    leaf *= 1 - hole

    colour = _mix(_LEAF[int(rng.integers(len(_LEAF)))], _LEAF[int(rng.integers(len(_LEAF)))], rng.random())
    colour *= rng.uniform(0.94, 1.04)
    # broad bands along the leaf, sparse fine veins, and mottled patches that are browner
    bands = _smooth_noise(rng, h, w, leaf_h * rng.uniform(0.06, 0.12), leaf_len * rng.uniform(0.1, 0.3))
    veins = _smooth_noise(rng, h, w, rng.uniform(1.0, 1.8), rng.uniform(80, 200) * scale)
    veins = np.clip(veins - 1.0, 0, None)  # only the strongest ridges: sparse dark veins
    patches = _smooth_noise(rng, h, w, leaf_h * 0.5, leaf_h * 1.2)
    tone = 1.0 + 0.025 * bands - 0.035 * veins * rng.uniform(0.5, 1.0) + 0.03 * patches
    tone += 0.008 * _smooth_noise(rng, h, w, 1.5)
    edge = _edge_shade(leaf, 10 * scale)
    tone *= 1.0 - rng.uniform(0.12, 0.25) * edge**1.5
    tone *= 1.0 - 0.15 * rim
    # the ends darken a little with handling
    ends = np.clip((np.abs(xs - cx) - (leaf_len / 2 - 2.5 * end_r)) / (2.5 * end_r), 0, 1)
    tone *= 1.0 - 0.10 * ends
    browner = np.clip(0.5 * patches + 0.3 * edge + 0.4 * ends, 0, 1)[..., None] * rng.uniform(0.04, 0.1)
    tint = np.asarray([0.0, -0.35, -0.9], np.float32)  # less green and blue where browner
    page_leaf = np.clip(colour[None, None, :] * tone[..., None] * (1.0 + browner * tint), 0, 1)

    # ---- layout --------------------------------------------------------------------------
    min_half = leaf_h / 2 * (1 - abs(taper))
    margin = leaf_len * rng.uniform(0.025, 0.05)
    left, right = x_left + end_r * 0.6 + margin, x_right - end_r * 0.6 - margin
    top = cy - min_half * rng.uniform(0.72, 0.8)
    bottom = cy + min_half * rng.uniform(0.72, 0.8)
    n_lines = int(rng.integers(4, 9))
    choice = _choose_font(rng)
    above, below = _vertical_metrics(choice)
    spacing = rng.uniform(0.9, 1.1)
    n_lines, pitch, size = _fit_lines(n_lines, bottom - top, right - left, above + below, spacing, per_line=(14, 80))
    band_mode = rng.random() < 0.65  # blank column the full height, or only round the hole
    gap_half = hole_r * (rng.uniform(2.5, 4.5) if band_mode else rng.uniform(1.6, 2.4)) + size * 0.3
    # columns between the holes should hold several aksharas: else a smaller hand, more lines
    edges = [left] + [e for hx, _ in holes for e in (hx - gap_half, hx + gap_half)] + [right]
    narrowest = min(edges[i + 1] - edges[i] for i in range(0, len(edges), 2))
    if band_mode and narrowest < 6 * size:
        size = max(narrowest / 6, _MIN_FONT_SIZE)
        n_lines = int(np.clip((bottom - top) // ((above + below) * spacing * size), 1, 8))
        pitch = (above + below) * spacing * size
        middle = (top + bottom) / 2
        top, bottom = middle - pitch * n_lines / 2, middle + pitch * n_lines / 2
    lines = []
    for i in range(n_lines):
        baseline = top + i * pitch + above * size * 0.92
        band_top, band_bottom = baseline - above * size * 0.75, baseline + below * size * 0.5
        cuts = []
        for hx, hy in holes:
            near = band_top - hole_r * 2.2 < hy < band_bottom + hole_r * 2.2
            if band_mode or near:
                cuts.append((hx - gap_half, hx + gap_half))
        intervals = _free_intervals(cuts, left, right, min_width=size * 2.5)
        jitter = rng.uniform(0.97, 1.03) if choice.face.family == "Kalam" else 1.0
        lines.append(_Line(baseline, intervals, size * jitter))

    ink = np.zeros((h, w), np.float32)
    red = np.zeros((h, w), np.float32)
    continuous = rng.random() < 0.6
    red_marks = rng.random() < 0.25
    units = _text_units(rng, continuous=continuous, red_marks=red_marks, red_words=0.0, invocation=rng.random() < 0.1)
    texts = _layout(rng, lines, choice, ink, red, units, continuous=continuous, above=above, below=below)
    extras = []
    if rng.random() < 0.5:  # folio number in the left margin
        number = to_devanagari_digits(int(rng.integers(2, 300)))
        _paste_run(ink, (x_left + end_r * 0.5 + left) / 2, cy + size * 0.3, number, choice.at(size * 0.8),
                   _width100(choice, number) * size * 0.8 / 100, above, below, size * 0.8, anchor="ms")
        extras.append(number)
    # the text and its ruling follow the leaf's gentle bend
    u = (np.arange(w, dtype=np.float32) + 0.5 - cx) / (leaf_len / 2)
    bend_shift = (bend * (1 - u**2)).astype(np.float32)
    ink_mask, red_mask = _finish_text(rng, ink, red, size, pitch, bend_shift)

    ink_color = _rgb((30, 22, 16)) * rng.uniform(0.8, 1.4)
    deco = np.zeros((h, w), np.float32)
    wob_h = _noise1d(rng, w, 100 * scale) * 0.4 + bend_shift
    wob_v = _noise1d(rng, h, 60 * scale) * 0.4
    if rng.random() < 0.75:  # faint ruling, one line per text line (the text hangs from it)
        for line in lines:
            y = line.baseline - above * size * 0.6
            for x0, x1 in line.intervals:
                _hline(deco, y, x0 - size * 0.2, x1 + size * 0.2, 0.45 * max(scale, 0.6), wob_h)
    ruling = deco * rng.uniform(0.07, 0.14)
    margins = np.zeros((h, w), np.float32)
    if rng.random() < 0.7:  # double vertical lines closing the text block
        sep = rng.uniform(3, 6) * scale
        for x in (left - size * 0.4, left - size * 0.4 - sep, right + size * 0.4, right + size * 0.4 + sep):
            shift = float(bend_shift[int(np.clip(x, 0, w - 1))])
            _vline(margins, x, top - size * 0.1 + shift, bottom + size * 0.1 + shift, 0.6 * max(scale, 0.6), wob_v)
    _apply_ink(page_leaf, ruling, ink_color)
    _apply_ink(page_leaf, margins * rng.uniform(0.25, 0.5), ink_color)
    _apply_ink(page_leaf, ink_mask * rng.uniform(0.88, 0.96), ink_color)
    _apply_ink(page_leaf, red_mask * 0.85, _rgb(_REDS[int(rng.integers(len(_REDS)))]))

    back = _backdrop(rng, h, w)
    # a soft shadow round the leaf, a little below it (light from above)
    drop = max(1, int(round(3 * scale)))
    shadow = np.zeros_like(leaf)
    shadow[drop:] = _blur(leaf, 7 * scale)[:-drop]
    back *= (1.0 - 0.45 * shadow * (1 - leaf))[..., None]
    page = page_leaf * leaf[..., None] + back * (1 - leaf[..., None])
    info.update(
        font=choice.label, font_family=choice.face.family, font_size=round(size, 2), lines=texts,
        margin_text=extras, continuous=continuous, holes=n_holes,
    )
    return page


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in KIND_CHOICES:
        raise UsageError(f"unknown page kind {kind!r}; choose one of {', '.join(KIND_CHOICES)}")
    return kind


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed must be a whole number of at least 0, not {seed!r}")
    return int(seed)


def resolve_kind(seed: int, kind: str) -> str:
    """'mixed' -> 'palm-leaf' or 'paper', chosen from the seed alone; other kinds unchanged."""
    _check_kind(kind)
    if kind != "mixed":
        return kind
    return KINDS[int(np.random.default_rng([_check_seed(seed), 7]).integers(len(KINDS)))]


def default_size(seed: int, kind: str) -> tuple[int, int]:
    """The (width, height) a page gets without --size; multiples of 16.

    palm-leaf: 1536 wide, 256-384 high (aspect 6:1 to 4:1); paper: 1024 wide, 464-560 high.
    """
    kind = resolve_kind(seed, kind)
    rng = np.random.default_rng([_check_seed(seed), 11])
    if kind == "palm-leaf":
        return 1536, 16 * int(rng.integers(16, 25))
    return 1024, 16 * int(rng.integers(29, 36))


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UsageError(f"size must be (width, height), not {size!r}") from None
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise UsageError(f"size {w}x{h} is out of range: width and height must be {MIN_SIDE} to {MAX_SIDE} pixels")
    return w, h


def parse_size(text: str) -> tuple[int, int]:
    """'1024x512' -> (1024, 512); anything else is a UsageError naming --size."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if m is None:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1024x512 or 1536x320")
    w, h = int(m.group(1)), int(m.group(2))
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise UsageError(f"--size {text!r}: width and height must each be {MIN_SIDE} to {MAX_SIDE} pixels, e.g. 1024x512")
    return w, h


def render_page(seed: int, kind: str = "paper", size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict]:
    """One clean page and a dict describing it (kind, size, font, text lines, ...)."""
    _require_raqm()
    seed = _check_seed(seed)
    kind = resolve_kind(seed, kind)
    w, h = default_size(seed, kind) if size is None else _check_size(size)
    rng = np.random.default_rng([seed, KINDS.index(kind), w, h])
    info: dict = {"seed": seed, "kind": kind, "size": [w, h]}
    page = _palm_page(rng, w, h, info) if kind == "palm-leaf" else _paper_page(rng, w, h, info)
    return (np.clip(page, 0, 1) * 255 + 0.5).astype(np.uint8), info


def generate_page(seed: int, kind: str = "paper", size: tuple[int, int] | None = None) -> np.ndarray:
    """A clean synthetic manuscript page, uint8 H×W×3; size is (width, height).

    Deterministic per (seed, kind, size). kind is 'palm-leaf', 'paper' or 'mixed' (the
    seed picks one). Without size, :func:`default_size` picks one from the seed.
    """
    return render_page(seed, kind, size)[0]


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------


def page_seed(seed: int, index: int) -> int:
    """The seed of page `index` (0-based) of a data set made with `seed`."""
    state = np.random.SeedSequence(entropy=_check_seed(seed), spawn_key=(int(index),)).generate_state(1, np.uint32)
    return int(state[0])


_PAGE_NAME = re.compile(r"(train|val)/page-[0-9]+\.png")


def _read_manifest(out: Path) -> dict | None:
    try:
        data = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def is_synth_output(folder: str | os.PathLike) -> bool:
    """True when `folder` holds a manifest.json written by synth."""
    return _read_manifest(Path(folder)) is not None


def _write_json(path: Path, data: dict) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, ensure_ascii=False, indent=2)
            stream.write("\n")
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        raise ManurestoreError(f"{path}: cannot write ({error.strerror or error})") from None


def _plan(pages: int, seed: int, kind: str, val_fraction: float) -> list[dict]:
    rng = np.random.default_rng([seed, 0x5EED])
    if kind == "mixed":
        kinds = [KINDS[i % 2] for i in range(pages)]
        if pages % 2:
            kinds[-1] = KINDS[int(rng.integers(2))]
        kinds = [kinds[i] for i in rng.permutation(pages)]
    else:
        kinds = [kind] * pages
    n_val = int(round(pages * val_fraction))
    if val_fraction > 0 and pages >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, pages - 1)
    # stratified: interleave the kinds so val holds both when mixed
    by_kind = [[i for i in rng.permutation(pages) if kinds[i] == k] for k in KINDS]
    order = [i for pair in zip(*by_kind) for i in pair] + [i for lst in by_kind for i in lst[min(map(len, by_kind)):]]
    val = set(order[:n_val])
    digits = max(4, len(str(pages)))
    plan = []
    for i in range(pages):
        split = "val" if i in val else "train"
        plan.append({"file": f"{split}/page-{i + 1:0{digits}d}.png", "split": split, "seed": page_seed(seed, i), "kind": kinds[i]})
    return plan


def _write_page(job: tuple) -> dict:
    """Render one planned page and write it; returns what the manifest records of it."""
    path, seed, kind, size, overwrite = job
    array, info = render_page(seed, kind, size)
    write_image(path, array, overwrite=overwrite)
    return info


class _InProcess:
    """The executor interface, run in this process (one worker needs no pool)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)


def _page_executor(workers: int, pages: int):
    if workers <= 1 or pages <= 1:
        return _InProcess()
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=min(workers, pages))


def synth_dataset(
    out: str | os.PathLike,
    pages: int = DEFAULT_PAGES,
    seed: int = 0,
    kind: str = "mixed",
    size: tuple[int, int] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict:
    """Write `pages` clean pages to out/train and out/val, and out/manifest.json; returns the manifest.

    A non-empty `out` that is not an earlier synth output is refused unless `overwrite`;
    nothing that synth did not write is ever deleted. Rewriting an earlier synth output
    replaces its pages and removes the pages its manifest lists that the new set lacks.
    `progress(done, total)` is called after every page. `workers` > 1 renders pages in that
    many processes; every page depends on its own seed only, so the output is the same.
    """
    _require_raqm()
    out = Path(out)
    if isinstance(pages, bool) or not isinstance(pages, (int, np.integer)) or pages < 1:
        raise UsageError(f"--pages must be at least 1, not {pages!r}")
    seed = _check_seed(seed)
    _check_kind(kind)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers!r}")
    if size is not None:
        size = _check_size(size)
    if not (0.0 <= float(val_fraction) < 1.0):
        raise UsageError(f"--val-fraction must be at least 0 and below 1, not {val_fraction!r}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose a folder for the data set")
    previous = _read_manifest(out) if out.is_dir() else None
    if out.is_dir() and previous is None and not overwrite:
        if any(not entry.name.startswith(".") for entry in out.iterdir()):
            raise ManurestoreError(
                f"{out}: folder is not empty and holds no synth {MANIFEST_NAME}; "
                "choose a new or empty folder, or pass --overwrite to write into it anyway"
            )
    fonts = font_families()
    plan = _plan(int(pages), seed, kind, float(val_fraction))
    # the pages an earlier run wrote (only names synth itself gives, whatever the manifest says)
    ours = {
        str(p.get("file")) for p in (previous or {}).get("pages", [])
        if isinstance(p, dict) and _PAGE_NAME.fullmatch(str(p.get("file")))
    }
    new_files = {p["file"] for p in plan}
    if not overwrite:
        clash = sorted(f for f in new_files - ours if (out / f).exists())
        if clash:
            raise ManurestoreError(
                f"{out / clash[0]}: already exists and synth did not write it; "
                "pass --overwrite to replace it, or choose another folder"
            )
    try:
        (out / "train").mkdir(parents=True, exist_ok=True)
        (out / "val").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ManurestoreError(f"{out}: cannot create the folder ({error.strerror or error})") from None
    for stale in sorted(ours - new_files):  # an earlier, larger set: drop its extra pages
        (out / stale).unlink(missing_ok=True)

    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "complete": False,
        "manurestore_version": __version__,
        "settings": {
            "pages": int(pages), "seed": seed, "kind": kind,
            "size": list(size) if size else None, "val_fraction": float(val_fraction),
        },
        "fonts": [
            {
                "family": family, "files": [f.file for f in meta["faces"]], "version": meta["version"],
                "package": meta["package"], "package_version": meta["package_version"], "license": meta["license"],
            }
            for family, meta in fonts.items()
        ],
        "counts": {"train": sum(p["split"] == "train" for p in plan), "val": sum(p["split"] == "val" for p in plan)},
        "pages": [dict(p) for p in plan],
    }
    # a provisional manifest first, so an interrupted run is still recognised as ours
    _write_json(out / MANIFEST_NAME, manifest)
    jobs = [(out / e["file"], e["seed"], e["kind"], size, overwrite or e["file"] in ours) for e in manifest["pages"]]
    with _page_executor(workers, len(jobs)) as executor:
        for done, (entry, info) in enumerate(zip(manifest["pages"], executor.map(_write_page, jobs)), start=1):
            entry.update(size=info["size"], font=info["font"])
            ours.add(entry["file"])
            if progress is not None:
                progress(done, len(plan))
    manifest["complete"] = True
    _write_json(out / MANIFEST_NAME, manifest)
    return manifest
