"""The built-in degradations, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from manurestore.degradations.blur import GaussianBlur
from manurestore.degradations.contrast import Contrast
from manurestore.degradations.noise import GaussianNoise
from manurestore.degradations.salt_pepper import SaltPepper
from manurestore.degradations.stains import Stains
from manurestore.degradations.yellowing import Yellowing
from manurestore.hookspecs import hookimpl

BUILTIN_OPS = (GaussianNoise, GaussianBlur, Contrast, SaltPepper, Yellowing, Stains)


@hookimpl
def manurestore_register_degradations(register):
    for op in BUILTIN_OPS:
        register(op)
