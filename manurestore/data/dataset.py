"""Training data: pages decoded once, native-resolution random crops as uint8.

`PageStore` decodes each page once and keeps it as uint8 H×W×3: in RAM up to a memory budget,
beyond it in an on-disk cache of `.npy` files (keyed by the file's content and the settings,
reused across runs) opened as memory maps. Memory maps and fork-shared RAM pages are not copied
into DataLoader workers.

`CropDataset` yields random crops at native resolution (pages smaller than the crop are reflect
padded), optionally flipped and rotated by multiples of 90°, each with the seed that its
degradation will use. Crops are uint8 (H, W, C); float conversion and degradation happen on the
device in the training loop. Every choice derives from (seed, epoch, index), so a run can stop
and resume at any step and see the same data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from manurestore.data.io import read_image
from manurestore.seeding import image_seed
from manurestore.errors import ManurestoreError

CACHE_VERSION = "1"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "manurestore" / "pages"


@dataclass
class PageStore:
    """Decoded uint8 RGB pages, in RAM up to `memory_budget` bytes, memory-mapped beyond it."""

    paths: list[Path]
    pages: list[np.ndarray] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    bytes_in_memory: int = 0
    cache_hits: int = 0

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        *,
        resize_to: int | None = None,
        memory_budget: int = 2 << 30,
        cache_dir: Path | None = None,
    ) -> "PageStore":
        store = cls(paths=[])
        cache_dir = cache_dir or default_cache_dir()
        for path in paths:
            try:
                page = store._decode_or_cache(Path(path), resize_to, memory_budget, cache_dir)
            except ManurestoreError as error:
                store.failures.append((Path(path), str(error)))
                continue
            store.paths.append(Path(path))
            store.pages.append(page)
        return store

    def _decode_or_cache(self, path: Path, resize_to: int | None, budget: int, cache_dir: Path) -> np.ndarray:
        key = _cache_key(path, resize_to)
        cached = cache_dir / f"{key}.npy"
        if cached.exists():
            self.cache_hits += 1
            try:
                return self._keep(np.load(cached, mmap_mode="r"), budget, cached, in_cache=True)
            except (OSError, ValueError):
                cached.unlink(missing_ok=True)  # a damaged cache entry is rebuilt
        page = read_image(path, mode="RGB")
        if resize_to is not None:
            page = np.asarray(Image.fromarray(page).resize((resize_to, resize_to), Image.BICUBIC))
        return self._keep(page, budget, cached, in_cache=False)

    def _keep(self, page: np.ndarray, budget: int, cached: Path, in_cache: bool) -> np.ndarray:
        if self.bytes_in_memory + page.nbytes <= budget:
            self.bytes_in_memory += page.nbytes
            return np.array(page) if in_cache else page
        if not in_cache:
            _save_npy(cached, page)
        return np.load(cached, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.pages)

    @classmethod
    def concatenate(cls, stores: Sequence["PageStore"]) -> "PageStore":
        """One store holding the pages of several, in order (several data folders)."""
        joined = cls(paths=[])
        for store in stores:
            joined.paths += store.paths
            joined.pages += store.pages
            joined.failures += store.failures
            joined.bytes_in_memory += store.bytes_in_memory
            joined.cache_hits += store.cache_hits
        return joined


def _cache_key(path: Path, resize_to: int | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{CACHE_VERSION};resize={resize_to};".encode())
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def _save_npy(path: Path, page: np.ndarray) -> None:
    from manurestore.atomic import atomic_write

    def write(temp: Path) -> None:
        with open(temp, "wb") as stream:
            np.save(stream, page)

    atomic_write(path, write)


def reflect_pad(page: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad a page smaller than (height, width) at the bottom and right by mirroring it.

    A mirror can add at most the page's own size, so a tiny page is mirrored repeatedly.
    """
    while page.shape[0] < height or page.shape[1] < width:
        pad_h = min(max(height - page.shape[0], 0), page.shape[0])
        pad_w = min(max(width - page.shape[1], 0), page.shape[1])
        page = np.pad(page, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    return page


def random_corner(rng: np.random.Generator, page: np.ndarray, crop: int) -> tuple[int, int]:
    """(top, left) of a random crop×crop window that lies on the page where the page is large enough."""
    height, width = page.shape[:2]
    top = int(rng.integers(0, max(height - crop, 0) + 1))
    left = int(rng.integers(0, max(width - crop, 0) + 1))
    return top, left


def crop_window(page: np.ndarray, top: int, left: int, crop: int) -> np.ndarray:
    """The crop×crop window at (top, left), reflect padded where it runs off the page."""
    return reflect_pad(np.asarray(page[top : top + crop, left : left + crop]), crop, crop)


def augment(crop: np.ndarray, choice: int) -> np.ndarray:
    """One of the 8 symmetries of the square: `choice` in 0..7 (rotation ×90°, then a flip)."""
    crop = np.rot90(crop, k=choice % 4)
    return crop[:, ::-1] if choice >= 4 else crop


@dataclass(frozen=True)
class CropChoice:
    """Where one training crop comes from and how it is degraded (see `CropDataset.choice`)."""

    page: int  # index into the store's pages
    top: int
    left: int
    symmetry: int  # `augment`'s choice, 0..7 (0: as it is)
    seed: int  # the degradation's per-image seed


class CropDataset(torch.utils.data.Dataset):
    """`crops_per_image` random crops of each page per epoch, in an order drawn per epoch.

    Item i is (uint8 crop H×W×C, degradation seed), or (degraded crop, clean crop, seed) for
    paired data, where both crops come from the same place of the same page.
    """

    def __init__(
        self,
        store: PageStore,
        *,
        crop: int = 256,
        crops_per_image: int = 1,
        augment: bool = True,
        seed: int = 0,
        clean: PageStore | None = None,
        page_weights: np.ndarray | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if len(store) == 0:
            raise ManurestoreError("no readable training images")
        if clean is not None and len(clean) != len(store):
            raise ManurestoreError(f"{len(store)} degraded pages but {len(clean)} clean ones")
        if page_weights is not None and len(page_weights) != len(store):
            raise ValueError(f"{len(page_weights)} page weights for {len(store)} pages")
        self.store, self.clean = store, clean
        # None: every page equally often (a permutation); else each crop's page is drawn with these
        # probabilities, which is how several data folders are mixed at chosen weights.
        self.page_weights = page_weights
        self.crop, self.crops_per_image, self.augment, self.seed = crop, crops_per_image, augment, seed
        self.rank, self.world_size = rank, world_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose this epoch's pages, one per crop (drawn once, not per item)."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch, 0xC0])
        if self.page_weights is None:
            self._epoch_pages = rng.permutation(self.total) % len(self.store)
        else:
            self._epoch_pages = rng.choice(len(self.store), size=self.total, p=self.page_weights)

    @property
    def total(self) -> int:
        return len(self.store) * self.crops_per_image

    def __len__(self) -> int:
        return self.total // self.world_size

    def choice(self, index: int) -> CropChoice:
        """Item `index`'s page, corner, symmetry and degradation seed: a few numbers, drawn on the
        host alike for the crops cut here and for those cut on the device (`training/device_crops`)."""
        global_index = index * self.world_size + self.rank  # each rank sees its own shard
        page_index = int(self._epoch_pages[global_index])
        rng = np.random.default_rng([self.seed, self.epoch, global_index, 0xC1])
        top, left = random_corner(rng, self.store.pages[page_index], self.crop)
        symmetry = int(rng.integers(0, 8)) if self.augment else 0
        seed = image_seed(self.seed, f"train/{self.epoch}/{global_index}")
        return CropChoice(page_index, top, left, symmetry, seed)

    def __getitem__(self, index: int):
        chosen = self.choice(index)
        page_index = chosen.page
        pages = [self.store.pages[page_index]] + ([self.clean.pages[page_index]] if self.clean is not None else [])
        if self.clean is not None and pages[0].shape != pages[1].shape:
            raise ManurestoreError(
                f"{self.store.paths[page_index]} and {self.clean.paths[page_index]} differ in size "
                f"({pages[0].shape[1]}×{pages[0].shape[0]} vs {pages[1].shape[1]}×{pages[1].shape[0]})"
            )
        windows = [augment(crop_window(page, chosen.top, chosen.left, self.crop), chosen.symmetry) for page in pages]
        crops = [torch.from_numpy(np.ascontiguousarray(window)) for window in windows]
        return (*crops, chosen.seed)


@dataclass(frozen=True)
class ValidationCrops:
    """The fixed validation set: uint8 (N, crop, crop, 3) tensors and one degradation seed per crop.

    `degraded` holds the same windows of real degraded pages (paired data); it is None for
    synthetic data, whose clean crops are degraded on the device with `seeds`.
    """

    clean: torch.Tensor
    seeds: list[int]
    degraded: torch.Tensor | None = None


def validation_crops(clean: PageStore, crop: int, seed: int, *, degraded: PageStore | None = None, total: int = 32) -> ValidationCrops:
    """About `total` crops spread over the pages, the same every epoch (and on every machine).

    With `degraded` (page i of it pairs with page i of `clean`), the windows are placed on the
    degraded pages and cut from both at the same place.
    """
    placed_on = degraded if degraded is not None else clean
    per_page = max(1, min(8, -(-total // max(len(placed_on), 1))))
    clean_crops, degraded_crops, seeds = [], [], []
    for page_index, page in enumerate(placed_on.pages):
        rng = np.random.default_rng([seed, page_index, 0x7A1])
        for k in range(per_page):
            top, left = random_corner(rng, page, crop)
            clean_crops.append(crop_window(clean.pages[page_index], top, left, crop))
            if degraded is not None:
                degraded_crops.append(crop_window(page, top, left, crop))
            seeds.append(image_seed(seed, f"val/{page_index}/{k}"))
    return ValidationCrops(
        clean=torch.from_numpy(np.stack(clean_crops)),
        seeds=seeds,
        degraded=torch.from_numpy(np.stack(degraded_crops)) if degraded is not None else None,
    )
