"""What a run trains on: the training crops, the fixed validation set and the degradation.

`build_train_data` finds the images, decodes each once, and makes the validation set that every
epoch is measured on. For synthetic data it builds the degradation pipeline once: the same
pipeline degrades the validation crops here and the training batches in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from manurestore.batches import to_batch
from manurestore.data.dataset import CropDataset, PageStore, validation_crops
from manurestore.data.folders import find_images, find_pairs, split_train_val
from manurestore.degradations.pipeline import Pipeline
from manurestore.errors import ManurestoreError, UsageError
from manurestore.training.config import TrainConfig
from manurestore.training.distributed import DistInfo


@dataclass
class TrainData:
    """Everything the trainer reads besides its settings; the validation tensors already sit on the device."""

    train: CropDataset
    val_degraded: torch.Tensor  # float (N, 3, H, W) on the device
    val_clean: torch.Tensor
    description: str
    failures: list[tuple[Path, str]]
    pipeline: Pipeline | None  # degrades the training batches on the device; None for real pairs


def build_train_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Find the images, decode them once, make the training crops and the fixed validation set."""
    if cfg.data is None:
        raise UsageError("give the training data folder: manurestore train DATA")
    return _paired_data(cfg, device, dist_info) if cfg.pairs else _synthetic_data(cfg, device, dist_info)


def _page_loader(cfg: TrainConfig) -> Callable[[Sequence[Path]], PageStore]:
    """Decode pages with the run's resize, memory budget and cache."""
    resize_to = cfg.crop if cfg.resize else None
    budget = cfg.memory_budget_mb << 20
    return lambda paths: PageStore.load(paths, resize_to=resize_to, memory_budget=budget, cache_dir=cfg.cache_dir)


def _paired_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Real pairs DATA/degraded + DATA/clean, a seeded share of them held out for validation."""
    load = _page_loader(cfg)
    pairs = list(find_pairs(cfg.data))
    order = np.random.default_rng([cfg.seed, 0x5B1]).permutation(len(pairs))
    n_val = max(1, round(len(pairs) * cfg.val_fraction)) if len(pairs) > 1 else 0
    if n_val == 0:
        raise ManurestoreError(f"{cfg.data}: {len(pairs)} pair(s); at least 2 are needed (one for validation)")
    val_pairs = [pairs[i] for i in order[:n_val]]
    train_pairs = [pairs[i] for i in order[n_val:]]
    degraded, clean = load([d for d, _ in train_pairs]), load([c for _, c in train_pairs])
    val_degraded_store, val_clean_store = load([d for d, _ in val_pairs]), load([c for _, c in val_pairs])
    failures = degraded.failures + clean.failures + val_degraded_store.failures + val_clean_store.failures
    if failures:
        raise ManurestoreError(f"{failures[0][1]} (a pair needs both images readable)")
    train = CropDataset(degraded, clean=clean, crop=cfg.crop, crops_per_image=cfg.crops_per_image, augment=cfg.augment,
                        seed=cfg.seed, rank=dist_info.rank, world_size=dist_info.world_size)
    val = validation_crops(val_clean_store, cfg.crop, cfg.seed, degraded=val_degraded_store)
    description = f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs (paired layout)"
    return TrainData(train, to_batch(val.degraded, device), to_batch(val.clean, device), description, [], pipeline=None)


def _synthetic_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Clean pages, degraded on the device by the preset; validation pages from DATA/val, --val or a split."""
    if cfg.val is not None:
        train_paths = find_images(cfg.data).paths
        val_paths = find_images(cfg.val).paths
        layout = f"{cfg.data} + --val {cfg.val}"
    else:
        split = split_train_val(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, batch_size=1)
        train_paths, val_paths, layout = split.train, split.val, split.layout
    if not train_paths:
        raise ManurestoreError(f"{cfg.data}: no training images found")
    if not val_paths:
        raise ManurestoreError(f"{cfg.data}: no validation images; add DATA/val, pass --val DIR, or set --val-fraction above 0")
    load = _page_loader(cfg)
    store = load(train_paths)
    val_store = load(val_paths)
    if len(val_store) == 0:
        raise ManurestoreError(f"none of the {len(val_paths)} validation images could be read; first problem: {val_store.failures[0][1]}")
    train = CropDataset(store, crop=cfg.crop, crops_per_image=cfg.crops_per_image, augment=cfg.augment and not cfg.resize,
                        seed=cfg.seed, rank=dist_info.rank, world_size=dist_info.world_size)
    pipeline = Pipeline.from_preset(cfg.preset)
    val = validation_crops(val_store, cfg.crop, cfg.seed)
    val_clean = to_batch(val.clean, device)
    with torch.no_grad():
        val_degraded = pipeline(val_clean, torch.tensor(val.seeds, dtype=torch.int64))
    mode = "whole pages resized (seed mode)" if cfg.resize else f"native-resolution {cfg.crop}² crops"
    description = f"{len(store)} training and {len(val_store)} validation pages ({layout}); {mode}"
    return TrainData(train, val_degraded, val_clean, description, store.failures + val_store.failures, pipeline=pipeline)
