"""Ink damage for manurestore: bleed-through from the back of the leaf, and ink bleeding into fibres.

>>> from manurestore.degradations.pipeline import Pipeline, Step
>>> from manurestore_bleedthrough import BleedThrough, InkBleed
>>> pipeline = Pipeline([Step(InkBleed(), p=0.5), Step(BleedThrough(), p=0.7)])
"""

from manurestore_bleedthrough.bleed_through import BleedThrough
from manurestore_bleedthrough.ink_bleed import InkBleed

__version__ = "0.2.0"
__all__ = ["BleedThrough", "InkBleed"]
