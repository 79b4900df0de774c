"""Training: learning, exact resume, checkpoints, data layouts, DDP smoke test and CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.data.dataset import PageStore, validation_crops
from manurestore.errors import UsageError
from manurestore.models.checkpoint import load_model, read_metadata
from manurestore.training.config import TrainConfig
from manurestore.training.data import build_train_data
from manurestore.training.distributed import DistInfo
from manurestore.training.run_folder import check_resume_config, prepare_run_dir, read_run_config, write_run_config
from manurestore.training.trainer import Trainer, TrainingInterrupted, lr_at

runner = CliRunner()


@pytest.fixture(autouse=True)
def working_dir_stays_empty(tmp_path_factory, monkeypatch):
    """Run each test in an empty folder and fail it if anything lands there: a test that falls back
    on a default path (TrainConfig's run_dir is runs/latest) would otherwise write into the repository."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    yield
    left = sorted(str(path.relative_to(cwd)) for path in cwd.rglob("*"))
    assert not left, f"the test wrote into the working directory: {left}; give it paths under tmp_path"


def make_pages(folder: Path, count: int, size=(72, 56), seed=0) -> Path:
    """Pages with dark 'text' strokes on light paper, so there is structure to restore."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        page = np.full((size[1], size[0], 3), (225, 205, 170), np.uint8)
        for _ in range(12):
            y, x = rng.integers(0, size[1] - 4), rng.integers(0, size[0] - 10)
            page[y : y + 3, x : x + int(rng.integers(4, 10))] = rng.integers(10, 60)
        Image.fromarray(page).save(folder / f"page{i:02d}.png")
    return folder


def fixed_contrast_preset(tmp_path: Path) -> Path:
    preset = tmp_path / "fixed.toml"
    preset.write_text('[[step]]\nop = "contrast"\np = 1.0\nalpha = 0.6\nbeta = 0.2\n')
    return preset


def config(tmp_path: Path, **overrides) -> TrainConfig:
    values = dict(
        data=make_pages(tmp_path / "data", 6), model="vit-tiny", epochs=2, batch_size=2, crop=32,
        crops_per_image=2, lr=1e-3, warmup=0.1, perceptual_weight=0.0, seed=5, device="cpu",
        run_dir=tmp_path / "run", val_fraction=0.34, log_every=1, cache_dir=tmp_path / "cache",
    )
    values.update(overrides)
    return TrainConfig(**values)


def make_trainer(cfg: TrainConfig, on_event=None) -> Trainer:
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())
    return Trainer(cfg, data, torch.device("cpu"), on_event=on_event)


def train_losses(run_dir: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["total"] for r in lines if r["kind"] == "train"}


def test_lr_schedule_warms_up_then_decays_to_zero():
    values = [lr_at(step, 100, 1e-3, 10) for step in range(100)]
    assert values[0] == pytest.approx(1e-4) and values[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert lr_at(100, 100, 1e-3, 10) == pytest.approx(0.0)


@pytest.mark.slow
def test_tiny_model_learns_to_undo_a_fixed_degradation(tmp_path):
    # Tiles alone: with a page-context branch, contrast (page-level damage) would be left to it.
    cfg = config(tmp_path, preset=str(fixed_contrast_preset(tmp_path)), epochs=1, crops_per_image=60, batch_size=4, augment=False, lr=2e-3,
                 page_context=False)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    summary = make_trainer(cfg).run()
    assert summary["last"]["psnr"] > summary["identity"]["psnr"] + 3.0, summary


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    straight = config(tmp_path, run_dir=tmp_path / "straight", epochs=3)
    prepare_run_dir(straight, resume=False, overwrite=False)
    make_trainer(straight).run()

    resumed = config(tmp_path, run_dir=tmp_path / "resumed", epochs=3)
    prepare_run_dir(resumed, resume=False, overwrite=False)

    def interrupt(kind, payload):
        if kind == "step" and payload["step"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="--resume"):
        make_trainer(resumed, on_event=interrupt).run()
    state = torch.load(resumed.run_dir / "state.pt", weights_only=True)
    assert state["step"] == 5
    trainer = make_trainer(resumed)
    trainer.load_state_dict(state)
    trainer.run()
    expected, got = train_losses(straight.run_dir), train_losses(resumed.run_dir)
    assert sorted(got) == sorted(expected) and len(expected) >= 6
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), step


def test_checkpoint_round_trip(tmp_path):
    cfg = config(tmp_path, epochs=1)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    trainer = make_trainer(cfg)
    trainer.run()
    model, metadata = load_model(cfg.run_dir / "best.safetensors")
    assert metadata["model_name"] == "vit-tiny" and metadata["train_crop"] == 32 and "psnr" in metadata["metrics"]
    x = torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trainer.model.eval()(x))
    state = torch.load(cfg.run_dir / "state.pt", weights_only=True)
    assert {"model", "optimizer", "step", "torch_rng"} <= set(state)
    assert read_metadata(cfg.run_dir / "last.safetensors")["format"] == "manurestore-checkpoint-1"
    assert (cfg.run_dir / "samples" / "epoch-001.png").exists()
    config_json = json.loads((cfg.run_dir / "config.json").read_text()) if (cfg.run_dir / "config.json").exists() else None
    assert config_json is None  # the library does not write config.json; the CLI does (tested below)


def test_half_precision_weights_files_load_as_float32(tmp_path):
    cfg = config(tmp_path, epochs=1, weights_dtype="fp16")
    prepare_run_dir(cfg, resume=False, overwrite=False)
    trainer = make_trainer(cfg)
    trainer.run()
    stored = load_file(str(cfg.run_dir / "best.safetensors"))
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    full = {name: value.float() for name, value in trainer.model.state_dict().items()}
    assert (cfg.run_dir / "best.safetensors").stat().st_size < 0.6 * sum(v.numel() * 4 for v in full.values())
    model, _ = load_model(cfg.run_dir / "best.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trainer.model.eval()(x), atol=5e-3, rtol=0)


def test_paired_data_trains(tmp_path):
    clean = make_pages(tmp_path / "pairs" / "clean", 5, seed=1)
    degraded = tmp_path / "pairs" / "degraded"
    degraded.mkdir()
    for path in clean.iterdir():
        array = np.asarray(Image.open(path)).astype(np.float32) * 0.7 + 30
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(degraded / path.name)
    cfg = config(tmp_path, data=tmp_path / "pairs", pairs=True, epochs=1)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    summary = make_trainer(cfg).run()
    assert summary["steps"] > 0 and np.isfinite(summary["last"]["psnr"])


def test_overwrite_removes_only_what_a_run_writes_and_resume_needs_the_runs_settings(tmp_path):
    cfg = config(tmp_path)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    write_run_config(cfg)
    (cfg.run_dir / "samples").mkdir()
    (cfg.run_dir / "notes.txt").write_text("the user's own file")
    with pytest.raises(UsageError, match="holds a run stopped before its first save"):
        prepare_run_dir(cfg, resume=False, overwrite=False)
    check_resume_config(read_run_config(cfg.run_dir), cfg.model_copy(update={"epochs": 9}))  # a resumable change
    with pytest.raises(UsageError, match="crop"):
        check_resume_config(read_run_config(cfg.run_dir), cfg.model_copy(update={"crop": 48}))
    prepare_run_dir(cfg, resume=False, overwrite=True)
    assert [path.name for path in cfg.run_dir.iterdir()] == ["notes.txt"]
    with pytest.raises(UsageError, match="state.pt"):
        prepare_run_dir(cfg, resume=True, overwrite=False)
    with pytest.raises(UsageError, match="config.json"):
        check_resume_config(read_run_config(cfg.run_dir), cfg)


def test_validation_crops_cut_the_same_windows_from_both_pages_of_a_pair(tmp_path):
    store = PageStore.load(sorted(make_pages(tmp_path / "pages", 3).iterdir()), cache_dir=tmp_path / "cache")
    synthetic = validation_crops(store, 32, seed=1)
    assert synthetic.degraded is None
    assert synthetic.clean.shape == (24, 32, 32, 3) and synthetic.clean.dtype == torch.uint8  # 8 per page
    assert len(synthetic.seeds) == 24 and len(set(synthetic.seeds)) == 24
    paired = validation_crops(store, 32, seed=1, degraded=store)  # a page paired with itself
    assert torch.equal(paired.degraded, paired.clean) and torch.equal(paired.clean, synthetic.clean)
    assert paired.seeds == synthetic.seeds


def test_resize_mode_reproduces_the_seed_whole_page_resize(tmp_path):
    cfg = config(tmp_path, resize=True, epochs=1)
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())
    assert all(page.shape == (32, 32, 3) for page in data.train.store.pages)


def test_page_cache_is_reused(tmp_path):
    cfg = config(tmp_path, memory_budget_mb=0)
    first = build_train_data(cfg, torch.device("cpu"), DistInfo())
    assert first.train.store.cache_hits == 0
    assert isinstance(first.train.store.pages[0], np.memmap)
    again = build_train_data(cfg, torch.device("cpu"), DistInfo())
    assert again.train.store.cache_hits == len(again.train.store)


def test_crops_have_the_right_shape_dtype_and_cover_the_page(tmp_path):
    cfg = config(tmp_path, crops_per_image=40)
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())
    seen = np.zeros(data.train.store.pages[0].shape[:2], bool)
    for index in range(len(data.train)):
        crop, seed = data.train[index]
        assert crop.shape == (32, 32, 3) and crop.dtype == torch.uint8 and isinstance(seed, int)
    assert data.val_clean.shape[1:] == (3, 32, 32)
    # Random crop corners reach every part of a page over enough draws.
    from manurestore.data.dataset import CropDataset

    single = CropDataset(data.train.store, crop=32, crops_per_image=200, augment=False, seed=1)
    page = data.train.store.pages[0]
    for index in range(len(single)):
        crop, _ = single[index]
        if torch.equal(crop, torch.from_numpy(np.ascontiguousarray(page[:32, :32]))):
            seen[:32, :32] = True
    assert len({single[i][1] for i in range(20)}) == 20  # distinct degradation seeds


def test_small_pages_are_reflect_padded(tmp_path):
    cfg = config(tmp_path, data=make_pages(tmp_path / "tiny", 4, size=(20, 12)), crop=32)
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())
    crop, _ = data.train[0]
    assert crop.shape == (32, 32, 3)


def test_ddp_shards_are_disjoint(tmp_path):
    cfg = config(tmp_path, crops_per_image=3)
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())
    from manurestore.data.dataset import CropDataset

    ranks = [CropDataset(data.train.store, crop=32, crops_per_image=3, seed=5, rank=r, world_size=2) for r in range(2)]
    seeds = [{ranks[r][i][1] for i in range(len(ranks[r]))} for r in range(2)]
    assert not seeds[0] & seeds[1]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_train_writes_the_run_directory_and_refuses_to_mix_runs(tmp_path):
    data = make_pages(tmp_path / "data", 6)
    common = ["train", data, "--model", "vit-tiny", "--epochs", "1", "--batch-size", "2", "--crop", "32",
              "--run-dir", tmp_path / "run", "--device", "cpu", "--cache-dir", tmp_path / "cache", "--val-fraction", "0.34"]
    result = invoke(*common)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.jsonl", "best.safetensors", "last.safetensors", "state.pt"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == "vit-tiny"
    assert "no VGG16 weights" in result.output
    again = invoke(*common)
    assert again.exit_code == 2 and "already holds a run" in again.output
    assert invoke(*common, "--overwrite").exit_code == 0
    changed = invoke(*common[:-6], "--crop", "48", "--run-dir", tmp_path / "run", "--resume", "--cache-dir", tmp_path / "cache")
    assert changed.exit_code == 2 and "crop" in changed.output
    resumed = invoke("train", data, "--run-dir", tmp_path / "run", "--resume", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output


def test_cli_config_file_and_flags(tmp_path):
    data = make_pages(tmp_path / "data", 6)
    settings = tmp_path / "train.toml"
    settings.write_text(f'model = "vit-tiny"\nepochs = 1\nbatch_size = 2\ncrop = 32\nval_fraction = 0.34\ncache_dir = "{tmp_path / "cache"}"\n')
    result = invoke("train", data, "--config", settings, "--run-dir", tmp_path / "r", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["batch_size"] == 3 and saved["model"] == "vit-tiny"
    bad = tmp_path / "bad.toml"
    bad.write_text("batchsize = 2\n")
    result = invoke("train", data, "--config", bad)
    assert result.exit_code == 2 and "batchsize" in result.output


def test_cli_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("train", empty, "--model", "vit-tiny", "--run-dir", tmp_path / "r1")
    assert result.exit_code != 0 and "empty" in result.output
    few = make_pages(tmp_path / "few", 4)
    result = invoke("train", few, "--model", "vit-tiny", "--batch-size", "16", "--crop", "32", "--run-dir", tmp_path / "r2", "--cache-dir", tmp_path / "c")
    assert result.exit_code != 0 and "batch" in result.output
    result = invoke("train", few, "--model", "vit-huge", "--run-dir", tmp_path / "r3")
    assert result.exit_code != 0 and "vit-huge" in result.output
    result = invoke("train", tmp_path / "missing", "--run-dir", tmp_path / "r4")
    assert result.exit_code == 2


def test_unreadable_files_are_reported_and_skipped(tmp_path):
    data = make_pages(tmp_path / "data", 7)
    (data / "broken.png").write_bytes(b"not a png")
    result = invoke("train", data, "--model", "vit-tiny", "--epochs", "1", "--batch-size", "2", "--crop", "32",
                    "--run-dir", tmp_path / "run", "--cache-dir", tmp_path / "cache", "--val-fraction", "0.3")
    assert result.exit_code == 0, result.output
    assert "broken.png" in result.output


def test_dry_run_lists_every_model():
    result = invoke("train", "--dry-run")
    assert result.exit_code == 0
    for name in ("vit-tiny", "vit-small", "vit-base"):
        assert name in result.output
    assert "GFLOPs" in result.output


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_with_gloo(tmp_path):
    data = make_pages(tmp_path / "data", 8)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MANURESTORE_PLUGINS": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "manurestore", "train", str(data), "--model", "vit-tiny", "--max-steps", "3", "--batch-size", "2",
               "--crop", "32", "--crops-per-image", "2", "--run-dir", str(tmp_path / "run"), "--device", "cpu",
               "--cache-dir", str(tmp_path / "cache"), "--val-fraction", "0.25"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    assert "2 process(es)" in completed.stderr
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["step"] == 3


def test_fine_tuning_starts_from_given_weights(tmp_path):
    first = config(tmp_path, run_dir=tmp_path / "first", epochs=1)
    prepare_run_dir(first, resume=False, overwrite=False)
    make_trainer(first).run()
    tuned = config(tmp_path, run_dir=tmp_path / "tuned", init_weights=first.run_dir / "best.safetensors")
    trainer = make_trainer(tuned)
    loaded, _ = load_model(first.run_dir / "best.safetensors")
    for name, value in loaded.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    wrong = config(tmp_path, run_dir=tmp_path / "wrong", model="vit-small", init_weights=first.run_dir / "best.safetensors")
    with pytest.raises(Exception, match="vit-tiny"):
        make_trainer(wrong)


def test_dataloader_workers_give_the_same_batches(tmp_path):
    cfg = config(tmp_path, memory_budget_mb=0)  # every page memory-mapped from the cache
    data = build_train_data(cfg, torch.device("cpu"), DistInfo())

    def batches(workers):
        loader = torch.utils.data.DataLoader(data.train, batch_size=2, num_workers=workers)
        return [(crops.clone(), seeds.clone()) for crops, seeds in loader]

    for (a, sa), (b, sb) in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b) and torch.equal(sa, sb)
