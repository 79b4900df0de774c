"""One synthetic page: its kind and size settled from the seed, its own generator, the painter for its kind.

Everything is deterministic: each page draws from its own ``numpy.random.Generator`` seeded
from ``(seed, kind, width, height)``; no global random state is touched.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Sequence

import numpy as np

from manurestore.data.synth.fonts import require_raqm
from manurestore.data.synth.palm_leaf import PalmLeaf, paint_palm_leaf
from manurestore.data.synth.paper import PaperFolio, paint_paper_folio
from manurestore.errors import UsageError

KINDS = ("palm-leaf", "paper")
KIND_CHOICES = KINDS + ("mixed",)
MIN_SIDE, MAX_SIDE = 64, 8192
_PAINTERS = {"palm-leaf": paint_palm_leaf, "paper": paint_paper_folio}


def check_kind(kind: str) -> str:
    """`kind` if it is one of KIND_CHOICES, else a UsageError listing them."""
    if kind not in KIND_CHOICES:
        raise UsageError(f"unknown page kind {kind!r}; choose one of {', '.join(KIND_CHOICES)}")
    return kind


def check_seed(seed: int) -> int:
    """`seed` as an int if it is a whole number of at least 0 (a bool is not), else a UsageError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed must be a whole number of at least 0, not {seed!r}")
    return int(seed)


def resolve_kind(seed: int, kind: str) -> str:
    """'mixed' -> 'palm-leaf' or 'paper', chosen from the seed alone; other kinds unchanged."""
    check_kind(kind)
    if kind != "mixed":
        return kind
    return KINDS[int(np.random.default_rng([check_seed(seed), 7]).integers(len(KINDS)))]


def default_size(seed: int, kind: str) -> tuple[int, int]:
    """The (width, height) a page gets without --size; multiples of 16.

    palm-leaf: 1536 wide, 256-384 high (aspect 6:1 to 4:1); paper: 1024 wide, 464-560 high.
    """
    kind = resolve_kind(seed, kind)
    rng = np.random.default_rng([check_seed(seed), 11])
    if kind == "palm-leaf":
        return 1536, 16 * int(rng.integers(16, 25))
    return 1024, 16 * int(rng.integers(29, 36))


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """`size` as (width, height) ints within MIN_SIDE..MAX_SIDE, else a UsageError."""
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UsageError(f"size must be (width, height), not {size!r}") from None
    if not _within_limits(w, h):
        raise UsageError(f"size {w}x{h} is out of range: width and height must be {MIN_SIDE} to {MAX_SIDE} pixels")
    return w, h


def _within_limits(w: int, h: int) -> bool:
    return MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE


def parse_size(text: str) -> tuple[int, int]:
    """'1024x512' -> (1024, 512); anything else is a UsageError naming --size."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if m is None:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1024x512 or 1536x320")
    w, h = int(m.group(1)), int(m.group(2))
    if not _within_limits(w, h):
        raise UsageError(f"--size {text!r}: width and height must each be {MIN_SIDE} to {MAX_SIDE} pixels, e.g. 1024x512")
    return w, h


def render_page(seed: int, kind: str = "paper", size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict]:
    """One clean page and a dict describing it (kind, size, font, text lines, ...)."""
    require_raqm()
    seed = check_seed(seed)
    kind = resolve_kind(seed, kind)
    w, h = default_size(seed, kind) if size is None else check_size(size)
    rng = np.random.default_rng([seed, KINDS.index(kind), w, h])
    page, painted = _PAINTERS[kind](rng, w, h)
    return (np.clip(page, 0, 1) * 255 + 0.5).astype(np.uint8), _page_info(seed, kind, w, h, painted)


def generate_page(seed: int, kind: str = "paper", size: tuple[int, int] | None = None) -> np.ndarray:
    """A clean synthetic manuscript page, uint8 H×W×3; size is (width, height).

    Deterministic per (seed, kind, size). kind is 'palm-leaf', 'paper' or 'mixed' (the
    seed picks one). Without size, :func:`default_size` picks one from the seed.
    """
    return render_page(seed, kind, size)[0]


def _page_info(seed: int, kind: str, w: int, h: int, painted: PalmLeaf | PaperFolio) -> dict:
    """render_page's dict: seed, kind and size, then what the painter recorded, flat and JSON-ready."""
    recorded = asdict(painted)
    info = {"seed": seed, "kind": kind, "size": [w, h], **recorded.pop("writing"), **recorded}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in info.items()}
