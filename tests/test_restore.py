"""Tiled restoration, `restore` and `evaluate` end to end with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.inference.evaluation import page_metrics
from manurestore.inference.restorer import load_restorer
from manurestore.inference.tiling import LOCAL_SCALE, MIN_CHANGE, TiledRestorer, blend_window, fine_part, tile_starts, without_small_changes
from manurestore.models.registry import build_model
from manurestore.models.checkpoint import save_weights

runner = CliRunner()


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def tiny_model(seed=0, tile=64):
    """vit-tiny whose output head is random, so it really changes the image."""
    torch.manual_seed(seed)
    model = build_model("vit-tiny", img_size=tile).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("head"):
                parameter.normal_(0, 0.02)
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_weights(path, tiny_model(), {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


def page(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1, 1), (2, 3, 3), (37, 101, 3), (64, 64, 1), (65, 129, 3), (300, 8000, 3)])
def test_identity_model_gives_back_exactly_the_input(shape):
    source = page(shape)
    assert np.array_equal(TiledRestorer(Identity(), tile=64, batch_size=16).restore(source), source)


def test_tiles_cover_the_page_and_the_window_is_smooth():
    assert tile_starts(10, 64, 48) == [0]
    starts = tile_starts(300, 64, 48)
    assert starts[0] == 0 and starts[-1] == 300 - 64 and all(b - a <= 48 for a, b in zip(starts, starts[1:]))
    window = blend_window(64, 16)
    assert window.min() > 0 and window.max() == 1.0 and np.all(np.abs(np.diff(window)) < 0.2)
    with pytest.raises(ValueError, match="overlap"):
        TiledRestorer(Identity(), tile=64, overlap=4)


def test_tiled_equals_one_pass_away_from_the_borders():
    model = tiny_model()
    source = page((150, 200, 3), seed=3)
    tiled = TiledRestorer(model, tile=64).restore(source).astype(np.float64)
    with torch.no_grad():
        x = torch.from_numpy(source).permute(2, 0, 1)[None].float() / 255
        full = (model(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(full - source).mean() > 1.0, "the model must change the page for this test to mean anything"
    assert np.abs(tiled - full)[16:-16, 16:-16].mean() < 0.5


class RepaintsAndSharpens(torch.nn.Module):
    """A tile model that adds a colour cast (a coarse change) and a one-pixel checkerboard (a fine one)."""

    page_context = None

    def forward(self, x):
        rows, cols = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
        checker = ((rows + cols) % 2).to(x.dtype) * 0.04 - 0.02
        return x + torch.tensor([0.15, 0.0, -0.1]).view(1, 3, 1, 1) + checker


def test_a_local_scale_leaves_coarse_change_to_the_page_and_keeps_fine_repair():
    source = np.full((150, 200, 3), 128, np.uint8)
    free = TiledRestorer(RepaintsAndSharpens(), tile=64).restore(source).astype(float)
    limited = TiledRestorer(RepaintsAndSharpens(), tile=64, local_scale=8).restore(source).astype(float)
    assert np.abs(free.mean(axis=(0, 1)) - 128 - [38.25, 0, -25.5]).max() < 1  # the cast, as the tiles made it
    assert np.abs(limited.mean(axis=(0, 1)) - 128).max() < 0.5  # the cast removed
    checker = limited[1:, :, 0] - limited[:-1, :, 0]  # neighbours differ by ±0.04: about 10 levels
    assert np.abs(checker).mean() > 8


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 1, 17, 30), (1, 3, 3, 5)])
def test_fine_part_removes_what_is_the_same_everywhere(shape):
    constant = torch.full(shape, 0.3)
    assert fine_part(constant, 8.0).abs().max() < 1e-6
    detail = torch.randn(shape)
    assert fine_part(detail, 8.0).shape == detail.shape


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 70), width=st.integers(1, 70), sigma=st.floats(0.5, 16.0),
       gain=st.floats(-3.0, 3.0), offset=st.floats(-1.0, 1.0), seed=st.integers(0, 2**16))
def test_fine_part_is_linear_and_blind_to_a_constant(height, width, sigma, gain, offset, seed):
    """What a tile may keep of its change does not depend on a shift of the whole change, and
    scales with it: `fine_part(g·x + c) = g·fine_part(x)`, at any tile size, shape and dtype kept."""
    change = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))
    fine = fine_part(change, sigma)
    assert fine.shape == change.shape and fine.dtype == change.dtype
    assert torch.allclose(fine_part(gain * change + offset, sigma), gain * fine, atol=1e-4)


def test_identity_model_is_still_exact_under_a_local_scale():
    source = page((65, 129, 3))
    assert np.array_equal(TiledRestorer(Identity(), tile=64, local_scale=8).restore(source), source)


def test_the_default_local_scale_follows_the_page_context_branch(tmp_path, model_file):
    with_branch = tmp_path / "branch.safetensors"
    save_weights(with_branch, build_model("vit-tiny", img_size=64, page_context=True), {"model_name": "vit-tiny", "train_crop": 64})
    cpu = torch.device("cpu")
    assert load_restorer(with_branch, cpu).restorer.local_scale == LOCAL_SCALE
    assert load_restorer(model_file, cpu).restorer.local_scale == 0.0  # nothing else would correct colour
    assert load_restorer(with_branch, cpu, local_scale=0).restorer.local_scale == 0.0
    assert load_restorer(with_branch, cpu, tile=16).restorer.local_scale == 4.0  # the default fits a small tile


@pytest.mark.parametrize("value, message", [("-1", "in pixels"), ("17", "a quarter of the 64-pixel tile")])
def test_a_bad_local_scale_is_a_one_line_usage_error(tmp_path, model_file, value, message):
    source = save(tmp_path / "a.png", (20, 20, 3))
    result = invoke("restore", source, "-m", model_file, "--local-scale", value)
    assert result.exit_code == 2 and message in result.output and "--local-scale" in result.output
    assert not (tmp_path / "a.restored.png").exists()


@settings(max_examples=40, deadline=None)
@given(channels=st.sampled_from([1, 3]), floor=st.floats(0.0, 0.5), scale=st.floats(0.001, 2.0), seed=st.integers(0, 2**16))
def test_small_changes_are_dropped_and_larger_ones_shortened_by_the_floor(channels, floor, scale, seed):
    """Soft thresholding of each pixel's change over its channels: the length becomes
    max(0, length − floor) and the direction is kept; shape and dtype too."""
    change = scale * torch.randn(2, channels, 9, 11, generator=torch.Generator().manual_seed(seed))
    change[0, :, 0, 0] = 0.0  # no change at all stays none, at any floor
    kept = without_small_changes(change, floor)
    assert kept.shape == change.shape and kept.dtype == change.dtype
    assert torch.isfinite(kept).all() and not kept[0, :, 0, 0].any()
    length, kept_length = change.norm(dim=1), kept.norm(dim=1)
    assert torch.allclose(kept_length, (length - floor).clamp_min(0), atol=1e-5)
    moved = kept_length > 1e-4
    cosine = (kept * change).sum(dim=1)[moved] / (length * kept_length)[moved]
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-4)


class NudgesAndDespecks(torch.nn.Module):
    """A tile model that brightens every pixel by 1.5 levels per channel (2.6 in length over three)
    and lifts a dark speck by half the range more."""

    page_context = None

    def forward(self, x):
        return x + 1.5 / 255 + 0.5 * (x < 0.3).to(x.dtype)


def test_a_min_change_drops_a_tiles_small_changes_and_shortens_large_ones():
    source = np.full((64, 64, 3), 100, np.uint8)
    source[30, 30] = 50
    restored = TiledRestorer(NudgesAndDespecks(), tile=64, min_change=MIN_CHANGE).restore(source).astype(float)
    elsewhere = np.ones((64, 64), bool)
    elsewhere[30, 30] = False
    assert np.array_equal(restored[elsewhere], source[elsewhere].astype(float))  # 2.6 levels < 3: dropped
    speck = restored[30, 30] - 50  # 129 levels per channel, shortened by 3 levels in length
    assert np.allclose(speck, 129 * (1 - 3 / (129 * 3 ** 0.5)), atol=0.6)
    free = TiledRestorer(NudgesAndDespecks(), tile=64).restore(source).astype(float)
    assert np.abs(free[elsewhere] - 101.5).max() <= 0.5  # without the floor the nudge is made


def test_identity_model_is_still_exact_under_a_min_change():
    source = page((65, 129, 3))
    assert np.array_equal(TiledRestorer(Identity(), tile=64, local_scale=8, min_change=MIN_CHANGE).restore(source), source)


def test_the_default_min_change_follows_the_page_context_branch(tmp_path, model_file):
    with_branch = tmp_path / "branch.safetensors"
    save_weights(with_branch, build_model("vit-tiny", img_size=64, page_context=True), {"model_name": "vit-tiny", "train_crop": 64})
    cpu = torch.device("cpu")
    assert load_restorer(with_branch, cpu).restorer.min_change == MIN_CHANGE == 3 / 255
    assert load_restorer(model_file, cpu).restorer.min_change == 0.0
    assert load_restorer(with_branch, cpu, min_change=0).restorer.min_change == 0.0
    assert load_restorer(model_file, cpu, min_change=5).restorer.min_change == 5 / 255


@pytest.mark.parametrize("value", ["-1", "256"])
def test_a_bad_min_change_is_a_one_line_usage_error(tmp_path, model_file, value):
    source = save(tmp_path / "a.png", (20, 20, 3))
    result = invoke("restore", source, "-m", model_file, "--min-change", value)
    assert result.exit_code == 2 and "levels of 255" in result.output and "--min-change" in result.output
    assert not (tmp_path / "a.restored.png").exists()


def test_page_metrics_match_numpy_and_one_pass():
    from manurestore import metrics

    a, b = page((700, 90, 3), 1), page((700, 90, 3), 2)
    result = page_metrics(a, b)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    mse = np.mean((a / 255.0 - b / 255.0) ** 2)
    assert result["mse"] == pytest.approx(mse, rel=1e-6)
    assert result["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-6)
    assert result["ssim"] == pytest.approx(float(metrics.ssim(x, y)), abs=1e-5)
    assert page_metrics(a, a)["psnr"] == metrics.PSNR_CAP_DB


def save(path: Path, shape, seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = page(shape, seed)
    Image.fromarray(array[:, :, 0] if shape[2] == 1 else array).save(path)
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_restore_cli_end_to_end(tmp_path, model_file):
    scans = tmp_path / "scans"
    save(scans / "a.png", (70, 90, 3), 1)
    save(scans / "sub" / "b.png", (33, 150, 3), 2)
    save(scans / "gray.png", (40, 40, 1), 3)
    (scans / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    result = invoke("restore", scans, "-o", tmp_path / "out", "-m", model_file)
    assert result.exit_code == 1 and "broken.jpg" in result.output
    assert Image.open(tmp_path / "out" / "sub" / "b.png").size == (150, 33)
    assert Image.open(tmp_path / "out" / "gray.png").mode == "L"
    before = (tmp_path / "out" / "a.png").stat().st_mtime_ns
    again = invoke("restore", scans / "a.png", scans / "sub", "-o", tmp_path / "out", "-m", model_file)
    assert again.exit_code == 0 and "skipped" in again.output
    assert (tmp_path / "out" / "a.png").stat().st_mtime_ns == before
    redo = invoke("restore", scans / "a.png", "-o", tmp_path / "out", "-m", model_file, "--overwrite")
    assert redo.exit_code == 0
    single = invoke("restore", scans / "a.png", "-m", model_file)
    assert single.exit_code == 0 and (scans / "a.restored.png").exists()


def test_restore_shards_split_a_folder_without_overlap(tmp_path, model_file):
    scans = tmp_path / "scans"
    for i in range(6):
        save(scans / f"p{i}.png", (20, 20, 3), i)
    outputs = []
    for k in (1, 2):
        assert invoke("restore", scans, "-o", tmp_path / f"shard{k}", "-m", model_file, "--shard", f"{k}/2").exit_code == 0
        outputs.append({p.name for p in (tmp_path / f"shard{k}").glob("*.png")})
    assert not outputs[0] & outputs[1] and len(outputs[0] | outputs[1]) == 6
    assert invoke("restore", scans, "-m", model_file, "--shard", "3/2").exit_code == 2


def test_restore_usage_errors(tmp_path, model_file):
    source = save(tmp_path / "a.png", (20, 20, 3))
    assert invoke("restore", source, "-m", tmp_path / "missing.safetensors").exit_code == 2
    not_model = tmp_path / "x.safetensors"
    not_model.write_text("nope")
    result = invoke("restore", source, "-m", not_model)
    assert result.exit_code == 1 and "x.safetensors" in result.output
    result = invoke("restore", source, "-m", model_file, "-o", source, "--overwrite")
    assert result.exit_code == 2 and "input" in result.output


def test_evaluate_cli_reports_baseline_and_json(tmp_path, model_file):
    data = tmp_path / "clean"
    save(data / "a.png", (60, 80, 3), 1)
    save(data / "b.png", (50, 50, 3), 2)
    report = tmp_path / "eval.json"
    result = invoke("evaluate", model_file, data, "--preset", "aged", "--seed", "0", "--json", report, "--per-degradation")
    assert result.exit_code == 0, result.output
    first = json.loads(report.read_text())
    assert first["seed"] == 0 and first["preset"]["name"] == "aged" and len(first["images"]) == 2
    row = first["images"][0]
    assert set(row) >= {"image", "identity", "restored", "gain"}
    assert row["gain"]["psnr"] == pytest.approx(row["restored"]["psnr"] - row["identity"]["psnr"])
    assert {r["op"] for r in first["per_degradation"]} >= {"gaussian_noise", "stains"}
    again = invoke("evaluate", data, "-m", model_file, "--json", report, "--overwrite")
    assert again.exit_code == 0
    assert json.loads(report.read_text())["images"] == first["images"], "same seed → same numbers"
    cropped = invoke("evaluate", model_file, data, "--crop", "32")
    assert cropped.exit_code == 0


def test_evaluate_on_real_pairs(tmp_path, model_file):
    save(tmp_path / "pairs" / "clean" / "x.png", (40, 40, 3), 1)
    save(tmp_path / "pairs" / "degraded" / "x.png", (40, 40, 3), 2)
    result = invoke("evaluate", model_file, "--pairs", tmp_path / "pairs", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["paired"] is True


@pytest.mark.parametrize("command", ["restore", "evaluate"])
def test_a_bad_precision_is_a_one_line_usage_error(tmp_path, model_file, command):
    source = save(tmp_path / "a.png", (20, 20, 3))
    result = invoke(command, source, "-m", model_file, "--precision", "fp64")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["manurestore: error: --precision 'fp64': use auto, fp32, bf16 or fp16"]
    assert not (tmp_path / "a.restored.png").exists()


def test_a_file_that_cannot_be_restored_is_reported_and_the_rest_are_written(tmp_path, model_file):
    from manurestore.data.jobs import FileFailure, plan_job
    from manurestore.inference.files import restore_files

    scans = tmp_path / "scans"
    save(scans / "good.png", (30, 30, 3), 1)
    (scans / "bad.png").write_bytes(b"not a png")
    restorer = TiledRestorer(Identity(), tile=64)
    job = restore_files(plan_job([scans], tmp_path / "out", "restored").tasks, restorer)
    assert job.written == [tmp_path / "out" / "good.png"]
    assert [type(failure) for failure in job.failures] == [FileFailure]
    assert job.failures[0].path == scans / "bad.png" and "bad.png" in job.failures[0].message


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"), [
    (True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, torch.float32)])
def test_auto_precision_is_bf16_on_cpus_that_compute_in_bf16(monkeypatch, amx, avx512_bf16, expected):
    """AMX or AVX-512 BF16 (AMD Zen 4): bf16 is 1.7–2.4× faster there; elsewhere it is emulated."""
    from manurestore.devices import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert resolve_precision("auto", torch.device("cpu"), inference=True) == expected
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32  # training on a CPU stays fp32
