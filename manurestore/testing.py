"""The plugin author's test kit: every property a degradation op must have, in one call.

A third-party op passes the same checks as the built-ins with one line in its test suite::

    from manurestore.testing import check_degradation
    from my_package.ops import Holes

    def test_holes_keeps_the_contract():
        check_degradation(Holes)

`check_degradation` draws random batches with hypothesis (batch 1–4, 1 or 3 channels, height and
width 1–97, odd and tiny sizes included) and asserts, on every available device:

- shape, dtype (float32, float64 and bfloat16) and device are kept, and `x` is left untouched;
- after the pipeline's clamp the output is finite and in [0, 1]; the op's raw `apply` is finite;
- a step with p = 0 leaves the batch untouched;
- the same seeds give the same output, and image i alone equals image i inside a batch;
- different seeds give different outputs (on a mid-grey random 64×64 image);
- every drawn value whose key names a `Range` parameter lies inside that parameter's range,
  for random valid sub-ranges of its `Bounds`, and the op still gives finite output with them;
- `Params` rejects values outside the bounds and unknown keys; `name` and `description` are set;
- where `apply` takes `out=`: without it, it returns a tensor of its own, and with it, it writes
  the same result into `out` and returns `out` (see `manurestore.degradations.base`).

The strategies and helpers the checks use are public too, for an op's own property tests:
`image_shapes`, `image_seeds`, `random_batch` and `param_ranges`.

A failure raises `AssertionError` (with hypothesis' falsifying example attached) or a hypothesis
error, so it fails the calling test like any assertion. The checks run on one CPU thread (the
images are tiny) and restore torch's thread setting afterwards.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from manurestore.degradations.base import Degradation, ParamsModel, Range
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.degradations.random import ImageRandom

__all__ = ["available_devices", "check_degradation", "image_seeds", "image_shapes", "param_ranges", "random_batch"]

# An op's name is a preset key and a CLI argument: lower-case words joined by underscores.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# Image i alone and inside a batch may differ by float noise of batched kernels, no more.
BATCH_ATOL = 1e-6
# How many seeds the "different seeds differ" check tries before giving up.
SEEDS_TRIED = 8

image_shapes = st.tuples(
    st.integers(1, 4),  # batch
    st.sampled_from([1, 3]),  # channels
    st.integers(1, 97),  # height
    st.integers(1, 97),  # width
)
image_seeds = st.integers(0, 2**62)


def random_batch(shape: Sequence[int], seed: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (B, C, H, W) batch of uniform noise in [0, 1), the same for the same seed."""
    # The test input may come from any generator: only the op must use ImageRandom.
    generator = torch.Generator().manual_seed(seed % (2**31))
    return torch.rand(tuple(shape), generator=generator).to(device=device, dtype=dtype)


@st.composite
def param_ranges(draw, cls: type[Degradation]) -> dict[str, Range]:
    """A random valid `Range` inside each of `cls.Params`' `Bounds` (whole numbers where they
    say `integer`), by parameter name: settings a preset could give."""
    values = {}
    for key, bounds in cls.Params.bounds().items():
        if bounds.integer:
            low = draw(st.integers(int(bounds.low), int(bounds.high)), label=f"{key} low")
            high = draw(st.integers(low, int(bounds.high)), label=f"{key} high")
        else:
            low = draw(st.floats(bounds.low, bounds.high), label=f"{key} low")
            high = draw(st.floats(low, bounds.high), label=f"{key} high")
        values[key] = Range(low, high)
    return values


def available_devices() -> list[torch.device]:
    """The CPU, plus the first CUDA device and MPS where torch sees them."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(torch.device("mps"))
    return devices


def check_degradation(
    cls: type[Degradation],
    *,
    devices: Sequence[torch.device | str] | None = None,
    max_examples: int = 20,
) -> None:
    """Assert that the op class `cls` keeps the degradation contract (see the module docstring).

    `devices` defaults to `available_devices()`; `max_examples` is the number of hypothesis
    examples for each property.

    >>> from manurestore.degradations.noise import GaussianNoise
    >>> check_degradation(GaussianNoise, max_examples=5)
    """
    devices = [torch.device(d) for d in (devices if devices is not None else available_devices())]
    _check_declaration(cls)
    # The images are at most 4×3×97×97: CPU threads only cost here, and on a busy machine they
    # cost a lot (spinning workers), so the checks run on one thread and restore the setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for device in devices:
            _check_batches(cls, device, max_examples)
        _check_seeds_differ(cls, max_examples)
        _check_draws_in_bounds(cls, max_examples)
    finally:
        torch.set_num_threads(threads)


# --- what the class declares ---------------------------------------------------------------------


def _check_declaration(cls: type[Degradation]) -> None:
    label = getattr(cls, "__name__", repr(cls))
    assert isinstance(cls, type) and issubclass(cls, Degradation), f"{label} is not a Degradation subclass"
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and NAME_PATTERN.fullmatch(name), (
        f"{label}.name must be a lower-case identifier like 'ink_bleed', got {name!r}"
    )
    assert isinstance(cls.description, str) and cls.description.strip(), f"{name}: set a one-line `description`"
    assert issubclass(cls.Params, ParamsModel), f"{name}: Params must subclass manurestore's ParamsModel"
    cls()  # the defaults must be valid
    try:
        cls.Params(**{"no_such_key": 1})
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{name}: Params accepted the unknown key 'no_such_key'")
    for key, bounds in cls.Params.bounds().items():
        step = 1.0 if bounds.integer else max(1.0, abs(bounds.high - bounds.low))
        for outside in (bounds.low - step, bounds.high + step):
            try:
                cls.Params(**{key: Range(outside, outside)})
            except ValidationError:
                continue
            raise AssertionError(f"{name}: Params accepted {key}={outside}, outside Bounds({bounds.low}, {bounds.high})")


# --- batches: shape, dtype, device, range, identity, determinism, batch invariance ----------------


def _other_dtypes(device: torch.device) -> list[torch.dtype]:
    return [torch.bfloat16] if device.type == "mps" else [torch.float64, torch.bfloat16]


def _check_batches(cls: type[Degradation], device: torch.device, max_examples: int) -> None:
    name = cls.name

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(shape=image_shapes, seed=image_seeds, data=st.data())
    def batches(shape, seed, data):
        x = random_batch(shape, seed, device)
        seeds = [seed + i for i in range(shape[0])]
        pipeline = Pipeline([Step(cls(), 1.0)], name=name)

        out = pipeline(x, seeds)
        _assert_kept(name, x, out, "pipeline output")
        assert torch.isfinite(out).all(), f"{name}: non-finite values after the pipeline's clamp"
        assert out.min() >= 0.0 and out.max() <= 1.0, f"{name}: output outside [0, 1] after the clamp"

        kept = x.clone()
        raw = _raw(cls(), x, seeds)
        _assert_kept(name, x, raw, "apply() output")
        assert torch.isfinite(raw).all(), f"{name}: apply() gave NaN or inf"
        assert torch.equal(x, kept), f"{name}: apply() changed its input x; return a new tensor"
        if cls.accepts_out:
            _check_out(cls(), x, seeds, raw)

        assert torch.equal(Pipeline([Step(cls(), 0.0)])(x, seeds), x), f"{name}: a step with p=0 changed the batch"
        assert torch.equal(pipeline(x, seeds), out), (
            f"{name}: the same seeds gave a different output; draw every random value from the "
            "ImageRandom passed to sample/apply (never torch.rand, torch.Generator or numpy)"
        )
        i = data.draw(st.integers(0, shape[0] - 1), label="image index")
        alone = pipeline(x[i : i + 1], seeds[i : i + 1])
        difference = (alone[0] - out[i]).abs().max().item()
        assert difference <= BATCH_ATOL, (
            f"{name}: image {i} alone differs from image {i} inside a batch of {shape[0]} by {difference:.3g}; "
            "an image's result must depend only on its own pixels and seed"
        )

        dtype = data.draw(st.sampled_from(_other_dtypes(device)), label="dtype")
        other = pipeline(x.to(dtype), seeds)
        _assert_kept(name, x.to(dtype), other, f"pipeline output for {dtype}")
        assert torch.isfinite(other).all(), f"{name}: non-finite values for {dtype} input"

    batches()


def _check_out(op: Degradation, x: torch.Tensor, seeds: list[int], result: torch.Tensor) -> None:
    """`apply`'s `out=` contract, given `result = apply(x)`: a tensor of its own, and the same
    values written into `out` and returned when `out` is given (here `x`'s copy, as the pipeline
    passes its own batches)."""
    name = op.name
    if x.numel():
        assert result.untyped_storage().data_ptr() != x.untyped_storage().data_ptr(), (
            f"{name}: apply(x) without `out` returned x or a view of it; return a new tensor"
        )
    target = x.clone()
    written = _raw(op, target, seeds, out=target)
    assert isinstance(written, torch.Tensor) and written.data_ptr() == target.data_ptr(), (
        f"{name}: apply(x, out=x) must return `out`, with the result written into it"
    )
    assert torch.equal(target, result), f"{name}: apply(x, out=x) wrote a different result than apply(x)"


def _raw(op: Degradation, x: torch.Tensor, seeds: list[int], out: torch.Tensor | None = None) -> torch.Tensor:
    rand = ImageRandom(seeds, device=x.device)
    draws = op.sample(x.shape[0], rand, x.device)
    assert isinstance(draws, dict), f"{op.name}: sample() must return a dict of tensors"
    for key, value in draws.items():
        assert isinstance(value, torch.Tensor), f"{op.name}: draw {key!r} is not a tensor"
        assert value.shape[:1] == (x.shape[0],), (
            f"{op.name}: draw {key!r} has shape {tuple(value.shape)}; its first dimension must be the batch ({x.shape[0]})"
        )
        assert value.device == x.device, f"{op.name}: draw {key!r} is on {value.device}, the batch on {x.device}"
    return op.apply(x, draws, rand) if out is None else op.apply(x, draws, rand, out=out)


def _assert_kept(name: str, x: torch.Tensor, out: Any, what: str) -> None:
    assert isinstance(out, torch.Tensor), f"{name}: {what} is {type(out).__name__}, not a tensor"
    assert out.shape == x.shape, f"{name}: {what} has shape {tuple(out.shape)}, the input {tuple(x.shape)}"
    assert out.dtype == x.dtype, f"{name}: {what} has dtype {out.dtype}, the input {x.dtype}"
    assert out.device == x.device, f"{name}: {what} is on {out.device}, the input on {x.device}"


# --- seeds matter --------------------------------------------------------------------------------


def _check_seeds_differ(cls: type[Degradation], max_examples: int) -> None:
    name = cls.name

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=image_seeds, channels=st.sampled_from([1, 3]))
    def seeds_differ(seed, channels):
        x = random_batch((1, channels, 64, 64), seed, torch.device("cpu")) * 0.6 + 0.2
        pipeline = Pipeline([Step(cls(), 1.0)], name=name)
        first = pipeline(x, [seed])
        for k in range(1, SEEDS_TRIED):
            if not torch.equal(pipeline(x, [(seed + k * 0x9E3779B1) % 2**63]), first):
                return
        raise AssertionError(f"{name}: {SEEDS_TRIED} different seeds all gave the same output")

    seeds_differ()


# --- draws stay inside the ranges they were asked for --------------------------------------------


def _check_draws_in_bounds(cls: type[Degradation], max_examples: int) -> None:
    name = cls.name
    bounded = cls.Params.bounds()

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=image_seeds, values=param_ranges(cls), data=st.data())
    def draws_in_bounds(seed, values, data):
        op = cls(**values)
        ranges = {key: value for key, value in op.params if isinstance(value, Range) or key in bounded}
        count = 64
        first = seed % 2**40
        draws = op.sample(count, ImageRandom(range(first, first + count)), torch.device("cpu"))
        for key, (low, high) in ranges.items():
            if key in draws:
                drawn = draws[key]  # compared in its own dtype: float32 rounding of the bounds is fine
                assert drawn.min() >= low and drawn.max() <= high, (
                    f"{name}: draw {key!r} spans [{drawn.min().item()}, {drawn.max().item()}], "
                    f"outside the asked range [{low}, {high}]"
                )
        # The op must also work at any valid setting, extremes included.
        channels = data.draw(st.sampled_from([1, 3]), label="channels")
        size = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40)), label="height, width")
        x = random_batch((2, channels, *size), seed, torch.device("cpu"))
        out = _raw(op, x, [first, first + 1])
        _assert_kept(name, x, out, f"apply() output with {values}")
        assert torch.isfinite(out).all(), f"{name}: apply() gave NaN or inf with {values}"

    draws_in_bounds()
