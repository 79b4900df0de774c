"""The public functional API: each op's pure function and the helpers plugin ops build on.

Every op function keeps shape, dtype and device, is deterministic, agrees with its op class given
the same draws, and gives the same result with `out=x` as without `out`.
"""

from __future__ import annotations

import doctest
import importlib

import kornia
import pytest
import torch

from manurestore.degradations import filters
from manurestore.degradations import functional as F
from manurestore.degradations.builtins import BUILTIN_OPS
from manurestore.degradations.random import ImageRandom
from manurestore.testing import random_batch
from tests.conftest import DEVICES

SEEDS = [11, 12, 13]

# Each built-in op's functional call, from its draws (as `apply` makes it).
CALLS = {
    "gaussian_noise": lambda x, d, rand, **out: F.gaussian_noise(x, d["sigma"], rand, **out),
    "gaussian_blur": lambda x, d, rand, **out: F.gaussian_blur(x, d["kernel_size"], **out),
    "contrast": lambda x, d, rand, **out: F.contrast(x, d["alpha"], d["beta"], **out),
    "salt_pepper": lambda x, d, rand, **out: F.salt_pepper(x, d["amount"], rand, **out),
    "yellowing": lambda x, d, rand, **out: F.yellowing(x, d["strength"], **out),
    "stains": lambda x, d, rand, **out: F.stains(x, **d, **out),
}
OP_IDS = [cls.name for cls in BUILTIN_OPS]


def functional_result(cls, x, seeds=None, **out):
    """The op's functional call on `x` with the draws and random stream the op itself would use."""
    seeds = SEEDS[: x.shape[0]] if seeds is None else seeds
    rand = ImageRandom(seeds, device=x.device)
    draws = cls().sample(x.shape[0], rand, x.device)
    return CALLS[cls.name](x, draws, rand, **out)


def test_every_builtin_op_has_a_functional_call():
    assert set(CALLS) == {cls.name for cls in BUILTIN_OPS}
    assert all(callable(getattr(F, name)) for name in CALLS)


# --- every op function ------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_keeps_shape_dtype_and_device_and_leaves_x_alone(cls, channels, dtype, device):
    x = random_batch((3, channels, 19, 26), 1, device, dtype)
    kept = x.clone()
    out = functional_result(cls, x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out.float()).all()
    assert torch.equal(x, kept), "without out= the input is left untouched"
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr(), "a tensor of its own"


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_same_values_same_result_and_other_seeds_differ(cls):
    x = random_batch((3, 3, 40, 40), 2) * 0.6 + 0.2
    first = functional_result(cls, x)
    assert torch.equal(first, functional_result(cls, x))
    others = [functional_result(cls, x, seeds=[s + 100 * k for s in SEEDS]) for k in range(1, 6)]
    assert any(not torch.equal(first, other) for other in others)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_agrees_with_the_op_class_given_the_same_draws(cls, device):
    x = random_batch((3, 3, 33, 21), 3, device)
    op = cls()
    rand = ImageRandom(SEEDS, device=device)
    by_class = op.apply(x, op.sample(3, rand, x.device), rand)
    assert torch.equal(functional_result(cls, x), by_class)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_out_x_gives_the_result_of_out_none(cls, dtype, device):
    x = random_batch((3, 3, 29, 31), 4, device, dtype)
    expected = functional_result(cls, x)
    target = x.clone()
    written = functional_result(cls, target, out=target)
    assert written is target
    assert torch.equal(target, expected)


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_out_may_be_another_tensor_even_a_strided_one(cls):
    x = random_batch((2, 3, 17, 18), 5)
    expected = functional_result(cls, x)
    other = torch.empty_like(x)
    assert functional_result(cls, x, out=other) is other and torch.equal(other, expected)
    strided = torch.empty_like(x, memory_format=torch.channels_last)
    assert functional_result(cls, x, out=strided) is strided and torch.equal(strided, expected)
    # x itself, strided: the result still lands in it.
    y = x.contiguous(memory_format=torch.channels_last)
    assert functional_result(cls, y, out=y) is y and torch.equal(y, expected)


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_out_must_match_x(cls):
    x = random_batch((2, 3, 8, 8), 6)
    with pytest.raises(ValueError, match="out must match x"):
        functional_result(cls, x, out=torch.empty(2, 3, 8, 8, dtype=torch.float64))


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_empty_and_tiny_batches(cls):
    for shape in [(0, 3, 8, 8), (2, 3, 1, 1), (1, 1, 1, 7)]:
        x = random_batch(shape, 7)
        out = functional_result(cls, x, seeds=list(range(shape[0])))
        assert out.shape == x.shape and torch.isfinite(out).all()


# --- what each op function does ---------------------------------------------------------------


def test_gaussian_noise_adds_sigma_times_the_streams_normals():
    x = random_batch((2, 3, 20, 30), 8)
    sigma = torch.tensor([0.0, 0.1])
    noisy = F.gaussian_noise(x, sigma, ImageRandom([1, 2]))
    normals = ImageRandom([1, 2]).normal(3, 20, 30)
    assert torch.equal(noisy[0], x[0]), "sigma 0 adds nothing"
    torch.testing.assert_close(noisy[1], x[1] + 0.1 * normals[1], rtol=0, atol=1e-6)


def test_contrast_is_alpha_x_plus_beta_and_takes_numbers():
    x = random_batch((2, 1, 5, 5), 9)
    torch.testing.assert_close(F.contrast(x, torch.tensor([0.5, 2.0]), torch.tensor([0.1, -0.2])),
                               x * torch.tensor([0.5, 2.0]).view(2, 1, 1, 1) + torch.tensor([0.1, -0.2]).view(2, 1, 1, 1))
    assert torch.equal(F.contrast(x, 0.7, 0.1), F.contrast(x, torch.tensor([0.7, 0.7]), torch.tensor([0.1, 0.1])))


def test_yellowing_scales_channels_by_the_tint_and_gray_by_its_luma():
    x = torch.full((2, 3, 2, 2), 0.5)
    out = F.yellowing(x, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(out[0, :, 0, 0], 0.5 * torch.tensor(F.FULL_TINT))
    assert torch.equal(out[1], x[1]), "strength 0 changes nothing"
    gray = F.yellowing(torch.full((1, 1, 2, 2), 0.5), torch.tensor([1.0]))
    luma = sum(t * w for t, w in zip(F.FULL_TINT, F.LUMA))
    torch.testing.assert_close(gray.flatten(), torch.full((4,), 0.5 * luma))


def test_salt_pepper_hits_the_asked_fraction_of_whole_pixels():
    x = torch.full((2, 3, 80, 80), 0.5)
    out = F.salt_pepper(x, torch.tensor([0.0, 0.2]), ImageRandom([3, 4]))
    assert torch.equal(out[0], x[0])
    hit = out[1] != 0.5
    assert torch.equal(hit[0], hit[1]) and torch.equal(hit[1], hit[2]), "all channels of a pixel"
    assert 0.18 < hit[0].float().mean() < 0.22
    assert set(out[1][hit].unique().tolist()) == {0.0, 1.0}


def test_gaussian_blur_keeps_flat_pages_and_uses_each_images_kernel():
    flat = torch.full((2, 3, 12, 12), 0.4, dtype=torch.float64)
    torch.testing.assert_close(F.gaussian_blur(flat, torch.tensor([3, 7])), flat)
    impulse = torch.zeros(2, 1, 15, 15)
    impulse[:, :, 7, 7] = 1.0
    out = F.gaussian_blur(impulse, torch.tensor([3, 7]))
    taps3, taps7 = (torch.tensor(filters.gaussian_weights(k)) for k in (3, 7))
    torch.testing.assert_close(out[0, 0, 6:9, 6:9], torch.outer(taps3, taps3))
    torch.testing.assert_close(out[1, 0, 4:11, 4:11], torch.outer(taps7, taps7))
    assert torch.equal(F.gaussian_blur(impulse, 5), F.gaussian_blur(impulse, torch.tensor([5, 5])))


def stain_values(count, **changes):
    """The draws of `count` round stains, one per slot, centred and plain."""
    slots = max(count, 1)

    def each(value):
        return torch.full((1, slots), value)

    values = dict(
        count=torch.tensor([count]), centre_y=each(0.5), centre_x=each(0.5), radius=each(0.25),
        intensity=each(0.8), softness=each(0.3), aspect=each(1.0), angle=each(0.0),
        wobble=torch.zeros(1, slots, 3), phase=torch.zeros(1, slots, 3), tint=torch.zeros(1, 3),
    )
    return {**values, **changes}


def test_stains_darken_and_brown_inside_and_leave_the_rest():
    page = torch.ones(1, 3, 64, 64)
    assert torch.equal(F.stains(page, **stain_values(0)), page), "no stains, no change"
    out = F.stains(page, **stain_values(1))
    red, green, blue = out[0, :, 32, 32]
    assert blue < green < red < 1.0, "brown: blue darkens most"
    assert torch.equal(out[..., :4, :], page[..., :4, :]), "beyond the radius nothing changes"
    softer = F.stains(page, **stain_values(1, softness=torch.full((1, 1), 1.5)))
    assert out[0, 0].unique().numel() < softer[0, 0].unique().numel(), "a softer edge has more levels"


# --- helpers for plugin ops -------------------------------------------------------------------


def test_colours_follow_the_channels():
    rgb = torch.tensor([[1.0, 0.5, 0.0], [0.2, 0.4, 0.6]])
    assert torch.equal(F.rgb_to_channels(rgb, 3), rgb)
    torch.testing.assert_close(F.rgb_to_channels(rgb, 1), (rgb * torch.tensor(F.LUMA)).sum(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        F.rgb_to_channels(rgb, 2)
    x = random_batch((2, 3, 4, 5), 10)
    torch.testing.assert_close(F.luminance(x), F.rgb_to_channels(x.movedim(1, -1), 1).movedim(-1, 1))
    assert F.luminance(x[:, :1]).shape == (2, 1, 4, 5)


def test_paper_and_ink_estimates():
    page = torch.full((2, 3, 96, 96), 0.85)
    page[1, :, 40:44, 10:80] = 0.1  # a stroke on the second page only
    torch.testing.assert_close(F.paper_colour(page), torch.full_like(page, 0.85)), "the stroke is not paper"
    ink = F.ink_density(page)
    assert ink.shape == (2, 1, 96, 96) and ink[0].max() == 0.0
    assert ink[1, 0, 42, 40] == 1.0 and ink[1, 0, 80, 40] == 0.0


def test_multiply_blend_darkens_towards_the_colour_and_writes_into_out():
    x = random_batch((2, 3, 6, 6), 11)
    colour = torch.tensor([0.6, 0.4, 0.2]).view(1, 3, 1, 1)
    opacity = torch.rand(2, 1, 6, 6)
    expected = x * (1 - opacity * (1 - colour))
    torch.testing.assert_close(F.multiply_blend(x, colour, opacity), expected)
    y = x.clone()
    assert F.multiply_blend(y, colour, opacity, out=y) is y
    torch.testing.assert_close(y, expected)
    assert torch.equal(F.multiply_blend(x, colour, torch.zeros(2, 1, 6, 6)), x)


def test_fields_grids_and_smoothstep():
    assert F.grid_size(600, 900, 384) == (256, 384)
    assert F.grid_size(10, 20, 384) == (10, 20), "never more cells than pixels"
    assert F.grid_size(600, 900, 384, step=2.0) == (128, 192)
    ys, xs = F.grid_centres(10, 20, (5, 4), "cpu")
    assert ys.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0] and xs.tolist() == [2.5, 7.5, 12.5, 17.5]
    field = torch.rand(2, 1, 6, 6)
    assert F.upsample(field, 6, 6) is field
    assert F.upsample(field, 12, 18).shape == (2, 1, 12, 18)
    smooth = F.smooth_noise(torch.rand(2, 5, 5), 40, 50)
    assert smooth.shape == (2, 1, 40, 50) and smooth.min() >= 0.0 and smooth.max() <= 1.0
    assert F.smoothstep(0.2, 0.6, torch.tensor([0.0, 0.2, 0.4, 0.6, 1.0])).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert F.wide_float("cpu") == torch.float64


def test_gaussian_blur_sigma_is_per_image_and_batch_invariant():
    x = random_batch((3, 2, 21, 17), 12)
    sigma = torch.tensor([0.0, 1.0, 2.5])
    out = F.gaussian_blur_sigma(x, sigma, max_sigma=2.5)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out[0], x[0])  # sigma 0 leaves the image
    alone = F.gaussian_blur_sigma(x[2:], sigma[2:], max_sigma=2.5)
    assert torch.equal(alone[0], out[2])
    flat = torch.full((1, 1, 9, 9), 0.3)
    torch.testing.assert_close(F.gaussian_blur_sigma(flat, torch.tensor([1.5]), max_sigma=2.0), flat)


# --- the blur's two paths -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 40, 37), (1, 1, 6, 5)])
@pytest.mark.parametrize("size", [3, 5, 7, 15, 31])
def test_the_cpu_blur_agrees_with_kornia(size, shape, dtype):
    x = random_batch(shape, size, dtype=dtype)
    ours = F.gaussian_blur(x, torch.full((shape[0],), size))
    sigma = F.opencv_sigma(size)
    border = "reflect" if min(shape[-2:]) > size // 2 else "replicate"
    theirs = kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type=border)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)


def test_the_accelerator_path_agrees_with_the_cpu_path():
    # Run on the CPU here: the same code an accelerator runs, groups of kernel sizes included.
    x = random_batch((5, 3, 30, 26), 13)
    sizes = torch.tensor([7, 3, 7, 5, 3])
    on_cpu = F.gaussian_blur(x, sizes)
    by_kornia = filters._blur_with_kornia(x, sizes, torch.empty_like(x))
    torch.testing.assert_close(by_kornia, on_cpu, rtol=0, atol=1e-6)


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA device")
@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=OP_IDS)
def test_an_accelerator_gives_the_cpus_result(cls):
    x = random_batch((3, 3, 48, 40), 14)
    torch.testing.assert_close(functional_result(cls, x.cuda()).cpu(), functional_result(cls, x), rtol=0, atol=1e-5)


# --- the examples in the docstrings run -----------------------------------------------------

DOCUMENTED = ["functional", "colour", "fields", "filters", "staining", "random", "base",
              "noise", "blur", "contrast", "salt_pepper", "yellowing", "stains"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"manurestore.degradations.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
