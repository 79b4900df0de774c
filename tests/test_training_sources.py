"""Training on several data folders at chosen weights, and the page-context branch that decides
colour once per page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from manurestore.errors import UsageError
from manurestore.training.config import TrainConfig
from manurestore.training.data import build_train_data, excluded
from manurestore.training.distributed import DistInfo
from manurestore.training.run_folder import prepare_run_dir
from manurestore.training.trainer import Trainer

CPU = torch.device("cpu")


def make_pages(folder: Path, count: int, paper=(225, 205, 170), size=(72, 56), seed=0) -> Path:
    """Pages with dark strokes on a paper colour of the caller's choice."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        page = np.full((size[1], size[0], 3), paper, np.uint8)
        for _ in range(12):
            y, x = rng.integers(0, size[1] - 4), rng.integers(0, size[0] - 10)
            page[y : y + 3, x : x + int(rng.integers(4, 10))] = rng.integers(10, 60)
        Image.fromarray(page).save(folder / f"page{i:02d}.png")
    return folder


def config(tmp_path: Path, data, **overrides) -> TrainConfig:
    values = dict(data=data, model="vit-tiny", epochs=1, batch_size=4, crop=32, lr=1e-3, warmup=0.1,
                  perceptual_weight=0.0, seed=3, device="cpu", run_dir=tmp_path / "run", val_fraction=0.25,
                  log_every=1, cache_dir=tmp_path / "cache")
    values.update(overrides)
    return TrainConfig(**values)


def test_data_folders_are_mixed_at_the_asked_weights(tmp_path):
    many = make_pages(tmp_path / "many", 12, seed=1)
    few = make_pages(tmp_path / "few", 4, paper=(120, 80, 40), seed=2)
    data = build_train_data(config(tmp_path, [many, few], mix=[1, 3], crops_per_image=200), CPU, DistInfo())
    train = data.train
    from_few = [str(path).startswith(str(few)) for path in train.store.paths]
    for epoch in (0, 1):
        train.set_epoch(epoch)
        share = np.mean([from_few[page] for page in train._epoch_pages])
        assert share == pytest.approx(0.75, abs=0.03), "3 parts of 4 from the few pages, whatever the page counts"
    unmixed = build_train_data(config(tmp_path, [many, few], crops_per_image=200), CPU, DistInfo()).train
    is_few = [str(path).startswith(str(few)) for path in unmixed.store.paths]
    share = np.mean([is_few[page] for page in unmixed._epoch_pages])
    assert share == pytest.approx(np.mean(is_few), abs=1e-9), "without --mix every page counts the same"


def test_mix_needs_one_positive_weight_per_folder(tmp_path):
    with pytest.raises(ValueError, match="one per folder"):
        TrainConfig(data=["a", "b"], mix=[1.0])
    with pytest.raises(ValueError, match="positive"):
        TrainConfig(data=["a"], mix=[0.0])
    with pytest.raises(ValueError, match="finite"):
        TrainConfig(data=["a"], mix=[float("nan")])


def test_excluded_collections_are_left_out(tmp_path):
    root = tmp_path / "real"
    kept = make_pages(root / "kept-collection", 6, seed=3)
    make_pages(root / "held-out", 4, seed=4)
    assert excluded(root / "held-out" / "page00.png", root, ["held-out"])
    assert excluded(root / "kept-collection" / "page01.png", root, ["*/page01.png"])
    assert not excluded(root / "kept-collection" / "page00.png", root, ["held-out", "kept"])
    data = build_train_data(config(tmp_path, [root], exclude=["held-out"]), CPU, DistInfo())
    assert all(kept in path.parents for path in data.train.store.paths)
    assert data.train.store.paths, "the kept collection still trains"
    with pytest.raises(UsageError, match="held-ot"):
        build_train_data(config(tmp_path, [root], exclude=["held-ot"]), CPU, DistInfo())


def test_with_a_page_context_the_tiles_train_on_local_damage_only(tmp_path):
    data = build_train_data(config(tmp_path, [make_pages(tmp_path / "d", 6)], preset="aged"), CPU, DistInfo())
    assert [step.op.scope for step in data.pipeline.steps] == ["local"] * len(data.pipeline.steps)
    assert {step.op.name for step in data.views.pipeline.steps} >= {"yellowing", "contrast"}
    alone = build_train_data(config(tmp_path, [make_pages(tmp_path / "d", 6)], preset="aged", page_context=False), CPU, DistInfo())
    assert alone.views is None and {step.op.name for step in alone.pipeline.steps} >= {"yellowing"}


@pytest.mark.slow
def test_the_page_context_branch_learns_to_undo_page_level_damage(tmp_path):
    preset = tmp_path / "faded.toml"
    preset.write_text('[[step]]\nop = "contrast"\np = 1.0\nalpha = 0.55\nbeta = 0.25\n'
                      '[[step]]\nop = "yellowing"\np = 1.0\nstrength = 0.8\n')
    brown = make_pages(tmp_path / "brown", 6, paper=(150, 105, 60), seed=5)
    cream = make_pages(tmp_path / "cream", 6, paper=(235, 225, 200), seed=6)
    cfg = config(tmp_path, [brown, cream], preset=str(preset), crops_per_image=30, lr=3e-3, augment=False)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    summary = Trainer(cfg, build_train_data(cfg, CPU, DistInfo()), CPU).run()
    assert summary["last"]["page_psnr"] > summary["identity"]["page_psnr"] + 4.0, summary


def test_no_tiles_trains_the_page_branch_alone(tmp_path):
    preset = tmp_path / "faded.toml"
    preset.write_text('[[step]]\nop = "contrast"\np = 1.0\nalpha = 0.55\nbeta = 0.25\n')
    cfg = config(tmp_path, [make_pages(tmp_path / "brown", 6, paper=(150, 105, 60), seed=7)], preset=str(preset),
                 crops_per_image=20, lr=3e-4, augment=False, tiles=False)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    trainer = Trainer(cfg, build_train_data(cfg, CPU, DistInfo()), CPU)
    tiles_before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if not name.startswith("page_context.")}
    summary = trainer.run()
    assert all(torch.equal(p, tiles_before[name]) for name, p in trainer.model.named_parameters() if name in tiles_before)
    assert summary["last"]["page_psnr"] > summary["identity"]["page_psnr"] + 3.0, summary
    validations = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert summary["best_psnr"] == max(v["page_psnr"] for v in validations if v["kind"] == "val"), "best = best page views"


def test_no_tiles_needs_a_page_branch(tmp_path):
    cfg = config(tmp_path, [make_pages(tmp_path / "d", 6)], tiles=False, page_context=False)
    with pytest.raises(UsageError, match="--no-tiles"):
        Trainer(cfg, build_train_data(cfg, CPU, DistInfo()), CPU)


def test_a_run_stopped_by_its_time_limit_is_validated_and_leaves_best_weights(tmp_path):
    cfg = config(tmp_path, [make_pages(tmp_path / "d", 6)], epochs=50, val_every=10, time_limit=0.01, page_context=False)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    summary = Trainer(cfg, build_train_data(cfg, CPU, DistInfo()), CPU).run()
    assert summary["stop_reason"] == "time limit" and summary["steps"] < 10
    assert summary["last"] and (cfg.run_dir / "best.safetensors").exists()
