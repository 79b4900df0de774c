"""What a page is made of: palm-leaf and paper materials, each a named range of colours and a texture.

The colours were matched to real scans and photographs (ochre and brown Tamil leaves, grey-brown
Khmer and grey Sinhala ola leaves, medieval parchment, 18th- to 20th-century paper) as they look
in a scan, light included: a painter draws a page's colour from its material's range and builds
the surface's texture with the material's strengths. The restorer then learns that a dark brown
leaf or a grey rag paper is the page itself, not damage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manurestore.data.synth.texture import rgb


@dataclass(frozen=True)
class Material:
    """A kind of leaf or paper: the colours it comes in and how strongly it shows its texture.

    A page's colour lies on the path through `anchors` (from the palest to the darkest the
    material comes in). The strengths are multipliers of the painter's own texture amounts:
    1 is a typical surface, 0 none.
    """

    name: str
    anchors: tuple[tuple[int, int, int], ...]
    weight: float  # how often it is chosen, relative to the others of its kind
    fibres: float  # fine fibres (a leaf's striations along its length; paper's strands and felt)
    mottle: float  # large, uneven patches of tone
    edges: float  # how much darker the edges are


LEAF_MATERIALS = (
    Material("straw", ((236, 218, 166), (226, 204, 146), (214, 188, 124)), 0.15, 0.8, 0.8, 0.9),
    Material("ochre", ((212, 164, 84), (196, 144, 60), (176, 122, 40)), 0.17, 0.8, 0.9, 1.1),
    Material("tan", ((210, 178, 128), (194, 158, 106), (172, 134, 86)), 0.17, 1.0, 1.0, 1.0),
    Material("brown", ((156, 108, 48), (138, 90, 26), (120, 78, 28)), 0.17, 0.9, 1.0, 1.2),
    Material("dark-brown", ((110, 74, 42), (94, 64, 38), (78, 54, 34)), 0.12, 0.9, 1.1, 1.0),
    # old ola leaves: grey (Sinhala photographs) to the khaki grey-brown of Khmer scans
    Material("grey-brown", ((200, 194, 180), (170, 162, 140), (128, 112, 78)), 0.22, 1.5, 1.0, 1.0),
)

PAPER_MATERIALS = (
    Material("white", ((248, 246, 240), (242, 239, 230), (234, 232, 224)), 0.18, 0.7, 0.6, 0.6),
    Material("cream", ((245, 235, 210), (238, 224, 190), (230, 214, 174)), 0.24, 1.0, 1.0, 1.0),
    Material("buff", ((230, 212, 172), (220, 198, 152), (206, 182, 136)), 0.18, 1.0, 1.1, 1.1),
    # rag paper: grey, sometimes a little blue or green
    Material("grey", ((226, 225, 220), (208, 210, 210), (212, 214, 200), (194, 194, 186)), 0.16, 1.4, 1.0, 1.0),
    # from the greyish cream of well-kept vellum to the yellowish brown of an old skin
    Material("parchment", ((234, 226, 204), (216, 206, 180), (212, 190, 144), (188, 160, 112)), 0.24, 0.8, 2.2, 1.6),
)


@dataclass(frozen=True)
class Substrate:
    """A page's material and the colour drawn from its range (0-255, before texture and light)."""

    material: Material
    colour: tuple[int, int, int]

    @property
    def rgb(self) -> np.ndarray:
        return rgb(self.colour)

    @property
    def luminance(self) -> float:
        return luminance(self.colour)


def luminance(colour) -> float:
    """Rec. 601 luma of a 0-255 RGB colour."""
    r, g, b = (float(c) for c in colour)
    return 0.299 * r + 0.587 * g + 0.114 * b


def choose_substrate(rng: np.random.Generator, materials: tuple[Material, ...]) -> Substrate:
    """A material (by weight), a point along its colour path, and a touch of brightness either way."""
    weights = np.asarray([m.weight for m in materials], dtype=np.float64)
    material = materials[int(rng.choice(len(materials), p=weights / weights.sum()))]
    t = rng.random() * (len(material.anchors) - 1)
    i = min(int(t), len(material.anchors) - 2)
    a, b = np.asarray(material.anchors[i], np.float64), np.asarray(material.anchors[i + 1], np.float64)
    colour = (a + (b - a) * (t - i)) * rng.uniform(0.97, 1.03)
    return Substrate(material, tuple(int(c) for c in np.clip(np.round(colour), 0, 255)))
