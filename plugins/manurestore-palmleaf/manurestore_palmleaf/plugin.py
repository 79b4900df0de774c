"""The entry point manurestore loads (`[project.entry-points.manurestore] palmleaf = ...`)."""

from __future__ import annotations

from manurestore.hookspecs import hookimpl
from manurestore_palmleaf.cracks import Cracks
from manurestore_palmleaf.edge_fading import EdgeFading
from manurestore_palmleaf.holes import Holes
from manurestore_palmleaf.tide_lines import TideLines

OPS = (Holes, Cracks, TideLines, EdgeFading)


@hookimpl
def manurestore_register_degradations(register):
    for op in OPS:
        register(op)
