"""Page-level decisions: one colour field per page shared by every tile, and `--colour keep`."""

from __future__ import annotations

import kornia
import numpy as np
import pytest
import torch

from manurestore.inference.tiling import TiledRestorer
from manurestore.models.checkpoint import load_model, save_weights
from manurestore.models.page_context import SMALL_CORRECTION, PageContext, correct_colour, page_view, settle_small_corrections
from manurestore.models.registry import build_model


def two_material_page(height=160, width=320, seed=0) -> np.ndarray:
    """A brown leaf on the left, cream paper on the right, dark strokes on both: a tile that sees
    one half only would decide the colour differently from one that sees the other."""
    rng = np.random.default_rng(seed)
    page = np.empty((height, width, 3), np.uint8)
    page[:, : width // 2] = (140, 95, 55)
    page[:, width // 2 :] = (232, 222, 198)
    for _ in range(60):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 12)
        page[y : y + 3, x : x + int(rng.integers(5, 12))] = rng.integers(10, 50)
    return page


def restorer_with_page_context(seed=0, tile_repair=False):
    """vit-tiny whose page branch makes a real (random) colour decision; its tiles repair
    nothing unless `tile_repair`."""
    torch.manual_seed(seed)
    model = build_model("vit-tiny", img_size=64, page_context=True).eval()
    with torch.no_grad():
        model.page_context.to_field.weight.normal_(0, 0.02)
        model.page_context.to_field.bias.normal_(0, 0.05)
        if tile_repair:
            model.head.weight.normal_(0, 0.02)
    return model


class TileLocalColour(torch.nn.Module):
    """What the page branch replaces: every tile bleached to one brightness from what it alone sees."""

    def forward(self, x):
        return x - x.mean(dim=(2, 3), keepdim=True) + 0.8


def low_frequency_psnr(a: np.ndarray, b: np.ndarray, sigma: float = 8.0) -> float:
    def blurred(page):
        x = torch.from_numpy(page).permute(2, 0, 1)[None].double() / 255
        size = int(6 * sigma) | 1
        return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")

    mse = float((blurred(a) - blurred(b)).pow(2).mean())
    return 100.0 if mse == 0 else 10 * np.log10(1 / mse)


def mean_lab(page: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(page).permute(2, 0, 1)[None].float() / 255
    return kornia.color.rgb_to_lab(x).mean(dim=(2, 3))[0]


def test_a_fresh_page_branch_changes_nothing():
    page = two_material_page()
    model = build_model("vit-tiny", img_size=64, page_context=True).eval()
    assert np.array_equal(TiledRestorer(model, tile=64).restore(page), page)


def test_the_page_branch_makes_tiles_of_any_size_agree():
    page = two_material_page()
    model = restorer_with_page_context()
    small, large = (TiledRestorer(model, tile=size).restore(page) for size in (64, 128))
    assert np.abs(small.astype(int) - page).mean() > 3, "the page branch must really change the colour"
    assert low_frequency_psnr(small, large) >= 40.0
    # The check has teeth: a model that decides colour tile by tile fails it.
    local = TileLocalColour()
    small, large = (TiledRestorer(local, tile=size).restore(page) for size in (64, 128))
    assert low_frequency_psnr(small, large) < 40.0


def test_the_colour_field_is_smooth_and_the_same_for_every_tile():
    torch.manual_seed(1)
    branch = PageContext()
    with torch.no_grad():
        branch.to_field.bias.normal_(0, 0.05)
    page = torch.rand(1, 3, 90, 300)
    field = branch(page_view(page, branch.view))
    whole = correct_colour(page, field, (0, 0), (90, 300))
    part = correct_colour(page[..., 30:70, 100:180], field, (30, 100), (90, 300))
    assert torch.allclose(whole[..., 30:70, 100:180], part, atol=1e-6)


def test_keep_leaves_the_mean_colour_as_scanned_and_correct_may_change_it():
    page = two_material_page(seed=2)
    model = restorer_with_page_context(seed=3, tile_repair=True)
    kept = TiledRestorer(model, tile=64, colour="keep").restore(page)
    corrected = TiledRestorer(model, tile=64, colour="correct").restore(page)
    assert float((mean_lab(kept) - mean_lab(page)).norm()) <= 1.0
    assert float((mean_lab(corrected) - mean_lab(page)).norm()) > 1.0
    assert np.abs(kept.astype(int) - page).mean() > 0.5, "keep still repairs: the tiles changed the page"


def test_an_unknown_colour_mode_is_refused():
    with pytest.raises(ValueError, match="colour"):
        TiledRestorer(TileLocalColour(), tile=64, colour="bleach")


def test_a_model_with_a_page_branch_round_trips_through_its_file(tmp_path):
    model = restorer_with_page_context(seed=4)
    path = tmp_path / "m.safetensors"
    save_weights(path, model, {"model_name": "vit-tiny", "train_crop": 64})
    loaded, _ = load_model(path)
    assert loaded.page_context is not None
    page = two_material_page(seed=5)
    assert np.array_equal(TiledRestorer(loaded, tile=64).restore(page), TiledRestorer(model, tile=64).restore(page))


def test_restore_takes_colour_keep_and_refuses_an_unknown_mode(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from manurestore.cli.app import app

    model = tmp_path / "m.safetensors"
    save_weights(model, restorer_with_page_context(seed=6, tile_repair=True), {"model_name": "vit-tiny", "train_crop": 64})
    page = two_material_page(seed=7)
    Image.fromarray(page).save(tmp_path / "leaf.png")
    runner = CliRunner()
    kept = runner.invoke(app, ["restore", str(tmp_path / "leaf.png"), "-m", str(model), "--colour", "keep"])
    assert kept.exit_code == 0, kept.output
    restored = np.array(Image.open(tmp_path / "leaf.restored.png"))
    assert float((mean_lab(restored) - mean_lab(page)).norm()) <= 1.0
    refused = runner.invoke(app, ["restore", str(tmp_path / "leaf.png"), "-m", str(model), "--colour", "bleach", "--overwrite"])
    assert refused.exit_code == 2 and "--colour 'bleach'" in refused.stderr


def offset_field(offset: float, batch: int = 1) -> torch.Tensor:
    """A field that adds `offset` to every channel everywhere (the matrix stays the identity)."""
    field = torch.zeros(batch, 12, 4, 4)
    field[:, 9:] = offset
    return field


@pytest.mark.parametrize("offset, kept", [(0.005, 0.0), (0.015, 0.5), (0.03, 1.0)],
                         ids=["branch error", "in between", "damage"])
def test_a_correction_too_small_to_be_damage_is_settled(offset, kept):
    """A mean change under SMALL_CORRECTION[0] is dropped, over [1] kept whole, linear between."""
    low, high = SMALL_CORRECTION
    assert (low, high) == (0.01, 0.02)
    view = torch.full((1, 3, 32, 32), 0.5)
    settled = settle_small_corrections(offset_field(offset), view)
    assert torch.allclose(settled, offset_field(offset) * kept, atol=1e-6)


def test_each_page_of_a_batch_is_settled_on_its_own_change():
    views = torch.full((2, 3, 16, 16), 0.5)
    field = torch.cat([offset_field(0.002), offset_field(0.1)])
    settled = settle_small_corrections(field, views)
    assert float(settled[0].abs().max()) == 0.0 and torch.equal(settled[1], field[1])


def test_a_clean_page_keeps_its_colour_where_the_branch_barely_moves_it():
    """The tiler settles the field: a branch whose correction is within its error changes nothing."""
    model = build_model("vit-tiny", img_size=64, page_context=True).eval()
    with torch.no_grad():
        model.page_context.to_field.bias[9:] = 0.004  # a small cast on every page
    page = two_material_page()
    assert np.array_equal(TiledRestorer(model, tile=64, local_scale=0).restore(page), page)
