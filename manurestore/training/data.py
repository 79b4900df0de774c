"""What a run trains on: the training crops, the fixed validation set and the degradation.

`build_train_data` finds the images, decodes each once, and makes the validation set that every
epoch is measured on. For synthetic data it builds the degradation pipeline once: the same
pipeline degrades the validation crops here and the training batches in the loop.

Several data folders (real scans and `synth` pages, say) are sources mixed at chosen weights:
each training crop's page is drawn from source k with probability mix[k] / sum(mix).

With a page-context branch, the tiles train on the preset's local damage only and the branch
on whole-page views (`PageViews`) under all of it: page-level damage (yellowing, fading, uneven
light) is undone once per page, never decided by a tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from manurestore.batches import to_batch
from manurestore.data.dataset import CropDataset, PageStore, validation_crops
from manurestore.data.folders import find_images, find_pairs, matches_selection, split_train_val
from manurestore.degradations.pipeline import Pipeline
from manurestore.devices import to_device
from manurestore.errors import ManurestoreError, UsageError
from manurestore.seeding import image_seed
from manurestore.training.config import TrainConfig
from manurestore.training.distributed import DistInfo


VIEW_SIDE = 256  # whole pages are kept squashed to this size for the page-context branch


@dataclass
class PageViews:
    """Whole pages squashed to VIEW_SIDE² (uint8, on the host, or on the device with the crops) for
    the page-context branch, with the probability of drawing each; and the fixed validation views,
    already degraded."""

    train: torch.Tensor  # uint8 (N, VIEW_SIDE, VIEW_SIDE, 3)
    weights: np.ndarray  # (N,) probabilities, summing to 1
    val_clean: torch.Tensor  # float (M, 3, VIEW_SIDE, VIEW_SIDE) on the device
    val_degraded: torch.Tensor
    pipeline: Pipeline  # every step of the preset: the branch must undo the page-level damage

    def batch(self, step: int, size: int, seed: int) -> tuple[torch.Tensor, list[int]]:
        """The step's views (uint8) and their degradation seeds, the same on every resume."""
        rng = np.random.default_rng([seed, step, 0x9A6E])
        chosen = rng.choice(len(self.train), size=size, p=self.weights)
        seeds = [image_seed(seed, f"page/{step}/{i}") for i in range(size)]
        return self.train[to_device(chosen, self.train.device)], seeds


@dataclass
class TrainData:
    """Everything the trainer reads besides its settings; the validation tensors already sit on the device."""

    train: CropDataset
    val_degraded: torch.Tensor  # float (N, 3, H, W) on the device
    val_clean: torch.Tensor
    description: str
    failures: list[tuple[Path, str]]
    pipeline: Pipeline | None  # degrades the training crops on the device; None for real pairs
    views: PageViews | None = None  # for the page-context branch


@dataclass
class Source:
    """One data folder's training and validation images."""

    root: Path
    train: list[Path]
    val: list[Path]
    layout: str


def build_train_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Find the images, decode them once, make the training crops and the fixed validation set."""
    if not cfg.data:
        raise UsageError("give the training data folder: manurestore train DATA [DATA ...]")
    return _paired_data(cfg, device, dist_info) if cfg.pairs else _synthetic_data(cfg, device, dist_info)


def _page_loader(cfg: TrainConfig) -> Callable[[Sequence[Path]], PageStore]:
    """Decode pages with the run's resize, memory budget and cache."""
    resize_to = cfg.crop if cfg.resize else None
    budget = cfg.memory_budget_mb << 20
    return lambda paths: PageStore.load(paths, resize_to=resize_to, memory_budget=budget, cache_dir=cfg.cache_dir)


def _paired_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Real pairs DATA/degraded + DATA/clean, a seeded share of them held out for validation."""
    load = _page_loader(cfg)
    (root,) = cfg.data
    pairs = list(find_pairs(root))
    order = np.random.default_rng([cfg.seed, 0x5B1]).permutation(len(pairs))
    n_val = max(1, round(len(pairs) * cfg.val_fraction)) if len(pairs) > 1 else 0
    if n_val == 0:
        raise ManurestoreError(f"{root}: {len(pairs)} pair(s); at least 2 are needed (one for validation)")
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


def _sources(cfg: TrainConfig) -> list[Source]:
    """Each data folder's images, split into training and validation, less the excluded ones."""
    sources, used = [], set()
    for root in cfg.data:
        if cfg.val is not None:
            source = Source(root, find_images(root).paths, [], f"{root}")
        else:
            split = split_train_val(root, val_fraction=cfg.val_fraction, seed=cfg.seed, batch_size=1)
            source = Source(root, split.train, split.val, split.layout)
        for pattern in cfg.exclude:
            if any(excluded(path, root, [pattern]) for path in source.train + source.val):
                used.add(pattern)
        kept_train = [path for path in source.train if not excluded(path, root, cfg.exclude)]
        kept_val = [path for path in source.val if not excluded(path, root, cfg.exclude)]
        if len(kept_train) + len(kept_val) < len(source.train) + len(source.val):
            source.layout += (f"; --exclude left out {len(source.train) - len(kept_train)} train and "
                              f"{len(source.val) - len(kept_val)} val images")
        source.train, source.val = kept_train, kept_val
        if not source.train:
            raise ManurestoreError(f"{root}: no training images found" + (" (after --exclude)" if cfg.exclude else ""))
        sources.append(source)
    unused = [pattern for pattern in cfg.exclude if pattern not in used]
    if unused:  # a misspelt held-out collection must not slip into training
        raise UsageError(f"--exclude {unused[0]!r}: matches no image in {cfg.data_label}")
    if cfg.val is not None:
        sources[0].val = find_images(cfg.val).paths
        sources[0].layout += f" + --val {cfg.val}"
    if not any(source.val for source in sources):
        raise ManurestoreError(f"{cfg.data_label}: no validation images; add DATA/val, pass --val DIR, or set --val-fraction above 0")
    return sources


def excluded(path: Path, root: Path, patterns: Sequence[str]) -> bool:
    """Whether `path` (inside `root`) is left out by a pattern, by the rule `evaluate --exclude`
    follows (`matches_selection`): a first-level folder, or a glob over the relative path."""
    relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
    return any(matches_selection(relative, pattern) for pattern in patterns)


def _page_weights(counts: list[int], mix: list[float] | None) -> np.ndarray | None:
    """Each page's probability of being drawn: a source's weight shared among its pages."""
    if mix is None:
        return None
    weights = np.concatenate([np.full(count, weight / count) for count, weight in zip(counts, mix) if count])
    return weights / weights.sum()


def _synthetic_data(cfg: TrainConfig, device: torch.device, dist_info: DistInfo) -> TrainData:
    """Clean pages, degraded on the device by the preset; validation pages from DATA/val, --val or a split."""
    sources = _sources(cfg)
    load = _page_loader(cfg)
    stores = [load(source.train) for source in sources]
    store = PageStore.concatenate(stores)
    val_store = load([path for source in sources for path in source.val])
    if len(val_store) == 0:
        raise ManurestoreError(f"none of the validation images could be read; first problem: {val_store.failures[0][1]}")
    page_weights = _page_weights([len(part) for part in stores], cfg.mix)
    train = CropDataset(store, crop=cfg.crop, crops_per_image=cfg.crops_per_image, augment=cfg.augment and not cfg.resize,
                        seed=cfg.seed, page_weights=page_weights, rank=dist_info.rank, world_size=dist_info.world_size)
    preset = Pipeline.from_preset(cfg.preset)
    pipeline = preset.only("local") if cfg.uses_page_context else preset
    val = validation_crops(val_store, cfg.crop, cfg.seed)
    val_clean = to_batch(val.clean, device)
    with torch.no_grad():
        val_degraded = pipeline(val_clean, torch.tensor(val.seeds, dtype=torch.int64))
    views = _page_views(store, val_store, page_weights, preset, cfg.seed, device) if cfg.uses_page_context else None
    mode = "whole pages resized (seed mode)" if cfg.resize else f"native-resolution {cfg.crop}² crops"
    layouts = "; ".join(source.layout for source in sources)
    mixed = "" if cfg.mix is None else ", mixed " + ":".join(f"{w:g}" for w in cfg.mix)
    description = f"{len(store)} training and {len(val_store)} validation pages ({layouts}{mixed}); {mode}"
    if views is not None:
        description += f"; page context from {VIEW_SIDE}² page views, tiles on the preset's local damage"
    return TrainData(train, val_degraded, val_clean, description, store.failures + val_store.failures,
                     pipeline=pipeline, views=views)


def _page_views(store: PageStore, val_store: PageStore, weights: np.ndarray | None, preset: Pipeline, seed: int,
                device: torch.device) -> PageViews:
    """Every page squashed to VIEW_SIDE², and the validation pages' views degraded once."""
    train = torch.from_numpy(np.stack([squash(page) for page in store.pages]))
    val_clean = to_batch([squash(page) for page in val_store.pages], device)
    val_seeds = torch.tensor([image_seed(seed, f"page-val/{i}") for i in range(len(val_store))], dtype=torch.int64)
    with torch.no_grad():
        val_degraded = preset(val_clean, val_seeds)
    uniform = np.full(len(store), 1.0 / len(store))
    return PageViews(train, uniform if weights is None else weights, val_clean, val_degraded, preset)


def squash(page: np.ndarray) -> np.ndarray:
    """A whole page averaged down (or up) to VIEW_SIDE² pixels, its aspect ratio not kept."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(page)).resize((VIEW_SIDE, VIEW_SIDE), Image.BOX))
