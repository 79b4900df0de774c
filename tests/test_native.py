"""The native CPU loops (`manurestore.native`) give the torch path's numbers.

Each loop is checked against the torch path it replaces (`MANURESTORE_NATIVE=0`): the noise's
normals bit for bit, every pixel within `fused.FLOAT_TOLERANCE`, the uint8 conversion exactly;
with torch on one thread and on two, in place and not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manurestore.batches import to_batch, to_images
from manurestore import native
from manurestore.degradations import functional
from manurestore.degradations.fused import FLOAT_TOLERANCE
from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.random import ImageRandom
from manurestore.errors import UsageError

pytestmark = pytest.mark.skipif(native._kernels() is None, reason="numba is not installed")

shapes = st.tuples(st.integers(1, 4), st.sampled_from([1, 3]), st.integers(1, 70), st.integers(1, 70))


def both_paths(run):
    """run() with the torch path, then with the native loops."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(native.NATIVE_ENV, "0")
        reference = run()
        patch.setenv(native.NATIVE_ENV, "1")
        return reference, run()


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def test_the_setting_is_read_and_checked(monkeypatch):
    x = torch.zeros(1, 3, 4, 4)
    monkeypatch.delenv(native.NATIVE_ENV, raising=False)
    assert native.active(x)
    assert not native.active(x.double()), "float64 batches stay on the torch path"
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert not native.active(x)
    monkeypatch.setenv(native.NATIVE_ENV, "1")
    before = torch.get_num_threads()
    torch.set_num_threads(native.MAX_THREADS + 1)
    try:
        assert not native.active(x), "with more threads, torch's parallel ops"
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv(native.NATIVE_ENV, "fast")
    with pytest.raises(UsageError, match="MANURESTORE_NATIVE='fast' is not a setting; use 1"):
        native.active(x)


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**40))
def test_the_noise_loop_draws_the_same_normals(shape, seed):
    """On a zero image with sigma 1 the output is the normals themselves: exactly ImageRandom's."""
    batch = shape[0]
    seeds = [seed + i for i in range(batch)]
    noisy = functional.gaussian_noise(torch.zeros(shape), torch.ones(batch), ImageRandom(seeds))
    assert torch.equal(noisy, ImageRandom(seeds).normal(*shape[1:]))


def test_large_noise_draws_are_the_same(threads):
    x = torch.rand(1, 3, 700, 500)
    expected = ImageRandom([3]).normal(3, 700, 500).mul_(0.05).add_(x)
    got = functional.gaussian_noise(x, torch.tensor([0.05]), ImageRandom([3]))
    assert float((got - expected).abs().max()) <= FLOAT_TOLERANCE
    rows = torch.rand(6, 3, 200, 200)  # each image's noise is its own, alone or in a batch
    alone = [functional.gaussian_noise(rows[i : i + 1], torch.tensor([0.1]), ImageRandom([i])) for i in range(6)]
    assert torch.equal(functional.gaussian_noise(rows, torch.full((6,), 0.1), ImageRandom(range(6))), torch.cat(alone))


@settings(max_examples=25, deadline=None)
@given(shape=shapes, sizes=st.lists(st.sampled_from([3, 5, 7, 9]), min_size=4, max_size=4), in_place=st.booleans())
def test_the_blur_loops_match_the_torch_blur(shape, sizes, in_place):
    """Reflected borders, and replicated ones on images smaller than half the kernel."""
    x = torch.rand(shape)
    kernel = torch.tensor(sizes[: shape[0]])

    def blur():
        if not in_place:
            return functional.gaussian_blur(x, kernel)
        y = x.clone()
        return functional.gaussian_blur(y, kernel, out=y)

    expected, got = both_paths(blur)
    assert float((got - expected).abs().max()) <= FLOAT_TOLERANCE


@pytest.mark.parametrize("shape", [(16, 3, 64, 64), (1, 3, 600, 450)], ids=["many planes", "one page"])
def test_large_blurs_match(threads, shape):
    x = torch.rand(shape)
    kernel = torch.tensor([3, 5, 7, 9] * 4)[: shape[0]]
    expected, got = both_paths(lambda: functional.gaussian_blur(x, kernel))
    assert float((got - expected).abs().max()) <= FLOAT_TOLERANCE


@pytest.mark.parametrize("preset", ["aged", "heavy", "broad-real"])
@pytest.mark.parametrize("shape", [(6, 3, 96, 160), (1, 1, 500, 420), (3, 3, 5, 7)], ids=["batch", "grey page", "tiny"])
def test_whole_presets_match_the_torch_path(threads, preset, shape):
    """Stains darken in one native pass: the upsampled mask and its darkening match torch's."""
    x = torch.rand(shape)
    expected, got = both_paths(lambda: Pipeline.from_preset(preset)(x, list(range(shape[0]))))
    assert float((got - expected).abs().max()) <= 2 * FLOAT_TOLERANCE


@settings(max_examples=25, deadline=None)
@given(shape=shapes)
def test_the_uint8_conversion_is_exact(shape):
    x = torch.rand(shape) * 1.4 - 0.2  # clamping on both sides, and ties to even in the middle
    x.view(-1)[:2] = torch.tensor([0.5 / 255, 2.5 / 255])[: x.numel()]
    expected, got = both_paths(lambda: to_images(x))
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


@settings(max_examples=25, deadline=None)
@given(shape=shapes)
def test_reading_uint8_is_exact(shape):
    images = torch.randint(0, 256, (shape[0], shape[2], shape[3], shape[1]), dtype=torch.uint8)
    expected, got = both_paths(lambda: to_batch(images, torch.device("cpu")))
    assert got.is_contiguous() and torch.equal(got, expected)


@pytest.mark.parametrize("numel", [5, 300_000], ids=["small draw", "large draw"])
def test_the_noise_advances_the_stream_as_the_torch_path_does(numel):
    """The draw after the noise is the same on both paths, so every later op sees the same numbers."""
    x = torch.rand(2, 1, 1, numel)

    def noise_then_draw():
        rand = ImageRandom([4, 5])
        noisy = functional.gaussian_noise(x, torch.tensor([0.1, 0.2]), rand)
        return noisy, rand.uniform(7)

    (expected, expected_next), (got, got_next) = both_paths(noise_then_draw)
    assert torch.equal(got_next, expected_next) and float((got - expected).abs().max()) <= FLOAT_TOLERANCE


def test_noise_in_place_and_from_a_strided_batch_matches():
    base = torch.rand(3, 3, 40, 60)
    strided = base[:, :, :, ::2]  # not contiguous
    sigma = torch.tensor([0.05, 0.1, 0.2])

    def noise():
        in_place = base.clone()
        functional.gaussian_noise(in_place, sigma, ImageRandom([1, 2, 3]), out=in_place)
        return in_place, functional.gaussian_noise(strided, sigma, ImageRandom([1, 2, 3]))

    (expected_in_place, expected_strided), (got_in_place, got_strided) = both_paths(noise)
    assert float((got_in_place - expected_in_place).abs().max()) <= FLOAT_TOLERANCE
    assert float((got_strided - expected_strided).abs().max()) <= FLOAT_TOLERANCE
