"""Property tests for every built-in op and every shipped preset (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manurestore.degradations.base import Degradation
from manurestore.degradations.builtins import BUILTIN_OPS
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.degradations.presets import list_presets
from manurestore.degradations.random import ImageRandom
from manurestore.testing import image_seeds, image_shapes, param_ranges, random_batch
from tests.conftest import DEVICES

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def single_op(cls, p=1.0):
    return Pipeline([Step(cls(), p)], name=cls.name)


def pipelines():
    return [single_op(cls) for cls in BUILTIN_OPS] + [Pipeline.from_preset(name) for name in list_presets()]


PIPELINE_IDS = [cls.name for cls in BUILTIN_OPS] + list_presets()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("index", range(len(PIPELINE_IDS)), ids=PIPELINE_IDS)
@SETTINGS
@given(shape=image_shapes, seed=image_seeds)
def test_shape_dtype_device_range_and_determinism(index, device, shape, seed):
    pipeline = pipelines()[index]
    x = random_batch(shape, seed, device)
    seeds = [seed + i for i in range(shape[0])]
    out = pipeline(x, seeds)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(out, pipeline(x, seeds)), "same seeds must give the same output"
    # Image i alone equals image i inside the batch.
    i = shape[0] - 1
    alone = pipeline(x[i : i + 1], seeds[i : i + 1])
    torch.testing.assert_close(alone[0], out[i], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=[c.name for c in BUILTIN_OPS])
@SETTINGS
@given(shape=image_shapes, seed=image_seeds)
def test_probability_zero_is_identity(cls, shape, seed):
    x = random_batch(shape, seed)
    assert torch.equal(single_op(cls, p=0.0)(x, list(range(shape[0]))), x)


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=[c.name for c in BUILTIN_OPS])
@SETTINGS
@given(seed=image_seeds, channels=st.sampled_from([1, 3]))
def test_different_seeds_differ(cls, seed, channels):
    x = random_batch((1, channels, 64, 64), seed) * 0.6 + 0.2
    pipeline = single_op(cls)
    a, b = pipeline(x, [seed]), pipeline(x, [seed ^ 0x5A5A5A])
    if cls.name == "gaussian_blur":  # three kernel sizes: two seeds may pick the same one
        outputs = {pipeline(x, [seed + k]).sum().item() for k in range(12)}
        assert len(outputs) > 1
    else:
        assert not torch.equal(a, b)


@pytest.mark.parametrize("cls", BUILTIN_OPS, ids=[c.name for c in BUILTIN_OPS])
@SETTINGS
@given(seed=image_seeds, data=st.data())
def test_draws_stay_inside_declared_ranges(cls, seed, data):
    # A random valid sub-range of each parameter's bounds, then many draws from it.
    values = data.draw(param_ranges(cls))
    op = cls(**values)
    draws = op.sample(64, ImageRandom(range(seed % 1000, seed % 1000 + 64)), torch.device("cpu"))
    for name, (low, high) in values.items():
        if name in draws:
            assert draws[name].min() >= low and draws[name].max() <= high, name
            integer = cls.Params.bounds()[name].integer
            assert (draws[name].dtype == torch.int64) == integer, f"{name}: whole numbers exactly where Bounds say so"


def test_aged_is_the_seeds_recipe():
    steps = Pipeline.from_preset("aged").steps
    assert [(s.op.name, s.p) for s in steps] == [
        ("gaussian_noise", 0.7), ("gaussian_blur", 0.7), ("contrast", 0.6),
        ("salt_pepper", 0.5), ("yellowing", 0.6), ("stains", 0.4),
    ]
    params = {s.op.name: s.op.params for s in steps}
    assert params["gaussian_noise"].sigma == (0.01, 0.08)
    assert params["gaussian_blur"].kernel_sizes == (3, 5, 7)
    assert params["contrast"].alpha == (0.6, 0.9) and params["contrast"].beta == (0.05, 0.15)
    assert params["salt_pepper"].amount == (0.001, 0.01)
    assert params["stains"].count == (1, 5) and params["stains"].intensity == (0.3, 0.7)


def test_yellowing_full_strength_is_the_seed_tint():
    from manurestore.degradations.yellowing import Yellowing

    x = torch.full((1, 3, 4, 4), 0.5)
    out = Pipeline([Step(Yellowing(strength=(1.0, 1.0)))])(x, [1])
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.5, 0.475, 0.4]))


def test_contrast_is_alpha_x_plus_beta():
    from manurestore.degradations.contrast import Contrast

    x = torch.rand(2, 3, 5, 5)
    out = Pipeline([Step(Contrast(alpha=(0.7, 0.7), beta=(0.1, 0.1)))])(x, [1, 2])
    torch.testing.assert_close(out, x * 0.7 + 0.1)


def test_blur_uses_opencv_sigma_and_per_image_kernel():
    from manurestore.degradations.blur import GaussianBlur
    from manurestore.degradations.functional import opencv_sigma

    assert opencv_sigma(3) == pytest.approx(0.8) and opencv_sigma(7) == pytest.approx(1.4)
    draws = GaussianBlur().sample(200, ImageRandom(range(200)), torch.device("cpu"))
    assert set(draws["kernel_size"].tolist()) == {3, 5, 7}


def test_salt_pepper_hits_whole_pixels():
    from manurestore.degradations.salt_pepper import SaltPepper

    x = torch.full((1, 3, 64, 64), 0.5)
    out = Pipeline([Step(SaltPepper(amount=(0.2, 0.2)))])(x, [3])
    hit = (out != 0.5)
    assert torch.equal(hit[:, 0], hit[:, 1]) and torch.equal(hit[:, 1], hit[:, 2])
    assert 0.15 < hit[:, 0].float().mean() < 0.25
    assert set(out[hit].unique().tolist()) == {0.0, 1.0}


def test_stains_darken_and_brown_with_soft_edges():
    from manurestore.degradations.stains import Stains

    x = torch.ones(1, 3, 128, 128)
    out = Pipeline([Step(Stains(count=(3, 3), intensity=(0.7, 0.7), radius=(0.2, 0.2)))])(x, [5])
    assert out.min() < 0.9, "a stain must darken the page"
    red, blue = out[0, 0], out[0, 2]
    assert (blue <= red + 1e-6).all(), "stains are brown: blue drops more than red"
    levels = out[0, 0].unique()
    assert levels.numel() > 20, "soft edges give many intermediate levels"


def test_half_precision_keeps_dtype():
    x = torch.rand(2, 3, 16, 16).to(torch.bfloat16)
    out = Pipeline.from_preset("heavy")(x, [1, 2])
    assert out.dtype == torch.bfloat16


def test_record_lists_fired_ops_with_values():
    x = torch.rand(3, 3, 32, 32)
    pipeline = Pipeline.from_preset("heavy")
    _, record = pipeline(x, [1, 2, 3], record=True)
    assert len(record) == 3
    entries = [entry for fired in record for entry in fired]
    assert entries, "on three images some op of the heavy preset must fire"
    # Each entry names its op and lists exactly the values that op draws, one per key.
    draw_keys = {step.op.name: set(step.op.sample(1, ImageRandom([0]), torch.device("cpu"))) for step in pipeline.steps}
    for entry in entries:
        assert entry["op"] in draw_keys
        assert set(entry) - {"op"} == draw_keys[entry["op"]]
    # Replaying a recorded value: the image's own row of its draws.
    first = record[0][0]
    step_position = [step.op.name for step in pipeline.steps].index(first["op"])
    step = pipeline.steps[step_position]
    draws = step.op.sample(3, ImageRandom([1, 2, 3]).fork(step_position, step.op.name).fork("op"), torch.device("cpu"))
    assert {key: draws[key][0].tolist() for key in draws} == {key: first[key] for key in draws}


def test_image_random_is_batch_invariant_and_distinct():
    rand = ImageRandom([10, 11, 12])
    values = rand.uniform(100)
    assert torch.equal(ImageRandom([11]).uniform(100)[0], values[1])
    assert not torch.equal(values[0], values[1])
    assert torch.equal(ImageRandom([11, 12]).subset(torch.tensor([1])).uniform(5), ImageRandom([12]).uniform(5))
    normal = ImageRandom(range(8)).normal(4096)
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05


def test_the_input_is_untouched_unless_the_caller_gives_it_up():
    x = torch.rand(3, 3, 24, 24)
    kept = x.clone()
    pipeline = Pipeline.from_preset("heavy")
    out = pipeline(x, [1, 2, 3])
    assert torch.equal(x, kept)
    given_up = pipeline(x, [1, 2, 3], overwrite_input=True)
    assert torch.equal(given_up, out)


class HandsBackItsInput(Degradation):
    """A third-party op in the style without `out=`: it even returns `x` itself."""

    name = "hands_back_its_input"
    description = "returns its input"

    def sample(self, n, gen, device):
        return {}

    def apply(self, x, draws, gen):
        return x


def test_an_op_without_out_still_works_and_its_result_is_never_written_into():
    from manurestore.degradations.contrast import Contrast

    assert not HandsBackItsInput.accepts_out and Contrast.accepts_out
    x = torch.rand(4, 3, 8, 8)
    kept = x.clone()
    for p in (1.0, 0.5):
        pipeline = Pipeline([Step(HandsBackItsInput(), p), Step(Contrast(alpha=(0.5, 0.5), beta=(0.1, 0.1)))])
        out = pipeline(x, [1, 2, 3, 4])
        assert torch.equal(x, kept), "the caller's batch, handed back by the op, is not written into"
        torch.testing.assert_close(out, x * 0.5 + 0.1)


def test_a_subclass_overriding_apply_without_out_is_called_without_it():
    from manurestore.degradations.noise import GaussianNoise

    class Doubled(GaussianNoise):
        def apply(self, x, draws, gen):
            return super().apply(x, draws, gen) * 2.0

    assert GaussianNoise.accepts_out and not Doubled.accepts_out
    x = torch.full((2, 1, 8, 8), 0.25)
    out = Pipeline([Step(Doubled(sigma=(0.0, 0.0)))])(x, [1, 2], overwrite_input=True)
    torch.testing.assert_close(out, torch.full_like(x, 0.5))


def test_an_undamaged_share_leaves_exactly_those_images_as_they_came():
    x = torch.rand(200, 3, 16, 16)
    seeds = list(range(200))
    spared = Pipeline.from_preset("train-real")
    assert spared.undamaged == 0.2
    out, record = spared(x, seeds, record=True)
    untouched = [i for i in range(200) if torch.equal(out[i], x[i])]
    assert untouched == [i for i in range(200) if not record[i]]
    # About a fifth are spared (the steps alone leave well under 1 % of images clean).
    assert 25 <= len(untouched) <= 60
    # The share is drawn per image, so an image's fate does not depend on its batch.
    first = untouched[0]
    alone = spared(x[first : first + 2], seeds[first : first + 2])
    assert torch.equal(alone[0], x[first])
    assert torch.allclose(alone, out[first : first + 2], atol=1e-6)
    # Its local half (what a page-context model's tiles learn on) spares the same images.
    local = spared.only("local")
    local_out = local(x, seeds)
    assert all(torch.equal(local_out[i], x[i]) for i in untouched)


def test_a_preset_on_a_base_runs_the_base_steps_then_its_own(tmp_path):
    assert Pipeline.from_preset("train-real").describe() == Pipeline.from_preset("broad-real").describe()
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "aged"\n[[step]]\nop = "jpeg"\n')
    assert [step["op"] for step in Pipeline.from_preset(mine).describe()] == [
        step["op"] for step in Pipeline.from_preset("aged").describe()] + ["jpeg"]


def test_without_an_undamaged_share_a_preset_degrades_as_before():
    x = torch.rand(16, 3, 16, 16)
    broad = Pipeline.from_preset("broad-real")
    same_steps = Pipeline(broad.steps, undamaged=0.0)
    assert torch.equal(broad(x, range(16)), same_steps(x, range(16)))
    with pytest.raises(ValueError, match="undamaged"):
        Pipeline(broad.steps, undamaged=1.0)


@pytest.mark.parametrize("preset", list_presets())
def test_shipped_presets_read_nothing_back_from_the_device(preset):
    """On a GPU every read back (nonzero, tolist, item, a copy to the host) waits for all the work
    queued there. The meta device holds no values, so any such read fails on it: each shipped
    preset, every op firing or half of them, with an undamaged share, runs there."""
    steps = Pipeline.from_preset(preset).steps
    for p in (1.0, 0.5):
        pipeline = Pipeline([Step(step.op, p) for step in steps], undamaged=0.2)
        degraded = pipeline(torch.empty(8, 3, 48, 64, device="meta"), list(range(8)))
        assert degraded.device.type == "meta" and degraded.shape == (8, 3, 48, 64)


def test_salt_and_pepper_without_reads_sets_the_same_pixels():
    """The accelerators' way (marks, no read back) and the CPU's (only the hits) agree exactly."""
    from manurestore.degradations.functional import _speck_by_marks, _speck_hits

    x = torch.rand(5, 3, 40, 50)
    where = ImageRandom([1, 2, 3, 4, 5]).below(2000, 1400)
    salt = ImageRandom([9, 8, 7, 6, 5]).bernoulli(0.5, 1400)
    used = torch.arange(1400).view(1, -1) < torch.tensor([0, 800, 30, 1386, 100]).view(-1, 1)
    by_hits, by_marks = x.clone(), x.clone()
    _speck_hits(by_hits, where, salt, used)
    _speck_by_marks(by_marks, where, salt, used)
    assert torch.equal(by_hits, by_marks) and torch.equal(by_hits[0], x[0]) and not torch.equal(by_hits, x)
