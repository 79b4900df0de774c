"""The plugin surface: run-time registration, presets using plugin ops, clashes, broken plugins."""

from __future__ import annotations

import json
import sys
import textwrap
import types
from typing import Annotated

import pytest
import torch

from manurestore import hookspecs
from manurestore.degradations.base import Bounds, Degradation, ParamsModel, Range, RangeValue, per_image
from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.presets import PresetError
from manurestore.hookspecs import hookimpl
from manurestore.plugins import PluginError, PluginWarning, describe_ops, get_op, register_plugin, registry, reset_plugins


class Darken(Degradation):
    name = "darken"
    description = "multiply by (1 - amount)"

    class Params(ParamsModel):
        amount: Annotated[RangeValue, Bounds(0.0, 1.0)] = Range(0.2, 0.4)

    def sample(self, n, gen, device):
        return {"amount": self.params.amount.sample(gen)}

    def apply(self, x, draws, gen):
        return x * (1 - per_image(draws["amount"], x))


class DarkenPlugin:
    @hookimpl
    def manurestore_register_degradations(self, register):
        register(Darken)


def test_every_hookspec_is_documented_and_tested():
    """Each hook has a docstring, a section of the plugin guide and a test that implements it."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "plugins.md").read_text(encoding="utf-8")
    tests = "".join(path.read_text(encoding="utf-8") for path in (root / "tests").glob("test_*.py"))
    specs = [name for name in dir(hookspecs) if name.startswith("manurestore_")]
    assert specs, "no hook specifications found"
    for name in specs:
        assert getattr(hookspecs, name).__doc__, f"{name} needs a docstring"
        assert f"`{name}(" in guide, f"{name} is not documented in docs/plugins.md"
        assert f"def {name}(self, register)" in tests, f"no test implements {name}"


def test_builtins_are_registered_as_a_plugin():
    ops = registry()
    assert {"gaussian_noise", "gaussian_blur", "contrast", "salt_pepper", "yellowing", "stains"} <= set(ops)
    assert all(info.source == "built-in" for info in ops.values())


def test_runtime_plugin_op_is_usable_through_a_preset_file(tmp_path):
    register_plugin(DarkenPlugin(), name="darken-plugin")
    assert get_op("darken") is Darken
    preset = tmp_path / "dark.toml"
    preset.write_text('[[step]]\nop = "darken"\np = 1.0\namount = [0.5, 0.5]\n')
    out = Pipeline.from_preset(preset)(torch.ones(2, 3, 4, 4), [1, 2])
    torch.testing.assert_close(out, torch.full_like(out, 0.5))
    row = next(r for r in describe_ops() if r["name"] == "darken")
    assert row["source"] == "darken-plugin"
    assert row["parameters"][0] == {"name": "amount", "default": [0.2, 0.4], "bounds": [0.0, 1.0], "integer": False, "description": ""}


def test_two_ops_with_one_name_is_an_error_naming_both_sources():
    class Clash(Darken):
        name = "contrast"

    class ClashPlugin:
        @hookimpl
        def manurestore_register_degradations(self, register):
            register(Clash)

    register_plugin(ClashPlugin(), name="clash-plugin")
    with pytest.raises(PluginError, match=r"'contrast'.*built-in.*clash-plugin"):
        registry()


def test_a_plugin_that_raises_while_registering_is_reported_and_skipped():
    class Broken:
        @hookimpl
        def manurestore_register_degradations(self, register):
            register(Darken)  # one op in, then the plugin fails: the op must not stay behind
            raise RuntimeError("boom")

    register_plugin(Broken(), name="broken-plugin")
    with pytest.warns(PluginWarning, match="broken-plugin failed while registering its ops: RuntimeError: boom"):
        ops = registry()
    assert "gaussian_noise" in ops and "darken" not in ops


def test_the_cli_shows_a_skipped_plugin_as_one_warning_line():
    from typer.testing import CliRunner

    from manurestore.cli.app import app

    class Broken:
        @hookimpl
        def manurestore_register_degradations(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), name="broken-plugin")
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    warning_lines = [line for line in result.stderr.splitlines() if "broken-plugin" in line]
    assert warning_lines == ["manurestore: warning: plugin broken-plugin failed while registering its ops: RuntimeError: boom; it is skipped"]
    assert "gaussian_noise" in {row["name"] for row in json.loads(result.stdout)["ops"]}


def test_broken_entry_point_is_one_warning_and_the_rest_work(tmp_path, monkeypatch):
    # A real distribution on sys.path whose entry point fails to import.
    site = tmp_path / "site"
    dist_info = site / "brokenplug-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[manurestore]\nbroken = brokenplug_missing_module\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MANURESTORE_PLUGINS", raising=False)
    reset_plugins()
    with pytest.warns(PluginWarning) as caught:
        assert "stains" in registry()
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1 and "brokenplug" in messages[0] and "failed to load" in messages[0]


def test_env_var_empty_loads_only_builtins(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist_info = site / "okplug-2.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: okplug\nVersion: 2.0\n")
    (dist_info / "entry_points.txt").write_text("[manurestore]\nokplug = okplug_ops\n")
    (site / "okplug_ops.py").write_text(textwrap.dedent("""
        from manurestore.hookspecs import hookimpl
        from tests.test_plugins import Darken

        @hookimpl
        def manurestore_register_degradations(register):
            register(Darken)
    """))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("MANURESTORE_PLUGINS", "")
    reset_plugins()
    assert "darken" not in registry()
    monkeypatch.setenv("MANURESTORE_PLUGINS", "okplug")
    reset_plugins()
    info = registry()["darken"]
    assert (info.source, info.version) == ("okplug", "2.0")
    monkeypatch.delenv("MANURESTORE_PLUGINS")
    reset_plugins()
    assert "darken" in registry()
    sys.modules.pop("okplug_ops", None)


def test_registering_a_non_degradation_is_an_error():
    class Bad:
        @hookimpl
        def manurestore_register_degradations(self, register):
            register(types.SimpleNamespace)

    register_plugin(Bad(), name="bad-plugin")
    with pytest.raises(PluginError, match="not a Degradation"):
        registry()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[step]]\nop = "contrst"\n', r"step 1 \(contrst\): unknown op 'contrst'"),
        ('[[step]]\nop = "gaussian_noise"\nsgma = [0.1, 0.2]\n', r"step 1 \(gaussian_noise\): unknown key 'sgma'; gaussian_noise takes: sigma"),
        ('[[step]]\nop = "gaussian_noise"\n[[step]]\nop = "contrast"\nalpha = [0.5, 9]\n', r"step 2 \(contrast\): key 'alpha'.*outside the allowed"),
        ('[[step]]\nop = "contrast"\np = 1.5\n', r"key 'p' must be a probability"),
        ('[[step]]\np = 0.5\n', r"missing key 'op'"),
        ('description = "x"\n', r"no \[\[step\]\] tables"),
        ('[[step]\nop=', r"not valid TOML"),
        ('[[step]]\nop = "holes"\nprovided_by = "manurestore-palmleaf"\n', r"unknown op 'holes' \(provided by manurestore-palmleaf"),
        ('[[step]]\nop = "gaussian_blur"\nkernel_sizes = [4]\n', r"kernel_sizes.*not odd"),
    ],
)
def test_preset_errors_name_file_step_and_key(tmp_path, body, message):
    path = tmp_path / "mine.toml"
    path.write_text(body)
    with pytest.raises(PresetError, match=message) as caught:
        Pipeline.from_preset(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_shipped_presets_are_valid_and_serialisable():
    for name in ("light", "aged", "heavy"):
        pipeline = Pipeline.from_preset(name)
        assert pipeline.steps and json.dumps(pipeline.describe())
