"""The ink ops: the degradation contract (manurestore's kit) and what each op is for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.testing import check_degradation
from manurestore_bleedthrough import BleedThrough, InkBleed, plugin

PRESET = Path(__file__).resolve().parents[1] / "presets" / "ink-damage.toml"


def degrade(op, x, seed=1):
    return Pipeline([Step(op)])(x, [seed + i for i in range(x.shape[0])])


def page_with_stroke(channels=3):
    """A 64×128 page of paper with one dark horizontal stroke on its left half."""
    x = torch.full((1, channels, 64, 128), 0.9)
    x[..., 20:24, 8:40] = 0.1
    return x


@pytest.mark.parametrize("op", plugin.OPS, ids=[op.name for op in plugin.OPS])
def test_keeps_the_degradation_contract(op):
    check_degradation(op)


def test_the_plugin_registers_its_two_ops():
    registered = []
    plugin.manurestore_register_degradations(register=registered.append)
    assert [op.name for op in registered] == ["bleed_through", "ink_bleed"]


def test_bleed_through_is_the_mirrored_ink_and_nothing_else():
    x = page_with_stroke()
    out = degrade(BleedThrough(strength=(0.6, 0.6), blur=(1.0, 1.0), shift=(0.0, 0.0)), x)
    mirrored = out[..., 18:26, 90:118]  # columns 8:40 mirrored are 88:120
    assert (x[..., 18:26, 90:118] - mirrored).mean() > 0.1, "the verso's ink shows where it mirrors"
    red, blue = mirrored[0, 0], mirrored[0, 2]
    assert ((0.9 - blue) > (0.9 - red)).all(), "aged ink: brownish, blue drops most"
    assert torch.equal(out[..., 40:, :], x[..., 40:, :]), "no verso ink, no change"
    assert torch.equal(out[..., 20:24, 50:78], x[..., 20:24, 50:78]), "between the stroke and its mirror, no change"


def test_bleed_through_shift_moves_the_verso_between_lines():
    x = page_with_stroke(channels=1)
    shifted = degrade(BleedThrough(strength=(0.6, 0.6), blur=(0.5, 0.5), shift=(0.25, 0.25)), x)
    darkened = (x - shifted)[0, 0, :, 88:120].sum(dim=1)  # darkening per row, right half
    row = int(darkened.argmax())
    assert abs(row - 22) > 10, "a quarter of the height away from the recto's line"


def test_ink_bleed_spreads_strokes_into_the_paper():
    x = page_with_stroke()
    small = degrade(InkBleed(spread=(1, 1), strength=(0.8, 0.8)), x, seed=4)
    large = degrade(InkBleed(spread=(4, 4), strength=(0.8, 0.8)), x, seed=4)
    paper = x > 0.5
    assert (x - small)[paper].sum() > 0, "ink reaches into the paper around the stroke"
    assert (x - large)[paper].sum() > (x - small)[paper].sum(), "further spread, more bled ink"
    assert torch.equal(large[..., 40:, :], x[..., 40:, :]), "far from any stroke, no change"
    assert torch.equal(large[..., 20:24, 8:40], x[..., 20:24, 8:40]) or (large[..., 20:24, 8:40] <= x[..., 20:24, 8:40]).all()
    halo = (x - large)[..., 14:30, 4:44][paper[..., 14:30, 4:44]]
    assert halo.unique().numel() > 10, "the feathering is irregular, not a flat band"


def test_shipped_preset_degrades_a_page(monkeypatch):
    from manurestore.plugins import register_plugin, reset_plugins

    monkeypatch.setenv("MANURESTORE_PLUGINS", "")  # built-ins only, then this plugin by hand
    reset_plugins()
    try:
        register_plugin(plugin, name="manurestore-bleedthrough")
        pipeline = Pipeline.from_preset(PRESET)
        assert {"bleed_through", "ink_bleed"} <= {step.op.name for step in pipeline.steps}
        x = page_with_stroke().expand(3, -1, -1, -1)
        out = pipeline(x, [1, 2, 3])
        assert out.shape == x.shape and not torch.equal(out, x)
    finally:
        reset_plugins()
