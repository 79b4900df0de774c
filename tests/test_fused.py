"""The fused kernels (`manurestore.degradations.fused`) give the eager path's numbers.

They are for accelerators, but torch.compile builds them for the CPU too, so the contract is
checked here: every random draw bit for bit, the degraded pixels within the documented float
tolerance, the same records. Compiling takes tens of seconds on the CPU: those tests are slow.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manurestore.degradations import fused
from manurestore.degradations.base import Step
from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.random import ImageRandom, _hash_into, hashed_bits
from manurestore.errors import UsageError

SEEDS = [5, 6, 7, 2**40 + 8]


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4), count=st.integers(1, 3000))
def test_the_pure_hash_is_the_in_place_one(keys, count):
    """`hashed_bits` (what gets compiled) computes exactly what the eager pieces compute."""
    key_column = torch.tensor(keys, dtype=torch.int32).view(-1, 1)
    expected = torch.empty(len(keys), count, dtype=torch.int32)
    _hash_into(expected, key_column, 0, torch.empty_like(expected))
    assert torch.equal(hashed_bits(key_column, count), expected)


def test_the_setting_is_read_and_checked(monkeypatch):
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    assert fused.setting() == "auto" and not fused.active("cpu")
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    assert fused.active("cpu")
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert not fused.active("cpu")
    monkeypatch.setenv(fused.FUSED_ENV, "yes")
    with pytest.raises(UsageError, match="MANURESTORE_FUSED='yes' is not a setting; use auto"):
        fused.active("cpu")


def test_a_kernel_that_cannot_compile_warns_once_and_runs_eagerly(monkeypatch):
    def broken(name, eager):
        raise RuntimeError("no compiler here\nsecond line")

    monkeypatch.setattr(fused, "_compiled", broken)
    monkeypatch.setattr(fused, "_failed", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = fused.run("double", lambda t: t * 2, torch.ones(3))
        second = fused.run("double", lambda t: t * 2, torch.ones(3))
    assert torch.equal(first, torch.full((3,), 2.0)) and torch.equal(second, first)
    assert [str(w.message) for w in caught] == [
        "fused kernel 'double' could not be compiled (no compiler here); using the eager ops"]


def _degrade(monkeypatch, setting: str, pipeline: Pipeline, x: torch.Tensor, seeds):
    monkeypatch.setenv(fused.FUSED_ENV, setting)
    return pipeline(x, seeds, record=True)


@pytest.mark.slow
def test_fused_draws_are_the_eager_draws_bit_for_bit(monkeypatch):
    draws = {}
    for setting in ("0", "1"):
        monkeypatch.setenv(fused.FUSED_ENV, setting)
        rand = ImageRandom(SEEDS)
        draws[setting] = [rand.uniform(3000), rand.below(777, 5000), rand.normal(4001), rand.bernoulli(0.3, 6000)]
    for eager, compiled in zip(draws["0"], draws["1"]):
        assert torch.equal(eager, compiled)


@pytest.mark.slow
def test_the_fused_aged_pipeline_matches_the_eager_one(monkeypatch):
    """Every op of `aged` firing, on two batch shapes: the same records, and pixels within the
    tolerance (noise and the stain mask are computed with fused multiply-adds)."""
    preset = Pipeline.from_preset("aged")
    pipeline = Pipeline([Step(step.op, 1.0) for step in preset.steps])
    for shape in ((4, 3, 96, 128), (2, 3, 64, 80)):
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[0]))
        seeds = SEEDS[: shape[0]]
        eager, eager_record = _degrade(monkeypatch, "0", pipeline, x, seeds)
        compiled, compiled_record = _degrade(monkeypatch, "1", pipeline, x, seeds)
        assert compiled_record == eager_record
        assert float((compiled - eager).abs().max()) <= fused.FLOAT_TOLERANCE
        assert not torch.equal(compiled, x)  # it did degrade
