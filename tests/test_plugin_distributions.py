"""The plugin distributions shipped in plugins/, as pip installs them (CI installs every one).

Nothing here installs anything: when the distributions are not installed the tests skip, saying
so. They load plugins the way a user's machine does, through entry points, with
`MANURESTORE_PLUGINS` unset (all), empty (built-ins only) or naming some.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
import torch

from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.presets import PresetError
from manurestore.plugins import describe_ops, load_failures, registry, reset_plugins

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "manurestore-palmleaf": {"holes", "cracks", "tide_lines", "edge_fading"},
    "manurestore-bleedthrough": {"bleed_through", "ink_bleed"},
}
PRESETS = {
    "manurestore-palmleaf": ROOT / "plugins" / "manurestore-palmleaf" / "presets" / "palm-leaf.toml",
    "manurestore-bleedthrough": ROOT / "plugins" / "manurestore-bleedthrough" / "presets" / "ink-damage.toml",
}


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def select(monkeypatch, value: str | None) -> None:
    """Set MANURESTORE_PLUGINS (None = unset) and reload the plugins."""
    if value is None:
        monkeypatch.delenv("MANURESTORE_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("MANURESTORE_PLUGINS", value)
    reset_plugins()


@pytest.fixture
def all_plugins(monkeypatch):
    """Every installed plugin loaded, as with MANURESTORE_PLUGINS unset; skips if ours are missing."""
    missing = [name for name in DISTRIBUTIONS if installed_version(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed; `pip install plugins/<name>` (as .ci/run does) to test them")
    select(monkeypatch, None)


def page(batch: int = 2) -> torch.Tensor:
    """A light page with dark strokes: something for every op to act on."""
    x = torch.full((batch, 3, 48, 160), 0.85)
    for left in range(6, 150, 10):
        x[..., 8:40, left : left + 3] = 0.12
    return x


def test_plugin_ops_are_listed_with_their_distribution_and_version(all_plugins):
    rows = {row["name"]: row for row in describe_ops()}
    for distribution, ops in DISTRIBUTIONS.items():
        for op in ops:
            assert op in rows, f"{op} ({distribution}) is not registered"
            assert canonical(rows[op]["source"]) == distribution
            assert rows[op]["version"] == installed_version(distribution)
            assert rows[op]["description"] and rows[op]["parameters"]
    assert not [failure for failure in load_failures() if "manurestore-" in failure or "manurestore_" in failure]


def test_cli_lists_plugin_ops_as_json(all_plugins):
    from typer.testing import CliRunner

    from manurestore.cli.app import app

    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.stdout)["ops"]}
    assert canonical(listed["holes"]["source"]) == "manurestore-palmleaf"
    assert canonical(listed["bleed_through"]["source"]) == "manurestore-bleedthrough"


@pytest.mark.parametrize("distribution", sorted(PRESETS))
def test_a_plugin_preset_degrades_an_image(all_plugins, distribution):
    pipeline = Pipeline.from_preset(PRESETS[distribution])
    assert DISTRIBUTIONS[distribution] & {step.op.name for step in pipeline.steps}
    x = page(3)
    out = pipeline(x, [1, 2, 3])
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)


def test_a_preset_mixing_both_plugins_and_builtins(all_plugins, tmp_path):
    preset = tmp_path / "mixed.toml"
    preset.write_text(
        '[[step]]\nop = "ink_bleed"\nprovided_by = "manurestore-bleedthrough"\n'
        '[[step]]\nop = "cracks"\nprovided_by = "manurestore-palmleaf"\ncount = [2, 2]\n'
        '[[step]]\nop = "yellowing"\n'
        '[[step]]\nop = "holes"\nprovided_by = "manurestore-palmleaf"\np = 0.5\n'
    )
    x = page()
    out, record = Pipeline.from_preset(preset)(x, [5, 6], record=True)
    assert not torch.equal(out, x)
    assert all({"ink_bleed", "cracks", "yellowing"} <= {entry["op"] for entry in fired} for fired in record)


def test_an_excluded_plugins_op_names_the_op_and_its_distribution(all_plugins, monkeypatch):
    select(monkeypatch, "")  # built-ins only
    assert not (DISTRIBUTIONS["manurestore-palmleaf"] & set(registry()))
    with pytest.raises(PresetError, match=r"unknown op 'edge_fading' \(provided by manurestore-palmleaf; pip install it\)"):
        Pipeline.from_preset(PRESETS["manurestore-palmleaf"])
    with pytest.raises(PresetError, match=r"unknown op 'ink_bleed' \(provided by manurestore-bleedthrough"):
        Pipeline.from_preset(PRESETS["manurestore-bleedthrough"])


@pytest.mark.parametrize("chosen", ["manurestore-bleedthrough", "bleedthrough"], ids=["distribution", "entry-point"])
def test_choosing_one_plugin_by_name_leaves_the_other_out(all_plugins, monkeypatch, chosen):
    select(monkeypatch, chosen)
    ops = set(registry())
    assert DISTRIBUTIONS["manurestore-bleedthrough"] <= ops
    assert not (DISTRIBUTIONS["manurestore-palmleaf"] & ops)
    Pipeline.from_preset(PRESETS["manurestore-bleedthrough"])
    with pytest.raises(PresetError, match=r"provided by manurestore-palmleaf"):
        Pipeline.from_preset(PRESETS["manurestore-palmleaf"])


@pytest.mark.parametrize("plugins", [None, ""], ids=["all-plugins", "built-ins-only"])
def test_the_shipped_aged_preset_stays_valid(all_plugins, monkeypatch, plugins):
    select(monkeypatch, plugins)
    pipeline = Pipeline.from_preset("aged")
    assert [step.op.name for step in pipeline.steps] == [
        "gaussian_noise", "gaussian_blur", "contrast", "salt_pepper", "yellowing", "stains",
    ]
    x = page()
    out = pipeline(x, [1, 2])
    assert out.shape == x.shape and torch.equal(out, pipeline(x, [1, 2]))
