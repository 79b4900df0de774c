"""Salt-and-pepper specks: a fraction of whole pixels set to black or white."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue


class SaltPepper(Degradation):
    """A fraction `amount` of the pixels (all channels together) is hit; half salt, half pepper.

    Only the hits are drawn, so the cost follows the number of specks (`functional.salt_pepper`
    says how the count keeps the expected fraction right).

    >>> op = SaltPepper(amount=(0.01, 0.01))
    """

    name = "salt_pepper"
    description = "salt-and-pepper specks on whole pixels (dust, scanner faults)"

    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 0.5), Field(description="fraction of pixels hit")] = Range(0.001, 0.01)

    def sample(self, n, gen, device):
        return {"amount": self.params.draw("amount", gen, host=True)}  # the hit counts are worked out on the host

    def apply(self, x, draws, gen, out=None):
        return functional.salt_pepper(x, draws["amount"], gen, out=out)
