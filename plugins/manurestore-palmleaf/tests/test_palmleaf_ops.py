"""The palm-leaf ops: the degradation contract (manurestore's kit) and what each op is for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.testing import check_degradation
from manurestore_palmleaf import Cracks, EdgeFading, Holes, TideLines, plugin

PRESET = Path(__file__).resolve().parents[1] / "presets" / "palm-leaf.toml"


def degrade(op, x, seed=1):
    return Pipeline([Step(op)])(x, [seed + i for i in range(x.shape[0])])


def inked_leaf(height=64, width=256, channels=3):
    """Leaf-coloured page with vertical ink strokes 3 pixels wide every 8 pixels."""
    leaf = torch.tensor([0.84, 0.72, 0.50][:channels] if channels == 3 else [0.75]).view(1, channels, 1, 1)
    x = leaf.expand(1, channels, height, width).clone()
    for left in range(4, width - 3, 8):
        x[..., 6 : height - 6, left : left + 3] = 0.1
    return x


@pytest.mark.parametrize("op", plugin.OPS, ids=[op.name for op in plugin.OPS])
def test_keeps_the_degradation_contract(op):
    check_degradation(op)


def test_the_plugin_registers_its_four_ops():
    registered = []
    plugin.manurestore_register_degradations(register=registered.append)
    assert [op.name for op in registered] == ["holes", "cracks", "tide_lines", "edge_fading"]


def test_holes_show_the_dark_table_beneath():
    x = torch.full((1, 3, 128, 128), 0.85)
    out = degrade(Holes(count=(4, 4), radius=(0.08, 0.08), chips=(0, 0), background=(0.1, 0.1)), x, seed=3)
    through = (out < 0.15).all(dim=1)  # all channels dark: the table
    assert 0.01 < through.float().mean() < 0.4
    assert abs(out[:, 0][through].median() - 0.1) < 0.01, "a hole shows the table's colour"
    browned = (out < 0.84) & ~through.unsqueeze(1)
    assert browned.any(), "the eaten edge around a hole is browned"


def test_chips_bite_into_the_edges():
    x = torch.full((2, 3, 96, 160), 0.85)
    out = degrade(Holes(count=(0, 0), chips=(3, 3), chip_radius=(0.1, 0.1)), x, seed=5)
    dark = (out < 0.5).all(dim=1)  # (B, H, W)
    assert dark.any()
    border = torch.cat([dark[:, 0], dark[:, -1], dark[:, :, 0], dark[:, :, -1]], dim=1)
    assert border.any(dim=1).all(), "every image has a chip touching its edge"
    ys, xs = torch.meshgrid(torch.arange(96), torch.arange(160), indexing="ij")
    to_border = torch.minimum(torch.minimum(ys, 95 - ys), torch.minimum(xs, 159 - xs))
    # A chip's centre lies within 0.6 radii outside or 0.3 inside the edge; its outline bulges a little.
    assert to_border[dark.any(dim=0)].max() <= 0.1 * 96 * 1.3 * 1.6


@pytest.mark.parametrize(("height", "width"), [(64, 256), (256, 64)])
def test_cracks_run_along_the_longer_side(height, width):
    x = torch.full((4, 3, height, width), 0.8)
    out = degrade(Cracks(count=(3, 3), split=(0.0, 0.0)), x)
    damage = (x - out).abs().sum(dim=1)
    assert damage.sum() > 0
    change_down = (damage[:, 1:] - damage[:, :-1]).abs().sum()
    change_across = (damage[:, :, 1:] - damage[:, :, :-1]).abs().sum()
    along_width = width > height
    # Along a crack the damage barely changes; across it, it comes and goes within pixels.
    if along_width:
        assert change_across * 4 < change_down
    else:
        assert change_down * 4 < change_across


def test_split_cracks_cut_strokes_with_a_gap():
    x = inked_leaf()
    ink = x[:, 0] < 0.2
    out = Pipeline([Step(Cracks(count=(6, 6), split=(1.0, 1.0), width=(1.5, 1.5)))])(x.expand(8, -1, -1, -1), list(range(8)))
    lifted = (out[:, 0] > 0.5) & ink  # ink replaced by the bare leaf: a bright gap
    assert lifted.any(), "an open crack splits the strokes it crosses"


def test_tide_lines_brown_a_rim_and_bleach_the_inside():
    x = torch.full((4, 3, 96, 96), 0.7)
    out = degrade(TideLines(count=(1, 1), radius=(0.35, 0.35), intensity=(0.7, 0.7)), x)
    darker, lighter = out[:, 0] < 0.65, out[:, 0] > 0.72
    assert darker.any() and lighter.any()
    red, blue = out[:, 0], out[:, 2]
    assert ((0.7 - blue)[darker] > (0.7 - red)[darker]).all(), "the rim is brown: blue drops most"


def test_edge_fading_fades_ink_at_the_edges_and_leaves_the_centre():
    x = inked_leaf(96, 256, channels=1)
    out = degrade(EdgeFading(width=(0.2, 0.2), strength=(0.9, 0.9)), x)
    reach = int(0.2 * 96) + 1
    centre = (slice(None), slice(None), slice(reach, 96 - reach), slice(reach, 256 - reach))
    assert torch.equal(out[centre], x[centre]), "beyond `width` from every border nothing changes"
    edge_ink = x[..., 6:96 - 6, 4:7]  # the first stroke, at the left edge
    lifted = out[..., 6:96 - 6, 4:7] - edge_ink
    assert lifted.mean() > 0.15 and lifted.max() > 0.4, "ink at the edge fades towards the leaf"
    paper = x > 0.5
    assert (out[paper] - x[paper]).abs().max() < 0.02, "the leaf itself keeps its colour"


def test_shipped_preset_degrades_a_leaf(monkeypatch):
    from manurestore.plugins import register_plugin, reset_plugins

    monkeypatch.setenv("MANURESTORE_PLUGINS", "")  # built-ins only, then this plugin by hand
    reset_plugins()
    try:
        register_plugin(plugin, name="manurestore-palmleaf")
        pipeline = Pipeline.from_preset(PRESET)
        assert {"holes", "cracks", "tide_lines", "edge_fading"} <= {step.op.name for step in pipeline.steps}
        x = inked_leaf().expand(3, -1, -1, -1)
        out = pipeline(x, [1, 2, 3])
        assert out.shape == x.shape and not torch.equal(out, x)
    finally:
        reset_plugins()
