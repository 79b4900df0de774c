"""`manurestore visualize` never replaces what it reads: an output named (or linked) like an input is
refused before any work, in one line with exit code 2, even with --overwrite; a bad
MANURESTORE_MAX_PIXELS is one line and exit code 2 before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.models.checkpoint import save_weights
from manurestore.models.registry import build_model

runner = CliRunner()
REFUSED = "would replace an input of this command"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_weights(path, build_model("vit-tiny", img_size=64).eval(), {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


def save(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def place(tmp_path, model_file, monkeypatch) -> Path:
    """tmp_path as the working folder: page.png, a model, pairs/{degraded,clean}/p0.png, a run folder."""
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "page.png")
    (tmp_path / "model.safetensors").write_bytes(model_file.read_bytes())
    save(tmp_path / "pairs" / "degraded" / "p0.png", seed=1)
    save(tmp_path / "pairs" / "clean" / "p0.png", seed=2)
    (tmp_path / "run").mkdir()
    record = {"kind": "train", "step": 1, "epoch": 0.1, "total": 0.2, "l1": 0.1, "ssim": 0.1, "perceptual": 0.0, "lr": 1e-4}
    (tmp_path / "run" / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    return tmp_path


def error_line(stderr: str) -> str:
    """The run's only line on stderr, checked to be a manurestore error."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("manurestore: error: "), lines[0]
    return lines[0]


def files_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def flow_over_its_page(place: Path) -> list[str]:
    save(place / "flow" / "1_clean_original.jpg")
    return ["flow", "flow/1_clean_original.jpg", "-m", "model.safetensors", "-o", "flow"]


def flow_over_its_model(place: Path) -> list[str]:
    (place / "flow").mkdir()
    os.link(place / "model.safetensors", place / "flow" / "3_restored_output.jpg")
    return ["flow", "page.png", "-m", "model.safetensors", "-o", "flow"]


def report_over_a_link_to_its_page(place: Path) -> list[str]:
    os.link(place / "page.png", place / "report.html")
    return ["report", "page.png", "-m", "model.safetensors", "-o", "report.html"]


def curves_over_a_link_to_its_log(place: Path) -> list[str]:
    (place / "curves.png").symlink_to(place / "run" / "metrics.jsonl")
    return ["curves", "run", "-o", "curves.png"]


CASES = [
    pytest.param(flow_over_its_page, id="flow-page"),
    pytest.param(flow_over_its_model, id="flow-model-hard-link"),
    pytest.param(lambda place: ["presets", "page.png", "-o", "page.png"], id="presets-page"),
    pytest.param(lambda place: ["presets", "page.png", "-o", "run/../page.png"], id="presets-page-other-spelling"),
    pytest.param(lambda place: ["curves", "run", "-o", "run/metrics.jsonl"], id="curves-log"),
    pytest.param(lambda place: ["curves", "run", "-o", "run"], id="curves-run-folder"),
    pytest.param(curves_over_a_link_to_its_log, id="curves-log-symlink"),
    pytest.param(lambda place: ["report", "page.png", "-m", "model.safetensors", "-o", "page.png"], id="report-image"),
    pytest.param(lambda place: ["report", "--pairs", "pairs", "-m", "model.safetensors", "-o", "pairs/degraded/p0.png"],
                 id="report-degraded-side"),
    pytest.param(lambda place: ["report", "--pairs", "pairs", "-m", "model.safetensors", "-o", "pairs/clean/p0.png"],
                 id="report-clean-side"),
    pytest.param(lambda place: ["report", "page.png", "-m", "model.safetensors", "-o", "model.safetensors"], id="report-model"),
    pytest.param(report_over_a_link_to_its_page, id="report-image-hard-link"),
]


@pytest.mark.parametrize("arrange", CASES)
def test_an_output_that_is_an_input_is_refused_even_with_overwrite(place, arrange):
    argv = arrange(place)
    before = files_under(place)
    result = runner.invoke(app, ["visualize", *argv, "--overwrite"], prog_name="manurestore")
    assert REFUSED in error_line(result.stderr), result.stderr
    assert result.exit_code == 2, result.stderr
    assert files_under(place) == before  # every input byte-identical, nothing written


@pytest.mark.parametrize(
    "argv",
    [
        ["flow", "page.png", "-m", "model.safetensors", "-o", "flow"],
        ["presets", "page.png", "-o", "gallery.png"],
        ["report", "page.png", "-m", "model.safetensors", "-o", "report.html"],
    ],
    ids=["flow", "presets", "report"],
)
def test_a_bad_pixel_limit_is_refused_before_any_work(place, argv, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the command started work before checking MANURESTORE_MAX_PIXELS")

    monkeypatch.setattr("manurestore.devices.resolve_device", no_work)
    before = files_under(place)
    result = runner.invoke(app, ["visualize", *argv], env={"MANURESTORE_MAX_PIXELS": "abc"}, prog_name="manurestore")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "MANURESTORE_MAX_PIXELS" in error_line(result.stderr)
    assert result.exit_code == 2
    assert files_under(place) == before
