"""The built-in degradations, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from manurestore.degradations.blur import GaussianBlur
from manurestore.degradations.contrast import Contrast
from manurestore.degradations.dark_spots import DarkSpots
from manurestore.degradations.faded_ink import FadedInk
from manurestore.degradations.illumination import Illumination
from manurestore.degradations.jpeg import Jpeg
from manurestore.degradations.noise import GaussianNoise
from manurestore.degradations.salt_pepper import SaltPepper
from manurestore.degradations.show_through import ShowThrough
from manurestore.degradations.stains import Stains
from manurestore.degradations.tide_stains import TideStains
from manurestore.degradations.yellowing import Yellowing
from manurestore.hookspecs import hookimpl

# The seed's six ops (the `aged` recipe); tests and benchmarks that mirror the seed use these.
BUILTIN_OPS = (GaussianNoise, GaussianBlur, Contrast, SaltPepper, Yellowing, Stains)
# Damage seen in real archive scans that the seed's ops do not make (the `archive` preset).
REAL_DAMAGE_OPS = (DarkSpots, TideStains, Illumination, FadedInk, Jpeg, ShowThrough)
ALL_BUILTIN_OPS = BUILTIN_OPS + REAL_DAMAGE_OPS


@hookimpl
def manurestore_register_degradations(register):
    for op in ALL_BUILTIN_OPS:
        register(op)
