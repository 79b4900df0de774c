"""`manurestore degrade`, `plugins` and `--version` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from manurestore.cli.app import app

runner = CliRunner()


def save(path: Path, size=(40, 30), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[:, :, 0] if mode == "L" else array, mode).save(path)
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_help():
    result = run("--version")
    assert result.exit_code == 0
    assert "manurestore" in result.output and "torch" in result.output and "kornia" in result.output and "cpu" in result.output
    for command in ("degrade", "plugins"):
        assert run(command, "-h").exit_code == 0


def test_single_file_naming_rule_and_determinism(tmp_path):
    source = save(tmp_path / "leaf.png")
    first = run("degrade", source, "--preset", "aged", "--seed", "3")
    assert first.exit_code == 0, first.output
    target = tmp_path / "leaf.aged.png"
    assert target.exists()
    before = target.read_bytes()
    again = run("degrade", source, "--preset", "aged", "--seed", "3", "--overwrite")
    assert again.exit_code == 0 and target.read_bytes() == before
    other = run("degrade", source, "--seed", "4", "-o", tmp_path / "seed4.png")
    assert other.exit_code == 0 and (tmp_path / "seed4.png").read_bytes() != before


def test_refuses_to_replace_outputs_without_overwrite(tmp_path):
    source = save(tmp_path / "a.png")
    assert run("degrade", source).exit_code == 0
    result = run("degrade", source)
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_never_writes_over_an_input(tmp_path):
    source = save(tmp_path / "a.png")
    original = source.read_bytes()
    result = run("degrade", source, "-o", source, "--overwrite")
    assert result.exit_code == 2 and "replace an input" in result.output
    assert source.read_bytes() == original


def test_folder_mirrors_structure_mixed_sizes_grayscale_and_is_batch_invariant(tmp_path):
    data = tmp_path / "pages"
    save(data / "a.png", (40, 30), seed=1)
    save(data / "sub" / "b.png", (40, 30), seed=2)
    save(data / "sub" / "c.png", (17, 23), seed=3)
    save(data / "gray.png", (25, 25), mode="L", seed=4)
    (data / "notes.txt").write_text("not an image")
    one = run("degrade", data, "-o", tmp_path / "b1", "--batch-size", "1", "--params-out", tmp_path / "p1.jsonl")
    many = run("degrade", data, "-o", tmp_path / "b8", "--batch-size", "8")
    assert one.exit_code == 0 and many.exit_code == 0, one.output + many.output
    for name in ("a.png", "sub/b.png", "sub/c.png", "gray.png"):
        assert (tmp_path / "b1" / name).read_bytes() == (tmp_path / "b8" / name).read_bytes(), name
    assert Image.open(tmp_path / "b1" / "gray.png").mode == "L"
    assert Image.open(tmp_path / "b1" / "sub" / "c.png").size == (17, 23)
    lines = [json.loads(line) for line in (tmp_path / "p1.jsonl").read_text().splitlines()]
    assert [Path(r["output"]).name for r in lines] == ["a.png", "gray.png", "b.png", "c.png"]
    assert all(r["preset"] == "aged" and isinstance(r["ops"], list) for r in lines)
    assert "skipped" in one.output


def test_folder_without_output_goes_to_a_sibling_folder(tmp_path):
    data = tmp_path / "pages"
    save(data / "a.jpg")
    result = run("degrade", data, "--op", "gaussian_noise", "--op", "stains")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pages.gaussian_noise+stains" / "a.jpg").exists()


def test_format_option_changes_the_suffix(tmp_path):
    data = tmp_path / "pages"
    save(data / "a.png")
    assert run("degrade", data, "-o", tmp_path / "out", "--format", "jpg").exit_code == 0
    assert (tmp_path / "out" / "a.jpg").exists()


def test_bad_files_are_reported_and_the_rest_processed(tmp_path):
    data = tmp_path / "pages"
    save(data / "good.png")
    (data / "empty.jpg").write_bytes(b"")
    (data / "text.jpg").write_text("hello")
    result = run("degrade", data, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert (tmp_path / "out" / "good.png").exists()
    assert "empty.jpg" in result.output and "text.jpg" in result.output


def test_missing_path_is_a_usage_error(tmp_path):
    result = run("degrade", tmp_path / "nope.jpg")
    assert result.exit_code == 2 and "nope.jpg" in result.output


def test_unknown_preset_and_op_are_clear_errors(tmp_path):
    source = save(tmp_path / "a.png")
    result = run("degrade", source, "--preset", "ancient")
    assert result.exit_code == 2 and "unknown preset 'ancient'" in result.output
    result = run("degrade", source, "--op", "smudge")
    assert result.exit_code == 2 and "unknown op 'smudge'" in result.output  # a usage error (plugins.UnknownOpError)


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    source = save(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("degrade", source, "-o", blocker / "out")
    assert result.exit_code == 1 and "cannot write" in result.output


def test_plugins_json_lists_builtins_with_parameters():
    result = run("plugins", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    names = {op["name"] for op in data["ops"]}
    assert {"gaussian_noise", "gaussian_blur", "contrast", "salt_pepper", "yellowing", "stains"} <= names
    noise = next(op for op in data["ops"] if op["name"] == "gaussian_noise")
    assert noise["source"] == "built-in" and noise["parameters"][0]["default"] == [0.01, 0.08]
    assert set(data["presets"]) >= {"light", "aged", "heavy"}
    table = run("plugins")
    assert table.exit_code == 0 and "stains" in table.output


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "manurestore", "--version"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and completed.stdout.startswith("manurestore ")
