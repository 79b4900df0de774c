"""Damage seen in real scans: dark spots, tide stains, uneven light, faded ink, JPEG, show-through.

Each op keeps the contract (the plugin kit), its functional call keeps the functional API's, and
each does what its name says. The `archive` preset uses them.
"""

from __future__ import annotations

import doctest
import importlib
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from manurestore.degradations import functional as F
from manurestore.degradations.builtins import BUILTIN_OPS, REAL_DAMAGE_OPS
from manurestore.degradations.dark_spots import DarkSpots
from manurestore.degradations.faded_ink import FadedInk
from manurestore.degradations.illumination import Illumination
from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.random import ImageRandom
from manurestore.degradations.show_through import ShowThrough
from manurestore.degradations.tide_stains import TideStains
from manurestore.testing import check_degradation, random_batch
from tests.conftest import DEVICES

OP_IDS = [cls.name for cls in REAL_DAMAGE_OPS]
SEEDS = [21, 22, 23]

# Each op's functional call from its draws, as `apply` makes it.
CALLS = {
    "dark_spots": lambda op, x, d, **out: F.dark_spots(x, **d, **out),
    "tide_stains": lambda op, x, d, **out: F.tide_stains(x, **d, **out),
    "illumination": lambda op, x, d, **out: F.illumination(x, **d, **out),
    "faded_ink": lambda op, x, d, **out: F.faded_ink(x, d["strength"], unevenness=d["unevenness"], cells=d["cells"], **out),
    "jpeg": lambda op, x, d, **out: F.jpeg(x, d["quality"], offset_y=d["offset_y"], offset_x=d["offset_x"], **out),
    "show_through": lambda op, x, d, **out: F.show_through(
        x, d["strength"], d["blur"], shift=torch.where(d["shift_up"], -d["shift"], d["shift"]),
        max_blur=float(op.params.blur.high), cells=d["cells"], **out),
}


def functional_result(cls, x, seeds=None, **out):
    seeds = SEEDS[: x.shape[0]] if seeds is None else seeds
    op = cls()
    draws = op.sample(x.shape[0], ImageRandom(seeds, device=x.device), x.device)
    return CALLS[cls.name](op, x, draws, **out)


def page(batch: int = 1, channels: int = 3, size: tuple[int, int] = (96, 128), paper: float = 0.85) -> torch.Tensor:
    """A light page with rows of dark strokes."""
    x = torch.full((batch, channels, *size), paper)
    for top in range(8, size[0] - 12, 16):
        for left in range(6, size[1] - 10, 9):
            x[..., top : top + 8, left : left + 3] = 0.12
    return x


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a.double() - b.double()) ** 2).mean()))


# --- the contract -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", REAL_DAMAGE_OPS, ids=OP_IDS)
def test_keeps_the_contract(cls):
    check_degradation(cls)


def test_every_op_is_registered_built_in_with_its_scope():
    from manurestore.plugins import describe_ops, registry

    ops = registry()
    for cls in BUILTIN_OPS + REAL_DAMAGE_OPS:
        assert ops[cls.name].cls is cls and ops[cls.name].source == "built-in"
    scopes = {row["name"]: row["scope"] for row in describe_ops()}
    assert {name: scopes[name] for name in OP_IDS} == {
        "dark_spots": "local", "tide_stains": "local", "illumination": "page",
        "faded_ink": "page", "jpeg": "local", "show_through": "local",
    }
    assert scopes["yellowing"] == scopes["contrast"] == "page" and scopes["stains"] == "local"


def test_the_plugins_command_shows_each_ops_scope():
    from manurestore.cli.app import app

    listed = CliRunner().invoke(app, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)["ops"]}
    assert rows["illumination"]["scope"] == "page" and rows["jpeg"]["scope"] == "local"
    assert "archive" in json.loads(listed.stdout)["presets"]
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0 and "scope" in table.output


def test_functional_exports_every_op():
    assert set(CALLS) <= set(F.__all__)
    assert all(callable(getattr(F, name)) for name in CALLS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("cls", REAL_DAMAGE_OPS, ids=OP_IDS)
def test_functional_call_agrees_with_the_op_and_honours_out(cls, dtype, device):
    x = random_batch((3, 3, 29, 31), 4, device, dtype)
    kept = x.clone()
    op = cls()
    rand = ImageRandom(SEEDS, device=device)
    by_class = op.apply(x, op.sample(3, rand, x.device), rand)
    expected = functional_result(cls, x)
    assert torch.equal(expected, by_class) and torch.equal(x, kept)
    assert expected.shape == x.shape and expected.dtype == dtype and expected.device == x.device
    assert expected.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    target = x.clone()
    assert functional_result(cls, target, out=target) is target and torch.equal(target, expected)


@pytest.mark.parametrize("cls", REAL_DAMAGE_OPS, ids=OP_IDS)
def test_out_may_be_strided_and_must_match(cls):
    x = random_batch((2, 3, 17, 18), 5)
    expected = functional_result(cls, x)
    strided = torch.empty_like(x, memory_format=torch.channels_last)
    assert functional_result(cls, x, out=strided) is strided and torch.equal(strided, expected)
    with pytest.raises(ValueError, match="out must match x"):
        functional_result(cls, x, out=torch.empty(2, 3, 17, 18, dtype=torch.float64))


@pytest.mark.parametrize("cls", REAL_DAMAGE_OPS, ids=OP_IDS)
def test_empty_tiny_and_gray_batches(cls):
    for shape in [(0, 3, 8, 8), (2, 3, 1, 1), (1, 1, 1, 7), (2, 1, 5, 3)]:
        x = random_batch(shape, 7)
        out = functional_result(cls, x, seeds=list(range(shape[0])))
        assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a CUDA device")
@pytest.mark.parametrize("cls", REAL_DAMAGE_OPS, ids=OP_IDS)
def test_an_accelerator_gives_the_cpus_result(cls):
    x = random_batch((3, 3, 48, 40), 14)
    torch.testing.assert_close(functional_result(cls, x.cuda()).cpu(), functional_result(cls, x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["dark_spots", "tide_stains", "illumination", "faded_ink", "jpeg", "show_through",
                                  "blobs", "results"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"manurestore.degradations.{name}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE).failed == 0


# --- what each op does ------------------------------------------------------------------------


def one(value, slots: int = 1):
    return torch.full((1, slots), float(value))


def test_dark_spots_add_small_dark_regions_of_ink_or_brown():
    paper = torch.full((4, 3, 128, 128), 0.85)
    spotted = DarkSpots(count=(6, 6))(paper, ImageRandom([1, 2, 3, 4]))
    changed = (spotted - paper).abs().amax(dim=1) > 1e-6
    assert (spotted <= paper + 1e-6).all(), "spots only darken"
    assert 0.0005 < changed.float().mean() < 0.1, "a few small regions"
    assert spotted.amin() < 0.3, "dense"
    # Each is a compact blob: ink is neutral, brown is warm, and a soft edge fades gradually.
    args = dict(count=torch.tensor([1]), centre_y=one(0.5), centre_x=one(0.5), radius=one(0.05), density=one(1.0),
                aspect=one(1.0), angle=one(0.0), wobble=torch.zeros(1, 1, 4), phase=torch.zeros(1, 1, 4),
                tint=torch.zeros(1, 3))
    ink = F.dark_spots(paper[:1], softness=one(0.01), ink=torch.tensor([[True]]), **args)
    brown = F.dark_spots(paper[:1], softness=one(0.01), ink=torch.tensor([[False]]), **args)
    soft = F.dark_spots(paper[:1], softness=one(0.9), ink=torch.tensor([[True]]), **args)
    centre_ink, centre_brown = ink[0, :, 64, 64], brown[0, :, 64, 64]
    assert float(centre_ink.max() - centre_ink.min()) < 0.03 and float(centre_ink.max()) < 0.15
    assert float(centre_brown[0] - centre_brown[2]) > 0.1
    profile_sharp, profile_soft = ink[0, 0, 64, 64:72], soft[0, 0, 64, 64:72]  # centre to edge (radius 6.4 px)
    assert float(profile_sharp[4]) < 0.15 and float(profile_soft[4]) > 0.3
    assert float((ink[0, 0] < 0.8).float().sum()) == pytest.approx(math.pi * 6.4**2, rel=0.2)


def test_tide_stains_have_a_rim_darker_and_more_saturated_than_their_inside():
    paper = torch.full((1, 3, 160, 160), 0.9)
    stained = F.tide_stains(
        paper, count=torch.tensor([1]), centre_y=one(0.5), centre_x=one(0.5), radius=one(0.35), intensity=one(0.6),
        rim_width=one(0.05), fill=one(0.35), aspect=one(1.0), angle=one(0.0), wobble=torch.zeros(1, 1, 5),
        phase=torch.zeros(1, 1, 5), inner_line=one(0.2), inner_strength=one(0.0), variation=torch.ones(1, 6, 6),
        hue=torch.full((1,), 0.7))
    row = stained[0, :, 80, 80:]  # centre to the right edge; the outline is 56 px out
    brightness = row.mean(dim=0)
    rim = int(brightness.argmin())
    assert 50 <= rim <= 57, "darkest at the outline"
    inside, outside = row[:, :30].mean(dim=1), row[:, 70:].mean(dim=1)
    assert float(brightness[rim]) < float(inside.mean()) - 0.05 < float(outside.mean()) - 0.07
    assert torch.allclose(outside, torch.full((3,), 0.9))

    def saturation(rgb):
        return float((rgb.max() - rgb.min()) / rgb.max())

    assert saturation(row[:, rim]) > saturation(inside) + 0.05
    # The rim is sharp outside and fades gradually inwards.
    assert float(brightness[rim + 3] - brightness[rim]) > float(brightness[rim - 3] - brightness[rim]) + 0.02
    # The op: stains only darken, and clearly.
    op = TideStains(count=(1, 1), radius=(0.3, 0.3), irregularity=(0.2, 0.2))
    many = op(torch.full((4, 3, 128, 128), 0.9), ImageRandom([5, 6, 7, 8]))
    assert (many <= 0.9 + 1e-6).all() and float(many.amin()) < 0.8


def test_illumination_is_a_smooth_light_field_that_darkens_some_region():
    paper = torch.full((4, 1, 192, 256), 0.8)
    op = Illumination(gradient=(0.2, 0.3), vignette=(0.2, 0.3), shadow=(0.4, 0.5), shadow_width=(0.05, 0.1))
    lit = op(paper, ImageRandom([1, 2, 3, 4]))
    field = lit / paper
    assert (field <= 1.0 + 1e-5).all() and (field > 0.0).all(), "light is only taken away"
    darkest = field.amin(dim=(1, 2, 3))
    assert (darkest < 0.75).all(), "every image has a clearly darker region"
    # Smooth: what a 9×9 blur removes (the high frequencies) is a tiny part of its variation,
    # and there are no pixel-to-pixel jumps.
    inner = field[..., 4:-4, 4:-4]
    detail = inner - torch.nn.functional.avg_pool2d(field, 9, stride=1)
    assert float(detail.var() / inner.var()) < 1e-3
    assert float((field[..., 1:, :] - field[..., :-1, :]).abs().max()) < 0.03
    assert float((field[..., 1:] - field[..., :-1]).abs().max()) < 0.03
    # Multiplicative: the writing darkens in proportion, so ink/paper contrast is kept.
    written = page(size=(96, 128))
    lit_page = Illumination()(written, ImageRandom([9]))
    ratio = lit_page / written
    assert float(ratio.amax() - ratio.amin()) < 0.5 and torch.allclose(ratio[..., 8, 6], ratio[..., 8, 5], atol=0.01)


def test_faded_ink_lightens_dark_pixels_more_than_light_ones_and_keeps_the_paper():
    x = torch.full((1, 3, 64, 96), 0.85)
    x[..., 10:14, 8:88] = 0.1  # black ink
    x[..., 30:34, 8:88] = 0.45  # lighter ink
    faded = F.faded_ink(x, torch.tensor([0.6]))
    lift = faded - x
    assert float(lift[0, :, 12, 40].mean()) > float(lift[0, :, 32, 40].mean()) > 0.05
    assert float(lift[0, :, 12, 40].mean()) == pytest.approx(0.6 * 0.75, abs=0.05)
    assert torch.equal(faded[..., 50:, :], x[..., 50:, :]), "bare paper is kept"
    assert (faded <= 0.85 + 1e-6).all(), "ink fades towards the paper, never past it"
    # Uneven: some strokes fade much more than others.
    strokes = page(size=(96, 256))
    uneven = FadedInk(strength=(0.8, 0.8), unevenness=(0.9, 0.9))(strokes, ImageRandom([3]))
    ink = strokes[0, 0] < 0.2
    lifted = (uneven - strokes)[0, 0][ink]
    assert float(lifted.max() - lifted.min()) > 0.25


def test_show_through_darkens_where_the_mirrored_page_is_dark():
    generator = torch.Generator().manual_seed(0)
    x = torch.full((1, 3, 64, 96), 0.9)
    for _ in range(40):  # random strokes, mostly on the left
        top, left = int(torch.randint(2, 58, (1,), generator=generator)), int(torch.randint(2, 60, (1,), generator=generator))
        x[..., top : top + 3, left : left + 10] = 0.1
    seen = F.show_through(x, torch.tensor([0.3]), torch.tensor([0.5]), max_blur=0.5)
    added = (x - seen).clamp_min(0.0)[0, 0]
    assert float(added.max()) > 0.1
    paper = x[0, 0] > 0.5  # where the page's own ink is not: the darkening shows there
    own_ink = (x[0, 0] < 0.5).float()
    mirrored_ink = own_ink.flip(-1)

    def correlation(a, b):
        a, b = a[paper] - a[paper].mean(), b[paper] - b[paper].mean()
        return float((a * b).sum() / (a.norm() * b.norm()))

    assert correlation(added, mirrored_ink) > 0.8
    assert correlation(added, own_ink.flip(-2)) < 0.3, "mirrored left to right, not top to bottom"
    assert float(added[:, :20].sum()) < float(added[:, -20:].sum()), "the left's writing shows on the right"
    # The op: faint, only darkening, and grey pages stay grey.
    gray = ShowThrough()(page(channels=1), ImageRandom([4]))
    assert gray.shape[1] == 1 and (gray <= page(channels=1) + 1e-6).all()


def test_jpeg_shows_8x8_blocks_and_loses_more_as_quality_falls():
    y, x = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    smooth = (0.3 + 0.4 * torch.sin(3 * x + 2 * y) ** 2).expand(1, 3, 96, 128).clone()
    smooth[..., 40:44, 10:120] = 0.1
    qualities = [10, 25, 50, 90]
    scores = [psnr(F.jpeg(smooth, q), smooth) for q in qualities]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 8

    def edge_ratio(coded, shift):
        jumps = (coded[..., 1:] - coded[..., :-1]).abs().mean(dim=(0, 1, 2))  # between columns c and c + 1
        at_blocks = jumps[[c for c in range(len(jumps)) if (c + 1 + shift) % 8 == 0]].mean()
        return float(at_blocks / jumps.mean())

    assert edge_ratio(F.jpeg(smooth, 15), 0) > 1.5  # block edges stand out
    assert edge_ratio(F.jpeg(smooth, 15, offset_x=3), 3) > 1.5  # where the grid was moved to
    assert edge_ratio(F.jpeg(smooth, 15, offset_x=3), 0) < 1.2


def test_jpeg_matches_a_real_encoder():
    generator = torch.Generator().manual_seed(3)
    clean = page(size=(75, 101))
    clean = (clean + 0.05 * torch.rand(clean.shape, generator=generator)).clamp(0, 1)
    clean[:, 0] *= 0.95
    clean[:, 2] *= 0.8  # a yellowish page
    array = (clean[0].permute(1, 2, 0) * 255).round().byte().numpy()
    clean = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    for quality in (15, 50, 85):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=quality)  # libjpeg, 4:2:0
        real = torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        ours = F.jpeg(clean, quality)
        assert psnr(ours, real) > 38, f"quality {quality}"
        assert abs(psnr(ours, clean) - psnr(real, clean)) < 1.0


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (15, 17), (16, 16), (33, 9), (40, 41)])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_takes_any_size_and_writes_8_bit_values_in_range(size, channels):
    x = random_batch((2, channels, *size), 9)
    coded = F.jpeg(x, torch.tensor([10, 60]), offset_y=torch.tensor([0, 15]), offset_x=torch.tensor([7, 0]))
    assert coded.shape == x.shape and coded.min() >= 0 and coded.max() <= 1
    assert torch.equal(coded * 255, (coded * 255).round())
    assert torch.equal(coded, F.jpeg(x, torch.tensor([10, 60]), offset_y=torch.tensor([0, 15]), offset_x=torch.tensor([7, 0])))
    if channels == 1:  # grayscale is coded as luma alone: the same as a gray RGB page's luma
        rgb = F.jpeg(x.expand(2, 3, *size), torch.tensor([10, 60]), offset_y=torch.tensor([0, 15]), offset_x=torch.tensor([7, 0]))
        assert (rgb - coded).abs().max() <= 2.5 / 255


# --- the archive preset and the gallery -------------------------------------------------------


def test_the_archive_preset_has_the_aged_ops_and_every_real_damage_op_moderately():
    archive = Pipeline.from_preset("archive")
    aged = Pipeline.from_preset("aged")
    names = [step.op.name for step in archive.steps]
    assert {step.op.name for step in aged.steps} | set(OP_IDS) == set(names) and len(names) == len(set(names))
    assert names[-1] == "jpeg", "a scan is saved last"
    assert all(0.0 < step.p < 1.0 for step in archive.steps)
    assert "archive" in archive.description.lower() or "scan" in archive.description.lower()
    x = page(batch=3)
    out = archive(x, [1, 2, 3])
    assert out.shape == x.shape and torch.equal(out, archive(x, [1, 2, 3]))
    torch.testing.assert_close(archive(x[2:], [3])[0], out[2], rtol=0, atol=1e-6)
    # Moderate, not extreme: on average no further from the clean page than `aged` takes it.
    batch = page(batch=12, size=(64, 64))
    seeds = list(range(100, 112))

    def mean_psnr(pipeline):
        degraded = pipeline(batch, seeds)
        return sum(psnr(degraded[i], batch[i]) for i in range(len(seeds))) / len(seeds)

    assert mean_psnr(archive) > mean_psnr(aged)


def test_the_gallery_shows_every_new_op():
    from manurestore.viz.gallery import op_entries, preset_entries

    ops = {entry.title: entry for entry in op_entries()}
    assert set(OP_IDS) <= set(ops) and all(ops[name].problem is None for name in OP_IDS)
    assert "preset archive" in [entry.title for entry in preset_entries()]
