"""The plugin author's kit: every built-in passes it, and each kind of broken op fails it."""

from __future__ import annotations

from typing import Annotated

import pytest
import torch
from hypothesis import Phase, settings

from manurestore.degradations import functional
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image
from manurestore.degradations.builtins import BUILTIN_OPS
from manurestore.testing import available_devices, check_degradation


class Darken(Degradation):
    """A correct op; the broken ones below each get one thing wrong."""

    name = "kit_darken"
    description = "multiply by (1 - amount)"

    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 1.0)] = Range(0.1, 0.5)

    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen)}

    def apply(self, x, draws, gen):
        return x * (1 - per_image(draws["amount"], x))


class GlobalRandom(Darken):
    """Draws from torch's global generator, not the per-image ImageRandom."""

    def apply(self, x, draws, gen):
        return x * (1 - torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 0.5)


class ChangesDtype(Darken):
    def apply(self, x, draws, gen):
        return super().apply(x, draws, gen).to(torch.float16)


class EscapesBounds(Darken):
    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen) * 1.5 + 0.01}


class MixesTheBatch(Darken):
    """Darkens by the batch's mean brightness: image i depends on its neighbours."""

    def apply(self, x, draws, gen):
        return super().apply(x, draws, gen) * (0.5 + 0.5 * x.mean())


class IgnoresTheSeed(Darken):
    def apply(self, x, draws, gen):
        return x * 0.7


class NaNOnTinyImages(Darken):
    def apply(self, x, draws, gen):
        scale = (x.shape[-1] - 1) / (x.shape[-1] - 1) if x.shape[-1] > 1 else float("nan")
        return super().apply(x, draws, gen) * scale


class LoseDraws(Darken):
    """Returns one value for the whole batch instead of one per image."""

    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen)[:1]}

    def apply(self, x, draws, gen):
        return x * (1 - draws["amount"][0])


class NoDescription(Darken):
    description = ""


class DarkenInPlace(Darken):
    """A correct op that takes `out=`: the pipeline lets it write into batches it owns."""

    def apply(self, x, draws, gen, out=None):
        return functional.contrast(x, 1 - draws["amount"], 0.0, out=out)


class IgnoresOut(Darken):
    """Takes `out=` but returns a new tensor instead of writing into it."""

    def apply(self, x, draws, gen, out=None):
        return super().apply(x, draws, gen)


class ReturnsItsInput(Darken):
    """Takes `out=`, but without it hands back a view of `x` (the pipeline may then write into
    the caller's batch)."""

    def apply(self, x, draws, gen, out=None):
        return functional.contrast(x, 1 - draws["amount"], 0.0, out=out) if out is not None else x[:]


class WritesIntoItsInput(Darken):
    """Darkens `x` itself, though no `out` was asked for."""

    def apply(self, x, draws, gen):
        return x.mul_(1 - per_image(draws["amount"], x))


class BadName(Darken):
    name = "Kit Darken"


class UnboundedParams(Darken):
    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 1.0)] = Range(0.1, 0.5)

        model_config = {"extra": "allow"}


settings.register_profile("kit-find-only", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture
def no_shrinking():
    """Finding a failure is the point here; shrinking it to the smallest example only costs time.

    The kit's own settings name max_examples and deadline; the rest comes from the loaded profile.
    """
    previous = settings.get_current_profile_name()
    settings.load_profile("kit-find-only")
    yield
    settings.load_profile(previous)


@pytest.mark.parametrize("op", BUILTIN_OPS, ids=[op.name for op in BUILTIN_OPS])
def test_every_builtin_passes(op):
    check_degradation(op)


def test_a_correct_op_passes_on_named_devices():
    check_degradation(Darken, devices=["cpu"], max_examples=5)
    assert torch.device("cpu") in available_devices()


def test_an_op_writing_into_out_passes():
    assert DarkenInPlace.accepts_out and not Darken.accepts_out
    check_degradation(DarkenInPlace, devices=["cpu"], max_examples=5)


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (GlobalRandom, r"same seeds gave a different output"),
        (ChangesDtype, r"dtype torch.float16"),
        (EscapesBounds, r"draw 'amount' spans .* outside the asked range"),
        (MixesTheBatch, r"alone differs from image \d+ inside a batch"),
        (IgnoresTheSeed, r"different seeds all gave the same output"),
        (NaNOnTinyImages, r"non-finite|NaN"),
        (LoseDraws, r"draw 'amount' has shape"),
        (NoDescription, r"set a one-line `description`"),
        (BadName, r"must be a lower-case identifier"),
        (UnboundedParams, r"accepted the unknown key"),
        (IgnoresOut, r"must return `out`, with the result written into it"),
        (ReturnsItsInput, r"without `out` returned x or a view of it"),
        (WritesIntoItsInput, r"changed its input x"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_a_broken_op_fails_with_a_message_naming_the_problem(op, message, no_shrinking):
    with pytest.raises(AssertionError, match=message):
        check_degradation(op, max_examples=10)


def test_the_thread_setting_is_restored(no_shrinking):
    threads = torch.get_num_threads()
    with pytest.raises(AssertionError):
        check_degradation(GlobalRandom, max_examples=3)
    assert torch.get_num_threads() == threads
