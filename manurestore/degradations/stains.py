"""Stains: soft, irregular brown blotches (water, oil, foxing) that darken the page."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue
from manurestore.degradations.staining import OUTLINE_FREQUENCIES, STAIN_BROWN

__all__ = ["STAIN_BROWN", "Stains"]  # the colour, for scripts that mimic the op (benchmarks)


class Stains(Degradation):
    """`count` blotches per image, each with its own centre, radius, outline and intensity.

    Radius is a fraction of the image's shorter side; a stain multiplies the page by a brown
    colour, so it darkens the paper and browns it, with an edge that fades over `softness`
    (`functional.stains`).

    >>> op = Stains(count=(3, 3), intensity=(0.5, 0.5))
    """

    name = "stains"
    description = "1–5 soft, irregular brown blotches per image"

    class Params(ParamsModel):
        count: Annotated[RangeValue, Bounds(0, 20, integer=True), Field(description="stains per image")] = Range(1, 5)
        radius: Annotated[RangeValue, Bounds(0.005, 1.0), Field(description="radius, fraction of the shorter side")] = Range(0.05, 0.2)
        intensity: Annotated[RangeValue, Bounds(0.0, 1.0), Field(description="darkening at the centre")] = Range(0.3, 0.7)
        irregularity: Annotated[RangeValue, Bounds(0.0, 0.8), Field(description="outline wobble")] = Range(0.1, 0.35)
        softness: Annotated[RangeValue, Bounds(0.01, 2.0), Field(description="edge fade, fraction of the radius")] = Range(0.15, 0.5)

    def sample(self, n, gen, device):
        p = self.params
        slots = max(int(p.count.high), 1)  # fixed by the params, never by the batch
        # All on the host: the counts and edge widths pick each image's grid there, and the few
        # numbers per blob then reach the device in one copy (`staining.stain_`).
        return {
            "count": p.draw("count", gen, host=True),
            "centre_y": gen.uniform(slots, host=True),
            "centre_x": gen.uniform(slots, host=True),
            "radius": p.draw("radius", gen, slots, host=True),
            "intensity": p.draw("intensity", gen, slots, host=True),
            "softness": p.draw("softness", gen, slots, host=True),
            "aspect": gen.uniform(slots, low=0.6, high=1.4, host=True),
            "angle": gen.uniform(slots, low=0.0, high=math.pi, host=True),
            "wobble": gen.uniform(slots, len(OUTLINE_FREQUENCIES), host=True) * p.draw("irregularity", gen, slots, host=True).unsqueeze(-1),
            "phase": gen.uniform(slots, len(OUTLINE_FREQUENCIES), high=2 * math.pi, host=True),
            "tint": gen.uniform(3, low=-0.06, high=0.06, host=True),
        }

    def apply(self, x, draws, gen, out=None):
        return functional.stains(x, **draws, out=out)
