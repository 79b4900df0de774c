"""The entry point manurestore loads (`[project.entry-points.manurestore] bleedthrough = ...`)."""

from __future__ import annotations

from manurestore.hookspecs import hookimpl
from manurestore_bleedthrough.bleed_through import BleedThrough
from manurestore_bleedthrough.ink_bleed import InkBleed

OPS = (BleedThrough, InkBleed)


@hookimpl
def manurestore_register_degradations(register):
    for op in OPS:
        register(op)
