"""Synthetic CLEAN Sanskrit manuscript pages: palm-leaf leaves and paper (pothi) folios.

Every page draws from its own ``numpy.random.Generator`` seeded from ``(seed, kind, width,
height)``; no global random state is touched. Text is Devanagari made only of valid
orthographic syllables (aksharas) and is shaped by Pillow's raqm layout (HarfBuzz), so
conjuncts, reph and matras render correctly.

- `text`: the akshara generator and the grammar that checks it;
- `fonts`: the font packages, the hand a page is written in, text widths, font metadata;
- `texture`: noise, colours, the backdrop and the uneven light the painters build surfaces from;
- `materials`: the palm-leaf and paper materials, each a range of real colours and a texture;
- `layout` and `ink`: lines filled and justified as a scribe would, drawn as ink masks;
- `palm_leaf` and `paper`: one painter per kind of page;
- `pages`: one page from a seed (:func:`render_page`, :func:`generate_page`);
- `dataset`: a train/val folder of pages plus ``manifest.json`` (:func:`synth_dataset`).

The names below are the public API (used by the CLI, training, benchmarks and tests).
"""

from manurestore.data.synth.dataset import (
    DEFAULT_PAGES,
    DEFAULT_VAL_FRACTION,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    is_synth_output,
    page_seed,
    synth_dataset,
)
from manurestore.data.synth.fonts import FontFace, font_families
from manurestore.data.synth.pages import (
    KIND_CHOICES,
    KINDS,
    default_size,
    generate_page,
    parse_size,
    render_page,
    resolve_kind,
)
from manurestore.data.synth.text import (
    CONJUNCTS,
    INDEPENDENT_VOWELS,
    is_valid_devanagari_syllable,
    is_valid_devanagari_text,
    make_syllables,
    make_verse,
    make_word,
    to_devanagari_digits,
)

__all__ = [
    "CONJUNCTS",
    "DEFAULT_PAGES",
    "DEFAULT_VAL_FRACTION",
    "FontFace",
    "INDEPENDENT_VOWELS",
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
