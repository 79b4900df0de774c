"""Crops cut on the device: the same batches and seeds as CropDataset on the host, bit for bit, so
a run trains the same either way and may switch paths when resumed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.data.dataset import CropDataset, PageStore, reflect_pad
from manurestore.errors import UsageError
from manurestore.training.config import TrainConfig, build_config
from manurestore.training.data import build_train_data
from manurestore.training.device_crops import DeviceCrops, DevicePages, mirror
from manurestore.training.distributed import DistInfo
from manurestore.training.run_folder import check_resume_config, prepare_run_dir
from manurestore.training.trainer import Trainer, TrainingInterrupted
from tests.test_training import make_pages

CPU = torch.device("cpu")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# (height, width): larger than the crop, smaller (mirrored once or several times), thin, exact.
SIZES = [(40, 56), (20, 12), (33, 90), (32, 32), (100, 70), (7, 50), (3, 2)]


def pages(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


def store(seed: int = 0) -> PageStore:
    found = pages(seed)
    return PageStore(paths=[Path(f"page{i}.png") for i in range(len(found))], pages=found)


def host_batches(dataset: CropDataset, epoch: int, first: int, batch_size: int):
    """Batches as Trainer._loader's DataLoader gives them."""
    dataset.set_epoch(epoch)
    usable = len(dataset) // batch_size * batch_size
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=range(first, usable), drop_last=True)
    return list(loader)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("augment", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_device_batches_equal_the_host_batches(augment, weighted, device):
    weights = np.arange(1, len(SIZES) + 1, dtype=float) if weighted else None
    settings = dict(crop=32, crops_per_image=5, augment=augment, seed=11,
                    page_weights=None if weights is None else weights / weights.sum())
    host = CropDataset(store(), **settings)
    device_side = CropDataset(store(), **settings)  # its own pages: the device buffer takes them over
    crops = DeviceCrops(device_side, DevicePages(device_side.store, torch.device(device)))
    batch_size, compared = 4, 0
    for epoch, first in ((0, 0), (1, 8), (2, 0)):
        usable = len(host) // batch_size * batch_size
        expected = host_batches(host, epoch, first, batch_size)
        got = list(crops.batches(epoch, first, usable, batch_size))
        assert len(got) == len(expected) > 0
        for (want, want_seeds), (have, have_seeds) in zip(expected, got):
            assert have.dtype == torch.uint8 and have.shape == want.shape == (batch_size, 32, 32, 3)
            assert have.device.type == device and have_seeds.device.type == "cpu"
            assert torch.equal(have.cpu(), want) and torch.equal(have_seeds, want_seeds)
            compared += 1
    assert compared >= 12


def test_every_symmetry_every_page_and_a_crop_larger_than_twice_a_page():
    for crop in (16, 64):
        host = CropDataset(store(1), crop=crop, crops_per_image=40, seed=2)
        device_side = CropDataset(store(1), crop=crop, crops_per_image=40, seed=2)
        crops = DeviceCrops(device_side, DevicePages(device_side.store, CPU))
        indices = range(len(host))
        choices = [host.choice(i) for i in indices]
        assert {c.symmetry for c in choices} == set(range(8)) and {c.page for c in choices} == set(range(len(SIZES)))
        expected = torch.stack([host[i][0] for i in indices])
        got, seeds = crops.batch(indices)
        assert torch.equal(got, expected)
        assert seeds.tolist() == [host[i][1] for i in indices]


def test_ranks_cut_their_own_shards():
    for rank in (0, 1):
        host = CropDataset(store(), crop=32, crops_per_image=4, seed=1, rank=rank, world_size=2)
        device_side = CropDataset(store(), crop=32, crops_per_image=4, seed=1, rank=rank, world_size=2)
        crops = DeviceCrops(device_side, DevicePages(device_side.store, CPU))
        for (want, want_seeds), (have, have_seeds) in zip(host_batches(host, 0, 0, 2), crops.batches(0, 0, len(host), 2), strict=True):
            assert torch.equal(have, want) and torch.equal(have_seeds, want_seeds)


def test_mirror_is_reflect_pad_repeated():
    for length in (1, 2, 3, 7, 32):
        expected = reflect_pad(np.arange(length).reshape(length, 1, 1), 100, 1)[:, 0, 0]
        got = mirror(torch.arange(100), torch.tensor(length))
        assert got.tolist() == expected.tolist(), length


def test_on_the_cpu_the_pages_are_held_once():
    pages_store = store()
    before = [page.copy() for page in pages_store.pages]
    device_pages = DevicePages(pages_store, CPU)
    base = device_pages.flat.numpy()
    for old, page in zip(before, pages_store.pages):
        assert np.shares_memory(page, base) and np.array_equal(page, old)


# --------------------------------------------------------------------------------------------
# In the trainer


def config(tmp_path: Path, run: str, **overrides) -> TrainConfig:
    """Two folders of different page sizes, mixed; the page-context branch on (its views move too)."""
    data = [make_pages(tmp_path / "wide", 4, (72, 56), 0), make_pages(tmp_path / "small", 4, (40, 24), 1)]
    values = dict(data=data, mix=[1, 2], model="vit-tiny", epochs=2, batch_size=2, crop=32, crops_per_image=2,
                  lr=1e-3, warmup=0.1, perceptual_weight=0.0, seed=5, device="cpu", run_dir=tmp_path / run,
                  val_fraction=0.25, log_every=1, cache_dir=tmp_path / "cache")
    values.update(overrides)
    return TrainConfig(**values)


def make_trainer(cfg: TrainConfig, on_event=None) -> Trainer:
    return Trainer(cfg, build_train_data(cfg, CPU, DistInfo()), CPU, on_event=on_event)


def train_losses(run_dir: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["total"] for r in lines if r["kind"] == "train"}


def test_training_gives_the_same_losses_on_either_path_and_resumes_across_them(tmp_path):
    losses = {}
    for run, on_device in (("host", False), ("device", True)):
        cfg = config(tmp_path, run, crops_on_device=on_device)
        prepare_run_dir(cfg, resume=False, overwrite=False)
        trainer = make_trainer(cfg)
        assert (trainer.device_crops is not None) == on_device
        trainer.run()
        losses[run] = train_losses(cfg.run_dir)
    assert len(losses["host"]) >= 6 and losses["device"] == losses["host"]

    # Started on the device, stopped, resumed on the host: the same losses as never stopping.
    cfg = config(tmp_path, "switched", crops_on_device=True)
    prepare_run_dir(cfg, resume=False, overwrite=False)

    def interrupt(kind, payload):
        if kind == "step" and payload["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        make_trainer(cfg, on_event=interrupt).run()
    resumed = make_trainer(config(tmp_path, "switched", crops_on_device=False))
    resumed.load_state_dict(torch.load(cfg.run_dir / "state.pt", weights_only=True))
    resumed.run()
    assert train_losses(cfg.run_dir) == losses["host"]


def test_memory_mapped_pages_stay_on_the_host_with_a_warning(tmp_path):
    warnings = []
    cfg = config(tmp_path, "run", crops_on_device=True, memory_budget_mb=0)
    trainer = make_trainer(cfg, on_event=lambda kind, payload: warnings.append(payload.get("message", "")))
    assert trainer.device_crops is None
    assert any("cut on the host" in message and "--memory-budget-mb" in message for message in warnings)


def test_the_default_is_on_for_cuda_only(tmp_path):
    assert make_trainer(config(tmp_path, "run")).device_crops is None  # auto, on the CPU


def test_the_setting_is_stored_and_old_runs_without_it_resume(tmp_path):
    cfg = config(tmp_path, "run", crops_on_device=True)
    saved = json.loads(cfg.model_dump_json())
    assert saved["crops_on_device"] is True
    old = {key: value for key, value in saved.items() if key != "crops_on_device"}
    assert TrainConfig(**old).crops_on_device is None  # a config.json from before the option
    check_resume_config(old, cfg)  # switching paths keeps the losses: allowed on resume
    with pytest.raises(UsageError, match="--pairs cuts its crops on the host"):
        build_config({}, {"data": [tmp_path], "pairs": True, "crops_on_device": True})


def test_cli_flags():
    runner = CliRunner()
    for flag, value in (("--crops-on-device", True), ("--crops-on-host", False)):
        result = runner.invoke(app, ["train", "data", "--dry-run", flag])
        assert result.exit_code == 0, result.output
        assert f'"crops_on_device": {json.dumps(value)}' in result.stdout
