"""Palm-leaf damage for manurestore: worm holes and chips, cracks, tide lines, faded edges.

>>> from manurestore.degradations.pipeline import Pipeline, Step
>>> from manurestore_palmleaf import Holes, Cracks
>>> pipeline = Pipeline([Step(Holes(), p=0.8), Step(Cracks(), p=0.5)])
"""

from manurestore_palmleaf.cracks import Cracks
from manurestore_palmleaf.edge_fading import EdgeFading
from manurestore_palmleaf.holes import Holes
from manurestore_palmleaf.tide_lines import TideLines

__version__ = "0.2.0"
__all__ = ["Cracks", "EdgeFading", "Holes", "TideLines"]
