"""Hostile and broken input files: presets, model files, train configs and run-folder configs.

Whatever a file holds, loading it either gives a valid object or raises a ManurestoreError (one
line naming the file and the field); never another exception, NaN accepted, a changed input file
or a model built beyond the bounds. The fuzz tests throw values of every type at every field.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.degradations.base import Range
from manurestore.degradations.noise import GaussianNoise
from manurestore.degradations.presets import PresetError, read_preset
from manurestore.errors import ManurestoreError, UsageError
from manurestore.models.checkpoint import CheckpointError, load_model, read_metadata, save_weights
from manurestore.models.registry import MAX_PARAMETERS, build_model, build_model_from_config, count_parameters, list_models
from manurestore.models.vit import RestorerViT
from manurestore.plugins import registry
from manurestore.models.registry import MAX_CROP, MIN_CROP
from manurestore.training.config import TrainConfig, build_config, load_config_file
from manurestore.training.run_folder import CONFIG_FILE, read_run_config

runner = CliRunner()
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLI_FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----- writing files ----------------------------------------------------------------------------


def toml_value(value) -> str:
    """A value as TOML (inline tables and arrays, so any nesting fits on one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_value(str(key))} = {toml_value(item)}" for key, item in value.items()) + "}"


def write_toml(path: Path, table: dict) -> Path:
    path.write_text("".join(f"{toml_value(str(key))} = {toml_value(value)}\n" for key, value in table.items()), encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_page(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


_BASE: dict = {}


def base_model_file() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata strings) of a real vit-tiny model file at 32 pixels, made once."""
    if not _BASE:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tiny.safetensors"
            torch.manual_seed(0)
            save_weights(path, build_model("vit-tiny", img_size=32), {"model_name": "vit-tiny", "train_crop": 32}, dtype="fp16")
            with safe_open(str(path), framework="pt") as handle:
                _BASE["tensors"] = {name: handle.get_tensor(name) for name in handle.keys()}
                _BASE["metadata"] = handle.metadata()
    return _BASE["tensors"], _BASE["metadata"]


def write_model(path: Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor] | None = None) -> Path:
    save_file(base_model_file()[0] if tensors is None else tensors, str(path), metadata=metadata)
    return path


def model_with(path: Path, **changes) -> Path:
    """The tiny model file with metadata values replaced (JSON-encoded; a str is written as is)."""
    metadata = dict(base_model_file()[1])
    for key, value in changes.items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    return write_model(path, metadata)


def base_config() -> dict:
    return json.loads(base_model_file()[1]["model_config"])


@contextlib.contextmanager
def recorded_builds():
    """Record every real (not meta-device) model build, refusing one beyond the bounds before it allocates."""
    sizes: list[int] = []
    original = RestorerViT.__init__

    def recording(self, config=None, **kwargs):
        real = torch.empty(0).device.type != "meta"
        if real:
            assert config.embed_dim <= 4096 and config.depth <= 64 and config.img_size <= 4096, config
        original(self, config, **kwargs)
        if real:
            sizes.append(count_parameters(self))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RestorerViT, "__init__", recording)
        yield sizes
    assert all(size <= MAX_PARAMETERS for size in sizes)


def all_finite(value) -> bool:
    """No NaN or infinity anywhere in a nest of dicts, lists and tuples."""
    if isinstance(value, dict):
        return all(all_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(all_finite(item) for item in value)
    return not isinstance(value, float) or math.isfinite(value)


def assert_cli_contract(result) -> None:
    """Exit 0, or exit 1/2 with exactly one `manurestore: error:` line; never a traceback."""
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.exit_code
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("manurestore: error: "), result.stderr


# ----- presets: regressions ---------------------------------------------------------------------


@pytest.mark.parametrize("text, key", [
    ('op = "gaussian_noise"\nsigma = nan', "sigma"),
    ('op = "contrast"\nalpha = [nan, nan]', "alpha"),
    ('op = "gaussian_noise"\nsigma = [0.01, inf]', "sigma"),
    ('op = "contrast"\nbeta = -inf', "beta"),
    ('op = "dark_spots"\nink_share = nan', "ink_share"),
])
def test_a_preset_with_nan_or_infinity_is_refused(tmp_path, text, key):
    path = tmp_path / "my.toml"
    path.write_text(f"[[step]]\n{text}\n")
    with pytest.raises(PresetError, match=rf"my\.toml: step 1 .*'{key}.*finite"):
        read_preset(path)


def test_params_refuse_nan_and_infinity_for_every_op():
    for value in (float("nan"), float("inf"), [0.1, float("nan")], {"low": float("-inf"), "high": 0.1}):
        with pytest.raises(ValueError, match="finite"):
            GaussianNoise.Params(sigma=value)
    assert GaussianNoise.Params(sigma=[0.01, 0.02]).sigma == Range(0.01, 0.02)


def test_degrade_with_a_nan_preset_writes_nothing(tmp_path):
    page = write_page(tmp_path / "x.png")
    preset = tmp_path / "my.toml"
    preset.write_text('[[step]]\nop = "gaussian_noise"\nsigma = nan\n')
    result = runner.invoke(app, ["degrade", str(page), "--preset", str(preset), "-o", str(tmp_path / "out.png")])
    assert_cli_contract(result)
    assert result.exit_code == 1 and "my.toml" in result.stderr and "sigma" in result.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("text, expected", [
    ('[[step]]\nop = ["a"]\n', r"step 1: key 'op' must be the name of a degradation, got \['a'\]"),
    ("step = [1, 2]\n", r"step 1: not a table but 1"),
    ('step = ["contrast"]\n', r"step 1: not a table"),
    ('[[step]]\nop = "contrast"\n[[step]]\np = 0.5\n', r"step 2: missing key 'op'"),
    ('[[step]]\n[step.op]\nname = "contrast"\n', r"step 1: key 'op' must be the name"),
    ('[[step]]\nop = "contrast"\np = "often"\n', r"step 1 \(contrast\): key 'p' must be a probability"),
    ('[[step]]\nop = "gaussian_blur"\nkernel_sizes = "abc"\n', r"step 1 \(gaussian_blur\): key 'kernel_sizes'"),
    ('[[step]]\nop = "contrast"\nalpha = {low = 1}\n', r"step 1 \(contrast\): key 'alpha.high'"),
    ('[[step]]\nop = "missing_op"\nprovided_by = [1]\n', r"step 1 \(missing_op\): unknown op 'missing_op'; installed"),
    ('description = 3\n[[step]]\nop = "contrast"\n', r"key 'description' must be a text"),
    ('undamaged = 1.0\n[[step]]\nop = "contrast"\n', r"key 'undamaged' must be a share in \[0, 1\), got 1.0"),
    ('undamaged = "some"\n[[step]]\nop = "contrast"\n', r"key 'undamaged' must be a share"),
    ('base = "nosuch"\n', r"key 'base' must name a shipped preset \(aged, .*\), got 'nosuch'"),
    ('base = 3\n[[step]]\nop = "contrast"\n', r"key 'base' must name a shipped preset"),
])
def test_preset_structure_errors_name_the_file_and_the_step(tmp_path, text, expected):
    path = tmp_path / "my.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match=rf"^{re.escape(str(path))}: {expected}"):
        read_preset(path)


# ----- model files: regressions -----------------------------------------------------------------


@pytest.mark.parametrize("changes, expected", [
    ({"train_crop": "{abc"}, "metadata field train_crop is not JSON"),
    ({"train_crop": '"abc"'}, f"metadata field train_crop must be a whole number from {MIN_CROP} to {MAX_CROP}, got 'abc'"),
    ({"train_crop": 1}, "metadata field train_crop must be a whole number from 16 to 4096, got 1"),
    ({"train_crop": 100000}, "metadata field train_crop must be a whole number from 16 to 4096, got 100000"),
    ({"train_crop": True}, "metadata field train_crop must be a whole number"),
    ({"train_crop": "NaN"}, "metadata field train_crop is not JSON with finite numbers"),
    ({"metrics": '{"psnr": Infinity}'}, "metadata field metrics is not JSON with finite numbers"),
    ({"metrics": "[" * 100_000}, "metadata field metrics is not JSON"),
    ({"model_name": json.dumps("x" * 1000)}, "metadata field model_name must be a text of at most 100"),
    ({"model_config": '"huge"'}, "metadata field model_config is invalid"),
    ({"model_config": {"embed_dim": 3_000_000}}, "metadata field model_config.embed_dim must be a whole number from 1 to 4096"),
    ({"model_config": {"depth": 10**9}}, "metadata field model_config.depth must be a whole number from 1 to 64"),
    ({"model_config": {"num_heads": 0}}, "metadata field model_config.num_heads must be a whole number from 1 to 64"),
    ({"model_config": {"img_size": 10**6}}, "metadata field model_config.img_size must be a whole number from 2 to 4096"),
    ({"model_config": {"patch_size": 12}}, "metadata field model_config.patch_size must be one of 2, 4, 8, 16, 32, 64"),
    ({"model_config": {"in_chans": 1}}, "metadata field model_config.in_chans must be one of 3"),
    ({"model_config": {"conv_channels": [16, 24, 32, 10**7]}}, "metadata field model_config.conv_channels.3 must be a whole number"),
    ({"model_config": {"mystery": 1}}, "metadata field model_config.mystery is an unknown key"),
    ({"model_config": {"img_size": 4096, "patch_size": 2, "conv_channels": [16]}}, "img_size / patch_size must be from 1 to 256"),
    ({"model_config": {"embed_dim": 4095, "num_heads": 3, "depth": 64, "skip_depths": [64]}}, "parameters are more than the 1,000,000,000 allowed"),
])
def test_hostile_metadata_is_one_line_naming_the_file_and_the_field(tmp_path, changes, expected):
    if isinstance(changes.get("model_config"), dict):
        changes["model_config"] = {**base_config(), **changes["model_config"]}
    path = model_with(tmp_path / "model.safetensors", **changes)
    for loader in (read_metadata, load_model):
        with recorded_builds() as sizes, pytest.raises(CheckpointError) as caught:
            loader(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and expected in message and "\n" not in message
        assert sizes == []  # refused before any model was built


def test_broken_weights_are_refused(tmp_path):
    tensors, metadata = base_model_file()
    name = "blocks.0.attn.proj.weight"
    cases = {
        "nan": ({**tensors, name: torch.full_like(tensors[name], float("nan"))}, "holds NaN or infinite values"),
        "inf": ({**tensors, name: torch.full_like(tensors[name], float("inf"))}, "holds NaN or infinite values"),
        "shape": ({**tensors, name: torch.zeros(7)}, "has shape [7], the model needs [192, 192]"),
        "dtype": ({**tensors, name: tensors[name].to(torch.int32)}, "is I32, not a float type"),
        "extra": ({**tensors, "zzz": torch.zeros(1)}, "has an unexpected weight zzz"),
        "missing": ({k: v for k, v in tensors.items() if k != name}, f"lacks weight {name}"),
    }
    for case, (weights, expected) in cases.items():
        path = write_model(tmp_path / f"{case}.safetensors", metadata, weights)
        with pytest.raises(CheckpointError, match=re.escape(expected)):
            load_model(path)


def test_a_good_model_file_still_loads(tmp_path):
    path = write_model(tmp_path / "good.safetensors", base_model_file()[1])
    model, metadata = load_model(path)
    assert model.config.img_size == 32 and metadata["train_crop"] == 32 and metadata["model_name"] == "vit-tiny"


def test_restore_with_a_hostile_model_file_is_one_line(tmp_path):
    page = write_page(tmp_path / "page.png")
    for name, changes in {"crop": {"train_crop": '"abc"'}, "json": {"train_crop": "{"},
                          "dim": {"model_config": {**base_config(), "embed_dim": 10**6}}}.items():
        hostile = model_with(tmp_path / f"{name}.safetensors", **changes)
        before = digest(hostile)
        result = runner.invoke(app, ["restore", str(page), "-m", str(hostile), "-o", str(tmp_path / f"out-{name}")])
        assert_cli_contract(result)
        assert result.exit_code == 1 and f"{name}.safetensors: metadata field" in result.stderr
        assert digest(hostile) == before


def test_build_model_from_config_keeps_the_bounds():
    with pytest.raises(ManurestoreError, match="model_config|embed_dim"):
        build_model_from_config({**base_config(), "embed_dim": 10**6})


# ----- train settings: regressions --------------------------------------------------------------


def test_an_unknown_model_is_a_usage_error_with_or_without_init_weights(tmp_path):
    weights = write_model(tmp_path / "x.safetensors", base_model_file()[1])
    for extra in ({}, {"init_weights": weights}):
        with pytest.raises(UsageError, match="unknown model 'vit-gigantic'; choose one of: vit-tiny, vit-small, vit-base"):
            build_config({}, {"model": "vit-gigantic", **extra})
    result = runner.invoke(app, ["train", str(tmp_path), "--model", "vit-gigantic", "--init-weights", str(weights), "--dry-run"])
    assert_cli_contract(result)
    assert result.exit_code == 2 and "vit-tiny" in result.stderr


@pytest.mark.parametrize("text, key", [("lr = nan", "lr"), ("mix = [inf]\ndata = ['a']", "mix.0"), ("warmup = -inf", "warmup"),
                                       ("page_lr_scale = inf", "page_lr_scale"), ('run_dir = "a\\u0000b"', "run_dir"),
                                       ("crop = 100000", "crop"), ("batch_size = 9223372036854775807", "batch_size")])
def test_a_train_config_with_nan_or_absurd_values_is_refused(tmp_path, text, key):
    path = tmp_path / "x.toml"
    path.write_text(text + "\n")
    with pytest.raises(UsageError, match=rf"x\.toml: {key}: "):
        build_config(load_config_file(path), {}, source=str(path))


def test_an_unreadable_train_config_is_a_usage_error(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xff\xfe lr = 1")
    with pytest.raises(UsageError, match="x.toml: cannot read"):
        load_config_file(path)
    with pytest.raises(UsageError, match="cannot read"):
        load_config_file(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("{not json", "not a readable run config"),
    ("", "not a readable run config"),
    ("[1, 2]", "not a run config"),
    ('{"lr": NaN}', "NaN is not a finite number"),
    ('{"lr": 1e999}', "1e999 is not a finite number"),
    ('{"model": 5}', "model: Input should be a valid string"),
    ('{"model": "vit-gigantic"}', "unknown model"),
    ('{"mystery": 1}', "mystery: Extra inputs are not permitted"),
])
def test_a_damaged_run_config_is_one_line_naming_it(tmp_path, text, expected):
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ManurestoreError, match=expected) as caught:
        read_run_config(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / CONFIG_FILE}: ")


# ----- fuzzing ----------------------------------------------------------------------------------

TOML_INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 16, 32, 4096, 100_000, 2**63 - 1, -(2**63)]))
JSON_INTS = st.one_of(TOML_INTS, st.sampled_from([10**30, -(10**30), 2**64]))
FLOATS = st.one_of(st.floats(), st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.5, 1e308, -0.0]))
TOML_SCALARS = st.one_of(st.booleans(), TOML_INTS, FLOATS, st.text(max_size=12))
JSON_SCALARS = st.one_of(st.none(), st.booleans(), JSON_INTS, FLOATS, st.text(max_size=12))


def nested(scalars):
    """Scalars, lists and tables of them, a few levels deep."""
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


TOML_VALUES = nested(TOML_SCALARS)
JSON_VALUES = nested(JSON_SCALARS)
PLAUSIBLE = st.one_of(st.floats(0, 1), st.lists(st.floats(0, 1), min_size=2, max_size=2).map(sorted), st.integers(0, 5),
                      st.lists(st.sampled_from([3, 5, 7]), min_size=1, max_size=3))


RARELY = st.sampled_from([False] * 7 + [True])  # hypothesis favours the first choice


def sometimes_hostile(plausible):
    """Mostly a value of the right kind (so some files are accepted), else anything at all."""
    return st.one_of(plausible, plausible, plausible, TOML_VALUES)


@st.composite
def preset_steps(draw):
    """A [[step]] table: mostly a real op with some of its own keys, every value of any type."""
    ops = registry()
    step = {}
    if not draw(RARELY):
        step["op"] = draw(sometimes_hostile(st.sampled_from(sorted(ops))))
    if isinstance(step.get("op"), str) and step["op"] in ops:
        for key in draw(st.lists(st.sampled_from(sorted(ops[step["op"]].cls.Params.model_fields)), max_size=3, unique=True)):
            step[key] = draw(sometimes_hostile(PLAUSIBLE))
    if draw(st.booleans()):
        step["p"] = draw(sometimes_hostile(st.floats(0, 1)))
    if draw(RARELY):
        step[draw(st.text(max_size=6))] = draw(TOML_VALUES)
    return step


@st.composite
def presets(draw):
    """A preset table: a few steps (or anything in their place), perhaps a description, rarely a stray key."""
    table = {"step": draw(sometimes_hostile(st.lists(preset_steps(), min_size=1, max_size=3)))}
    if draw(st.booleans()):
        table["description"] = draw(sometimes_hostile(st.text(max_size=12)))
    if draw(RARELY):
        table[draw(st.text(max_size=6))] = draw(TOML_VALUES)
    return table


PRESETS = presets()


@FUZZ
@given(table=PRESETS)
def test_fuzz_presets(table):
    with tempfile.TemporaryDirectory() as folder:
        path = write_toml(Path(folder) / "fuzz.toml", table)
        before = digest(path)
        try:
            preset = read_preset(path)
        except PresetError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
        else:
            for step in preset.steps:
                assert 0 <= step.p <= 1 and all_finite(step.op.params.model_dump())
        assert digest(path) == before


@CLI_FUZZ
@given(table=PRESETS)
def test_fuzz_presets_through_degrade(table):
    with tempfile.TemporaryDirectory() as folder:
        page = write_page(Path(folder) / "x.png")
        path = write_toml(Path(folder) / "fuzz.toml", table)
        before = digest(path), digest(page)
        assert_cli_contract(runner.invoke(app, ["degrade", str(page), "--preset", str(path), "-o", f"{folder}/out.png"]))
        assert (digest(path), digest(page)) == before


CONFIG_FIELDS = {"name", "embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "img_size", "in_chans",
                 "conv_channels", "decoder_dim", "skip_depths", "qkv_bias", "grad_checkpointing", "page_context"}


@st.composite
def model_metadata(draw):
    """The tiny model's metadata with a few keys deleted, replaced by any JSON value or by non-JSON text."""
    metadata = dict(base_model_file()[1])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["train_crop", "model_name", "model_config", "metrics", "format", "step", "config"]))
        action = draw(st.sampled_from(["delete", "json", "text", "config"]))
        if action == "delete":
            metadata.pop(key, None)
        elif action == "json":
            metadata[key] = json.dumps(draw(st.one_of(JSON_VALUES, st.integers(-5, 5000))))
        elif action == "text":
            metadata[key] = draw(st.text(max_size=20))
        else:
            config = base_config()
            field = draw(st.sampled_from(sorted(CONFIG_FIELDS)))
            config[field] = draw(st.one_of(JSON_VALUES, st.integers(1, 10**7), st.sampled_from([2, 4, 64, 4096])))
            metadata["model_config"] = json.dumps(config)
    return metadata


def check_model_file(path: Path) -> None:
    """Load through both loaders: a ManurestoreError or a finite model within the bounds."""
    before = digest(path)
    with recorded_builds():
        try:
            metadata = read_metadata(path)
            model, loaded = load_model(path)
        except ManurestoreError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
        else:
            assert MIN_CROP <= metadata["train_crop"] == loaded["train_crop"] <= MAX_CROP
            assert all(torch.isfinite(p).all() for p in model.parameters())
    assert digest(path) == before


@FUZZ
@given(metadata=model_metadata())
def test_fuzz_model_metadata(metadata):
    with tempfile.TemporaryDirectory() as folder:
        check_model_file(write_model(Path(folder) / "fuzz.safetensors", metadata))


@CLI_FUZZ
@given(metadata=model_metadata())
def test_fuzz_model_metadata_through_restore(metadata):
    with tempfile.TemporaryDirectory() as folder:
        page = write_page(Path(folder) / "page.png")
        path = write_model(Path(folder) / "fuzz.safetensors", metadata)
        before = digest(path), digest(page)
        with recorded_builds():
            assert_cli_contract(runner.invoke(app, ["restore", str(page), "-m", str(path), "-o", f"{folder}/out"]))
        assert (digest(path), digest(page)) == before


def plausible_setting(name: str):
    """A value of the right kind for a TrainConfig field, so that some configs are accepted."""
    field = TrainConfig.model_fields[name]
    kind = field.annotation
    if name == "model":
        return st.sampled_from(list_models())
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.integers(-2, 300)
    if kind is float:
        return st.floats(-1, 3)
    return st.text(max_size=8)


@st.composite
def settings_tables(draw, values):
    """Some TrainConfig keys (now and then an unknown one), each a plausible value or anything at all."""
    names = draw(st.lists(st.sampled_from(sorted(TrainConfig.model_fields)), max_size=4, unique=True))
    table = {name: draw(st.one_of(plausible_setting(name), plausible_setting(name), values)) for name in names}
    if draw(RARELY):
        table[draw(st.text(max_size=6))] = draw(values)
    return table


def assert_valid_settings(cfg: TrainConfig) -> None:
    assert all_finite(cfg.model_dump())
    assert cfg.model in list_models() and MIN_CROP <= cfg.crop <= MAX_CROP


@FUZZ
@given(table=settings_tables(TOML_VALUES))
def test_fuzz_train_config_files(table):
    with tempfile.TemporaryDirectory() as folder:
        path = write_toml(Path(folder) / "train.toml", table)
        before = digest(path)
        try:
            cfg = build_config(load_config_file(path), {}, source=str(path))
        except UsageError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
        else:
            assert_valid_settings(cfg)
        assert digest(path) == before


RUN_CONFIGS = st.one_of(settings_tables(JSON_VALUES).map(json.dumps), JSON_VALUES.map(json.dumps), st.text(max_size=30))


@FUZZ
@given(text=RUN_CONFIGS)
def test_fuzz_run_folder_config(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CONFIG_FILE
        path.write_bytes(text.encode("utf-8", "surrogatepass"))  # bytes: text mode would turn "\r" into "\n"
        before = digest(path)
        try:
            saved = read_run_config(Path(folder))
        except ManurestoreError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
        else:
            assert_valid_settings(TrainConfig(**saved))
        assert digest(path) == before


@CLI_FUZZ
@given(table=settings_tables(TOML_VALUES), saved=RUN_CONFIGS)
def test_fuzz_train_settings_through_the_cli(table, saved):
    with tempfile.TemporaryDirectory() as folder:
        config = write_toml(Path(folder) / "train.toml", table)
        run_dir = Path(folder) / "run"
        run_dir.mkdir()
        (run_dir / CONFIG_FILE).write_text(saved, encoding="utf-8")
        (run_dir / "state.pt").write_bytes(b"")
        before = digest(config), digest(run_dir / CONFIG_FILE)
        assert_cli_contract(runner.invoke(app, ["train", folder, "--config", str(config), "--dry-run"]))
        assert_cli_contract(runner.invoke(app, ["train", folder, "--resume", "--run-dir", str(run_dir), "--dry-run"]))
        assert (digest(config), digest(run_dir / CONFIG_FILE)) == before
