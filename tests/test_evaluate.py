"""`evaluate` on collections of pages: per-collection means, worst cases, "do no harm" safety
figures, --include/--exclude, the JSON report, and the colour metric behind ΔE.

Pages are generated (numpy or the synthetic page generator); the models are tiny vit-tiny nets:
a fresh one is exactly the identity (its head starts at zero), one with a head bias tints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from manurestore import metrics
from manurestore.cli.app import app
from manurestore.inference import evaluation
from manurestore.inference.tiling import TiledRestorer
from manurestore.models.checkpoint import save_weights
from manurestore.models.registry import build_model

runner = CliRunner()
TINT = (0.15, 0.0, -0.15)  # added to every pixel by the tinting model


def _save_model(path: Path, tint=None) -> Path:
    torch.manual_seed(0)
    model = build_model("vit-tiny", img_size=64).eval()  # head at zero: the identity
    if tint is not None:
        with torch.no_grad():
            model.head.bias.copy_(torch.tensor(tint))
    save_weights(path, model, {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "identity.safetensors")


@pytest.fixture(scope="module")
def tint_model(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "tint.safetensors", TINT)


def mid_page(shape, seed=0) -> np.ndarray:
    """Random pixels away from 0 and 255, so a tint of ±0.15 is never clipped."""
    return np.random.default_rng(seed).integers(60, 190, shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory) -> Path:
    """leaves/ (palm-leaf pages) and folios/ (paper pages), two generated pages each."""
    from manurestore.data.synth import generate_page

    root = tmp_path_factory.mktemp("pages")
    for collection, kind in (("leaves", "palm-leaf"), ("folios", "paper")):
        for i in range(2):
            save(root / collection / f"p{i}.png", generate_page(i, kind, size=(96, 64)))
    return root


@pytest.fixture(scope="module")
def mid_pages(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mid")
    save(root / "a" / "p0.png", mid_page((40, 70, 3), 1))
    save(root / "a" / "p1.png", mid_page((50, 50, 3), 2))
    save(root / "b" / "p0.png", mid_page((45, 60, 3), 3))
    return root


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_json(tmp_path: Path, *args) -> tuple[dict, object]:
    report = tmp_path / "report.json"
    result = invoke("evaluate", *args, "--json", report, "--overwrite")
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text()), result


# --------------------------------------------------------------------------- colour metric


def test_rgb_to_lab_known_values():
    colours = torch.tensor([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]], dtype=torch.float64)
    lab = metrics.rgb_to_lab(colours.T.reshape(1, 3, 6, 1))[0, :, :, 0].T
    expected = torch.tensor([[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18],
                             [32.30, 79.19, -107.86], [53.39, 0, 0]], dtype=torch.float64)
    assert torch.allclose(lab, expected, atol=0.01)
    assert lab[0, 0] == pytest.approx(100.0, abs=1e-9) and lab[0, 1:].abs().max() < 1e-9
    # sRGB (255, 0, 0) as a uint8 page, through the evaluation helper.
    assert evaluation.mean_lab(np.full((3, 4, 3), (255, 0, 0), np.uint8)) == pytest.approx([53.24, 80.09, 67.20], abs=0.01)


def test_rgb_to_lab_agrees_with_kornia_and_delta_e_is_euclidean():
    import kornia

    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert (metrics.rgb_to_lab(x) - kornia.color.rgb_to_lab(x)).abs().max() < 0.02
    assert metrics.rgb_to_lab(x).shape == x.shape and metrics.rgb_to_lab(x[0]).shape == x[0].shape
    assert float(metrics.delta_e76(torch.tensor([50.0, 3.0, 0.0]), torch.tensor([50.0, 0.0, 4.0]))) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="3 channels"):
        metrics.rgb_to_lab(torch.rand(1, 4, 2, 2))


def test_mean_lab_is_the_mean_of_each_pixels_lab_across_strips():
    page = np.zeros((evaluation.STRIP_ROWS + 100, 3, 3), np.uint8)
    page[: evaluation.STRIP_ROWS] = 255  # white strip, black rest
    white_share = evaluation.STRIP_ROWS / page.shape[0]
    assert evaluation.mean_lab(page) == pytest.approx([100 * white_share, 0, 0], abs=1e-6)


# --------------------------------------------------------------------------- per collection


def test_per_collection_means_sit_beside_the_overall_mean(tmp_path, identity_model, tint_model, two_collections):
    report, result = run_json(tmp_path, tint_model, two_collections, "--preset", "aged", "--seed", "0", "--per-degradation")
    images = {row["image"]: row for row in report["images"]}
    assert sorted(images) == ["folios/p0.png", "folios/p1.png", "leaves/p0.png", "leaves/p1.png"]
    assert "collection" not in report["images"][0], "image rows keep their shape"
    assert list(report["collections"]) == ["folios", "leaves"]
    for name, entry in report["collections"].items():
        members = [row for key, row in images.items() if key.startswith(name + "/")]
        assert entry["pages"] == 2
        assert entry["mean"] == evaluation.mean_row(members)
        assert entry["worst"]["worst_psnr_gain"]["gain"] == min(row["gain"]["psnr"] for row in members)
    assert report["mean"] == evaluation.mean_row(report["images"])
    for op in report["per_degradation"]:
        assert set(op["collections"]) == {"folios", "leaves"} and set(op["collections"]["leaves"]) == {"identity", "restored", "gain"}
    assert "mean leaves (2)" in result.stdout and "mean folios (2)" in result.stdout and "mean (4)" in result.stdout
    assert "per collection in --json" in " ".join(result.stdout.split())  # the title may wrap
    # A folder without subfolders has no collections.
    flat, _ = run_json(tmp_path, identity_model, two_collections / "leaves")
    assert flat["collections"] is None and len(flat["images"]) == 2


def test_images_at_the_top_level_form_their_own_collection(tmp_path, identity_model):
    save(tmp_path / "data" / "loose.png", mid_page((30, 30, 3), 1))
    save(tmp_path / "data" / "c" / "x.png", mid_page((30, 30, 3), 2))
    report, result = run_json(tmp_path, identity_model, tmp_path / "data")
    assert list(report["collections"]) == [evaluation.TOP_LEVEL, "c"]
    assert "mean (top level) (1)" in result.stdout


# --------------------------------------------------------------------------- worst cases and safety


def test_identity_model_does_no_harm(tmp_path, identity_model, mid_pages):
    report, result = run_json(tmp_path, identity_model, mid_pages, "--safety")
    safety = report["safety"]
    assert [row["image"] for row in safety["images"]] == [row["image"] for row in report["images"]]
    for row in safety["images"]:
        assert row["psnr"] == metrics.PSNR_CAP_DB and row["ssim"] == pytest.approx(1.0) and row["delta_e"] == 0.0
        assert row["lab_in"] == row["lab_out"]
    assert safety["min_psnr"]["psnr"] == metrics.PSNR_CAP_DB and safety["max_delta_e"]["delta_e"] == 0.0
    assert safety["over_threshold"] == 0 and safety["threshold_delta_e"] == 2.0 and safety["pages"] == 3
    assert report["collections"]["a"]["safety"]["pages"] == 2
    # Restored == degraded: no page is made worse.
    assert report["worst"]["worse_psnr"] == 0 and report["worst"]["worse_ssim"] == 0
    assert report["worst"]["worst_psnr_gain"]["gain"] == 0.0
    assert "do no harm" in result.stdout and "0 of 3 pages over ΔE 2" in result.stdout


def test_a_tinting_model_shifts_colour_unless_colour_is_kept(tmp_path, tint_model, mid_pages):
    tinted, result = run_json(tmp_path, tint_model, mid_pages, "--safety", "--colour", "correct")
    assert tinted["colour"] == "correct"
    assert all(row["delta_e"] > 5 for row in tinted["safety"]["images"])
    assert tinted["safety"]["over_threshold"] == 3
    assert tinted["safety"]["max_delta_e"]["delta_e"] == max(row["delta_e"] for row in tinted["safety"]["images"])
    assert tinted["safety"]["min_psnr"]["psnr"] < 30
    # A uniform tint hurts every page: all are worse than their degraded input.
    worst = tinted["worst"]
    assert worst["pages"] == 3 and worst["worse_psnr"] == 3
    assert worst["worst_psnr_gain"]["gain"] == min(row["gain"]["psnr"] for row in tinted["images"])
    assert "made worse" in result.stdout
    kept, _ = run_json(tmp_path, tint_model, mid_pages, "--safety", "--colour", "keep")
    assert kept["colour"] == "keep"
    assert all(row["delta_e"] < 0.1 for row in kept["safety"]["images"])
    assert kept["safety"]["over_threshold"] == 0 and kept["safety"]["min_psnr"]["psnr"] > 45


def test_tiles_limited_to_detail_cannot_tint_a_page(tmp_path, tint_model, mid_pages):
    """A model without a page-context branch has no limit by default (the tint stays, above);
    with one, a tile's uniform change is coarse and is removed."""
    free, result = run_json(tmp_path, tint_model, mid_pages, "--safety")
    assert free["local_scale"] == 0.0 and "local scale 0 px" in result.stdout
    limited, result = run_json(tmp_path, tint_model, mid_pages, "--safety", "--local-scale", "8")
    assert limited["local_scale"] == 8.0 and "local scale 8 px" in result.stdout
    assert all(row["delta_e"] < 0.1 for row in limited["safety"]["images"])
    assert limited["worst"]["worse_psnr"] == 0


def test_a_min_change_drops_a_tint_too_small_to_be_repair(tmp_path, mid_pages):
    """A model without a branch makes every change by default; with `--min-change 3` a change of
    1.5 levels per channel (2.6 in length) is not made, and the page comes back as it went in."""
    faint = _save_model(tmp_path / "faint.safetensors", (1.5 / 255,) * 3)
    every, result = run_json(tmp_path, faint, mid_pages, "--safety")
    assert every["min_change"] == 0.0 and "min change 0 levels" in result.stdout
    assert all(row["psnr"] < 50 for row in every["safety"]["images"])
    floored, result = run_json(tmp_path, faint, mid_pages, "--safety", "--min-change", "3")
    assert floored["min_change"] == 3.0 and "min change 3 levels" in result.stdout
    assert all(row["psnr"] == 100.0 for row in floored["safety"]["images"])


def test_worst_case_and_safety_summaries():
    rows = [{"image": "a", "gain": {"psnr": 1.0, "ssim": -0.1}}, {"image": "b", "gain": {"psnr": -2.0, "ssim": 0.2}},
            {"image": "c", "gain": {"psnr": -0.5, "ssim": -0.3}}]
    assert evaluation.worst_case(rows) == {"pages": 3, "worse_psnr": 2, "worse_ssim": 2,
                                           "worst_psnr_gain": {"image": "b", "gain": -2.0},
                                           "worst_ssim_gain": {"image": "c", "gain": -0.3}}
    safety = [{"image": "a", "psnr": 40.0, "ssim": 0.9, "delta_e": 0.5}, {"image": "b", "psnr": 30.0, "ssim": 0.8, "delta_e": 3.0}]
    summary = evaluation.safety_summary(safety)
    assert summary["mean"] == {"psnr": 35.0, "ssim": pytest.approx(0.85), "delta_e": 1.75}
    assert summary["min_psnr"] == {"image": "b", "psnr": 30.0} and summary["max_delta_e"] == {"image": "b", "delta_e": 3.0}
    assert summary["over_threshold"] == 1


# --------------------------------------------------------------------------- selection


def test_include_and_exclude_choose_collections(tmp_path, identity_model, mid_pages):
    only_a, _ = run_json(tmp_path, identity_model, mid_pages, "--include", "a")
    assert [row["image"] for row in only_a["images"]] == ["a/p0.png", "a/p1.png"]
    assert only_a["selection"] == {"include": ["a"], "exclude": [], "pages": 2}
    not_a, _ = run_json(tmp_path, identity_model, mid_pages, "--exclude", "a")
    assert [row["image"] for row in not_a["images"]] == ["b/p0.png"]
    globbed, _ = run_json(tmp_path, identity_model, mid_pages, "--include", "*/p0.png", "--exclude", "b")
    assert [row["image"] for row in globbed["images"]] == ["a/p0.png"]
    both, _ = run_json(tmp_path, identity_model, mid_pages, "--include", "a", "--include", "b")
    assert len(both["images"]) == 3


def test_selection_errors_are_one_line_usage_errors(tmp_path, identity_model, mid_pages):
    result = invoke("evaluate", identity_model, mid_pages, "--include", "c")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"manurestore: error: --include 'c': matches no image under {mid_pages}; first-level folders: a, b"]
    nothing = invoke("evaluate", identity_model, mid_pages, "--include", "a", "--exclude", "a")
    assert nothing.exit_code == 2 and len(nothing.stderr.strip().splitlines()) == 1
    assert "no images found" in nothing.stderr and "--exclude a" in nothing.stderr


def test_selection_and_collections_on_real_pairs(tmp_path, identity_model):
    for name in ("a/x.png", "b/y.png"):
        save(tmp_path / "pairs" / "clean" / name, mid_page((30, 30, 3), 1))
        save(tmp_path / "pairs" / "degraded" / name, mid_page((30, 30, 3), 2))
    report, _ = run_json(tmp_path, identity_model, "--pairs", tmp_path / "pairs", "--exclude", "b", "--safety")
    assert report["paired"] is True and [row["image"] for row in report["images"]] == ["a/x"]
    assert list(report["collections"]) == ["a"] and report["safety"]["images"][0]["delta_e"] == 0.0


# --------------------------------------------------------------------------- report, failures, progress


def test_json_records_the_settings(tmp_path, identity_model, mid_pages):
    report, _ = run_json(tmp_path, identity_model, mid_pages, "--preset", "heavy", "--seed", "7")
    assert report["seed"] == 7 and report["preset"]["name"] == "heavy" and report["colour"] == "correct"
    assert report["model"]["path"] == str(identity_model) and report["model"]["model_name"] == "vit-tiny"
    assert report["safety"] is None and report["per_degradation"] == [] and report["failures"] == []
    assert set(report["worst"]) == {"pages", "worse_psnr", "worse_ssim", "worst_psnr_gain", "worst_ssim_gain"}


def test_a_failing_file_still_advances_the_bar_to_its_total(tmp_path, identity_model):
    save(tmp_path / "data" / "a" / "good.png", mid_page((30, 30, 3), 1))
    (tmp_path / "data" / "a" / "broken.png").write_bytes(b"not a png")
    save(tmp_path / "data" / "b" / "good.png", mid_page((30, 30, 3), 2))
    report = tmp_path / "r.json"
    result = invoke("evaluate", identity_model, tmp_path / "data", "--json", report)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("manurestore: error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert "3/3" in result.stderr, result.stderr
    written = json.loads(report.read_text())
    assert len(written["images"]) == 2 and len(written["failures"]) == 1


def test_evaluate_images_reports_every_item_once(tmp_path):
    failures: list = []
    sources = [(save(tmp_path / "a.png", mid_page((20, 20, 3))), "a.png"), (tmp_path / "missing.png", "missing.png")]
    from manurestore.degradations.pipeline import Pipeline

    done = []
    images = evaluation.synthetic_set(sources, Pipeline.from_preset("aged"), 0, torch.device("cpu"), None, failures)
    result = evaluation.evaluate_images(images, TiledRestorer(build_model("vit-tiny", img_size=64).eval(), tile=64),
                                        on_done=done.append, safety=True, failures=failures)
    assert len(done) == 2 and done[1] is None and len(failures) == 1
    assert len(result.rows) == 1 and len(result.safety) == 1
