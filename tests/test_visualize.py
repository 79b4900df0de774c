"""`manurestore visualize`: flow, presets, curves and the HTML report, on tiny models and small pages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from manurestore.cli import visualize
from manurestore.data.io import read_image, write_image
from manurestore.data.synth import generate_page
from manurestore.models.registry import build_model
from manurestore.models.checkpoint import save_weights
from manurestore.viz import panels

root = typer.Typer()
root.add_typer(visualize.app, name="visualize")
runner = CliRunner()


def run(*args):
    return runner.invoke(root, ["visualize", *[str(a) for a in args]])


def tiny_model(std: float, seed: int = 0):
    """vit-tiny whose output head is random: std 0.02 changes the page a little, 0.5 a lot."""
    torch.manual_seed(seed)
    model = build_model("vit-tiny", img_size=64).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("head"):
                parameter.normal_(0, std)
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_weights(path, tiny_model(0.02), {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


@pytest.fixture(scope="module")
def wild_model_file(tmp_path_factory) -> Path:
    """A model that repaints the page in wild colours, so input and output differ at a glance."""
    path = tmp_path_factory.mktemp("wild") / "wild.safetensors"
    save_weights(path, tiny_model(0.5, seed=1), {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


def page_file(path: Path, size=(128, 96), seed=3) -> Path:
    write_image(path, generate_page(seed, "paper", size))
    return path


# --------------------------------------------------------------------------- flow


def test_flow_writes_the_four_pictures_with_the_degrade_rule(tmp_path, model_file):
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.degradations.files import degrade_page

    image = page_file(tmp_path / "folio.png")
    out = tmp_path / "flow"
    result = run("flow", image, "-m", model_file, "-o", out, "--preset", "heavy", "--seed", "2")
    assert result.exit_code == 0, result.output
    for name in visualize.FLOW_FILES[:3]:
        assert read_image(out / name).shape == (96, 128, 3), name
    # The degraded picture is what `degrade --preset heavy --seed 2` gives this file (up to JPEG).
    expected, _ = degrade_page(read_image(image, mode="RGB"), Pipeline.from_preset("heavy"), 2, "folio.png", torch.device("cpu"))
    written = read_image(out / "2_degraded_input.jpg").astype(int)
    assert np.abs(written - expected).mean() < 3.0
    comparison = Image.open(out / "training_flow_comparison.jpg")
    # four panels of at least the page's width each, plus the caption bands above them
    assert comparison.width > 4 * 128 and comparison.height > 96 + 100
    assert "PSNR" in result.output


def test_flow_refuses_to_overwrite_and_reports_missing_files(tmp_path, model_file):
    image = page_file(tmp_path / "folio.png")
    out = tmp_path / "flow"
    out.mkdir()
    (out / "3_restored_output.jpg").write_bytes(b"keep me")
    result = run("flow", image, "-m", model_file, "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "3_restored_output.jpg").read_bytes() == b"keep me"
    assert not (out / "1_clean_original.jpg").exists()  # nothing written before the check
    missing = run("flow", tmp_path / "nope.png", "-m", model_file, "-o", out)
    assert missing.exit_code == 2 and "nope.png" in missing.output
    no_model = run("flow", image, "-m", tmp_path / "absent.safetensors", "-o", tmp_path / "other")
    assert no_model.exit_code == 2 and "absent.safetensors" in no_model.output


def test_flow_figure_shrinks_large_pages_and_adds_native_crops():
    from manurestore.viz.flow import FlowResult, describe_fired, flow_figure

    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (700, 3000, 3), dtype=np.uint8)
    degraded = np.clip(clean.astype(int) + 40, 0, 255).astype(np.uint8)
    metrics = {"psnr": 20.0, "ssim": 0.5, "mse": 0.01}
    fired = [{"op": "gaussian_noise", "sigma": 0.0412}, {"op": "stains", "count": 2, "radius": [0.1, 0.2]}]
    result = FlowResult("wide.png", clean, degraded, clean, fired, metrics, {**metrics, "psnr": 25.0})
    figure = flow_figure(result, preset="aged", seed=0, model="m.safetensors")
    assert figure.width <= 2100  # shrunk for display
    assert describe_fired(fired) == "gaussian_noise sigma=0.0412; stains count=2"


def test_panels_keep_the_aspect_ratio():
    for width, height in [(3000, 700), (700, 3000), (64, 64), (5000, 37)]:
        shown, scale = panels.downscale(np.zeros((height, width, 3), np.uint8), 480, 360)
        assert shown.width <= 480 and shown.height <= 360
        assert abs(shown.width / shown.height - width / height) <= width / height * 2 / min(shown.size)
    box = panels.detail_box(np.zeros((100, 300, 3), np.uint8), 400, 50)
    assert box[2] - box[0] == 300 and box[3] - box[1] == 50
    bar = panels.colour_bar(300, 25.0, "error")
    assert bar.width == 300 and len(np.unique(np.asarray(bar).reshape(-1, 3), axis=0)) > 50


# --------------------------------------------------------------------------- presets


def test_presets_gallery_has_every_op_and_preset(tmp_path):
    from manurestore.degradations.base import Degradation, ParamsModel
    from manurestore.hookspecs import hookimpl
    from manurestore.plugins import register_plugin
    from manurestore.viz.gallery import op_entries, preset_entries

    class Darken(Degradation):
        name = "test_darken"

        class Params(ParamsModel):
            pass

        def sample(self, n, gen, device):
            return {"amount": gen.uniform(low=0.3, high=0.5)}

        def apply(self, x, draws, gen):
            return x * (1 - draws["amount"].view(-1, 1, 1, 1))

    class Plugin:
        @hookimpl
        def manurestore_register_degradations(self, register):
            register(Darken)

    register_plugin(Plugin(), "test-darken")
    names = [entry.title for entry in op_entries()]
    assert "test_darken" in names and "gaussian_noise" in names and "stains" in names
    assert [entry.title for entry in preset_entries()][:3] == ["preset light", "preset aged", "preset heavy"]

    image = page_file(tmp_path / "leaf.png", size=(96, 64))
    out = tmp_path / "gallery.png"
    result = run("presets", image, "-o", out, "--seed", "1")
    assert result.exit_code == 0, result.output
    gallery = Image.open(out)
    tiles = 1 + len(preset_entries()) + len(names)
    assert gallery.width >= 2 * 96 and gallery.width * gallery.height > tiles * 96 * 64
    before = out.read_bytes()
    again = run("presets", image, "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.output and out.read_bytes() == before
    assert run("presets", image, "-o", out, "--overwrite").exit_code == 0
    assert run("presets", image, "-o", tmp_path / "gallery.txt").exit_code == 2


# --------------------------------------------------------------------------- curves


def write_metrics(run_dir: Path) -> None:
    lines = [{"kind": "identity", "step": 0, "psnr": 20.0, "ssim": 0.7, "mse": 0.01}]
    for step in range(5, 41, 5):
        lines.append({"kind": "train", "step": step, "epoch": step / 10, "total": 0.2 / step, "l1": 0.1 / step,
                      "ssim": 0.3 / step, "perceptual": 0.0, "lr": 1e-4 * min(1, step / 10), "grad_norm": 1.0})
        if step % 10 == 0:
            lines.append({"kind": "val", "step": step, "epoch": step // 10, "loss": 0.25 / step,
                          "psnr": 20 + step / 10, "ssim": 0.7 + step / 400, "mse": 0.01})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def test_curves_writes_a_1200_by_800_picture(tmp_path):
    write_metrics(tmp_path / "run")
    out = tmp_path / "curves.png"
    result = run("curves", tmp_path / "run", "-o", out)
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.size == (1200, 800)
    assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 100  # not a blank page
    again = run("curves", tmp_path / "run", "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_curves_errors_on_an_empty_run(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("curves", tmp_path / "empty", "-o", tmp_path / "c.png")
    assert result.exit_code == 2 and "metrics.jsonl" in result.output and "no such file" in result.output
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    result = run("curves", tmp_path / "empty", "-o", tmp_path / "c.png")
    assert result.exit_code == 1 and "empty" in result.output
    assert run("curves", tmp_path / "missing", "-o", tmp_path / "c.png").exit_code == 2
    assert not (tmp_path / "c.png").exists()


# --------------------------------------------------------------------------- report


def make_pairs(folder: Path) -> None:
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.degradations.files import degrade_page

    for index in range(2):
        clean = generate_page(10 + index, "paper", (112, 80))
        degraded, _ = degrade_page(clean, Pipeline.from_preset("heavy"), 0, f"p{index}", torch.device("cpu"))
        write_image(folder / "clean" / f"p{index}.png", clean)
        write_image(folder / "degraded" / f"p{index}.jpg", degraded)


EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?(https?:|//)|@import|<link\b""", re.I)


def test_report_is_self_contained_with_metrics_for_pairs(tmp_path, model_file):
    make_pairs(tmp_path / "pairs")
    extra = page_file(tmp_path / "scan.png", size=(96, 64))
    out = tmp_path / "report.html"
    result = run("report", extra, "--pairs", tmp_path / "pairs", "-m", model_file, "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.count('<section class="page"') == 3
    assert text.count('class="compare"') == 3  # small pages: no native-resolution detail needed
    assert text.count("data:image/jpeg;base64,") == 2 + 2 * 3  # input + output each, clean too for pairs
    assert text.count('<table class="metrics">') == 1 + 2  # the mean, and one per pair
    assert "image-rendering: pixelated" in text and 'type="range"' in text
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    assert "2000 px" in text and "quality 90" in text
    again = run("report", extra, "-m", model_file, "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert run("report", "-m", model_file, "-o", tmp_path / "r.html").exit_code == 2  # nothing to show
    assert run("report", tmp_path / "nope.png", "-m", model_file, "-o", tmp_path / "r.html").exit_code == 2


def test_report_shrinks_large_pages_and_adds_a_native_detail():
    from manurestore.viz.report import build_page

    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, (300, 1200, 3), dtype=np.uint8)
    entry = build_page(1, "big", page, 255 - page, page, max_side=600, quality=80)
    assert entry.html.count('class="compare"') == 2
    assert 'data-w="600" data-h="150"' in entry.html  # downscaled whole page, aspect kept
    assert entry.metrics["identity"]["psnr"] > 90 and entry.metrics["gain"]["psnr"] < 0


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (apt-get install -y chromium), so the HTML report was not checked in a browser")


def screenshot(browser: str, url: str, target: Path, profile: Path) -> np.ndarray:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--screenshot={target}", "--window-size=1200,900", url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (subprocess.TimeoutExpired, OSError) as error:
        pytest.skip(f"Chromium could not start or did not finish within 20 s ({error}); report not checked in a browser")
    if done.returncode != 0 or not target.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        pytest.skip(f"Chromium could not take a screenshot (exit {done.returncode}: {' | '.join(tail)})")
    return np.asarray(Image.open(target).convert("RGB")).astype(np.int16)


def test_report_slider_moves_between_input_and_output_in_chromium(tmp_path, wild_model_file):
    browser = find_chromium()
    image = page_file(tmp_path / "scan.png", size=(160, 112), seed=4)
    out = tmp_path / "report.html"
    result = run("report", image, "-m", wild_model_file, "-o", out)
    assert result.exit_code == 0, result.output
    shots = {}
    for position in (0, 100):
        shots[position] = screenshot(browser, f"{out.as_uri()}#slider={position}", tmp_path / f"shot{position}.png",
                                     tmp_path / f"profile{position}")
    restored_only, input_only = shots[0], shots[100]
    assert restored_only.shape == (900, 1200, 3)
    for shot in (restored_only, input_only):  # a rendered page, not a blank one
        assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 1000 and shot.std() > 20
    changed = np.abs(restored_only - input_only).sum(axis=2) > 60
    rows = np.nonzero(changed.any(axis=1))[0]
    assert changed.mean() > 0.15, f"only {changed.mean():.1%} of the window changed between #slider=0 and #slider=100"
    assert rows.max() - rows.min() > 200  # a whole picture's height changed, not a caption
