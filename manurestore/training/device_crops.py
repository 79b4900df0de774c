"""Training crops cut on the device: the pages are copied there once, each batch is one gather.

The host path (`CropDataset` in the DataLoader) cuts every crop with NumPy and copies the batch to
the device each step; on a fast GPU that host work and copy can bound the step. Here the training
pages live on the device as uint8 in one flat buffer (pages of any size, each at an offset), and a
batch is cut by one `index_select` of pixel indices built from a few numbers per crop. Those
numbers — page, corner, symmetry, degradation seed — still come from `CropDataset.choice`, the
very draws the host path makes, so both paths give the same batches bit for bit and a run may
switch between them when resumed. With a page-context branch the page views move too, so no step
copies pages from the host.

The pages are copied only when they fit: on a GPU in half its free memory (activations need the
rest); on the CPU the device *is* the host, so the store's pages become views of the buffer (held
once, not twice) and must all be in RAM (none memory-mapped beyond --memory-budget-mb).
Paired data (--pairs) keeps the host path: it would need a second buffer for a rarely used layout.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from manurestore.data.dataset import CropDataset, PageStore, augment
from manurestore.devices import to_device
from manurestore.training.config import TrainConfig

DEVICE_SHARE = 0.5  # of a GPU's free memory (once the model is there) the pages may take


class PageViews(Protocol):
    """What this module needs of `training.data.PageViews` (which imports this module)."""

    train: Tensor  # uint8 (N, side, side, 3) whole-page views


class DevicePages:
    """uint8 RGB pages of any sizes in one flat (pixels, 3) buffer on `device`, with each page's offset and size."""

    def __init__(self, store: PageStore, device: torch.device):
        sizes = [page.shape[0] * page.shape[1] for page in store.pages]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.device = device
        self.flat = torch.empty((int(starts[-1]), 3), dtype=torch.uint8, device=device)
        host = self.flat.numpy() if device.type == "cpu" else None
        for index, page in enumerate(store.pages):
            start, stop = int(starts[index]), int(starts[index + 1])
            if host is not None:
                host[start:stop] = page.reshape(-1, 3)
                store.pages[index] = host[start:stop].reshape(page.shape)  # held once: the host path reads the same bytes
            else:
                self.flat[start:stop].copy_(_as_tensor(page).view(-1, 3))
        shapes = np.array([page.shape[:2] for page in store.pages], dtype=np.int64).reshape(-1, 2)
        self.offsets = torch.from_numpy(starts[:-1].copy()).to(device)
        self.heights = torch.from_numpy(shapes[:, 0].copy()).to(device)
        self.widths = torch.from_numpy(shapes[:, 1].copy()).to(device)
        self.symmetries = torch.from_numpy(symmetry_flags()).to(device)

    def crops(self, plan: Tensor, crop: int) -> Tensor:
        """uint8 (B, crop, crop, 3) from a (B, 4) int64 plan on the device: page, top, left, symmetry.

        Each crop's window rows and columns (mirrored past the page's edge, as `reflect_pad` does)
        are mapped through its symmetry, then every pixel is fetched by one gather.
        """
        page, top, left, symmetry = plan.unbind(1)
        width = self.widths[page]
        steps = _steps(crop, self.device)
        rows = top[:, None] + mirror(steps, (self.heights[page] - top).clamp(max=crop)[:, None])
        cols = left[:, None] + mirror(steps, (width - left).clamp(max=crop)[:, None])
        flags = self.symmetries[symmetry]
        swap, flip_rows, flip_cols = flags[:, 0:1], flags[:, 1:2], flags[:, 2:3]
        rows = torch.where(flip_rows, rows.flip(1), rows)
        cols = torch.where(flip_cols, cols.flip(1), cols)
        row_start = self.offsets[page][:, None] + rows * width[:, None]
        down = torch.where(swap, cols, row_start)  # what output row i reads
        across = torch.where(swap, row_start, cols)  # what output column j reads
        pixels = down[:, :, None] + across[:, None, :]
        return self.flat.index_select(0, pixels.view(-1)).view(*pixels.shape, 3)


class DeviceCrops:
    """A CropDataset's batches cut on the device: (uint8 (B, crop, crop, 3) there, int64 seeds on the host),
    as the DataLoader would give them."""

    def __init__(self, dataset: CropDataset, pages: DevicePages):
        self.dataset, self.pages = dataset, pages

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        choices = [self.dataset.choice(index) for index in indices]
        plan = np.array([(c.page, c.top, c.left, c.symmetry) for c in choices], dtype=np.int64).reshape(-1, 4)
        seeds = torch.tensor([c.seed for c in choices], dtype=torch.int64)
        return self.pages.crops(to_device(plan, self.pages.device), self.dataset.crop), seeds

    def batches(self, epoch: int, first: int, stop: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Epoch `epoch`'s whole batches of items first, first + 1, ... below `stop` (the DataLoader's order)."""
        self.dataset.set_epoch(epoch)
        for start in range(first, stop - batch_size + 1, batch_size):
            yield self.batch(range(start, start + batch_size))


def device_crops(cfg: TrainConfig, train: CropDataset, views: PageViews | None, device: torch.device,
                 warn: Callable[[str], None]) -> DeviceCrops | None:
    """The run's crops cut on the device, or None for the host path: not asked for (the default is on
    for CUDA only), paired data, or pages that do not fit (then `warn` says why).
    The page views, if any, move to the device along with the pages."""
    wanted = cfg.crops_on_device if cfg.crops_on_device is not None else device.type == "cuda"
    if not wanted or train.clean is not None:
        return None
    problem = _why_not(train.store, views, device)
    if problem is not None:
        warn(f"training crops are cut on the host: {problem}")
        return None
    if views is not None:
        views.train = views.train.to(device)
    return DeviceCrops(train, DevicePages(train.store, device))


def _why_not(store: PageStore, views: PageViews | None, device: torch.device) -> str | None:
    """Why the pages cannot be copied to `device`, or None when they can."""
    if device.type == "cpu":
        if any(isinstance(page, np.memmap) for page in store.pages):
            return "some pages are memory-mapped from the cache (over --memory-budget-mb); raise it to cut them in RAM"
        return None
    needed = sum(page.nbytes for page in store.pages) + (views.train.nbytes if views is not None else 0)
    if device.type == "cuda":
        room = int(torch.cuda.mem_get_info(device)[0] * DEVICE_SHARE)
        if needed > room:
            return (f"the pages take {needed / 2**30:.1f} GiB, over {DEVICE_SHARE:.0%} of the GPU's free memory "
                    f"({room / 2**30:.1f} GiB)")
    return None


def mirror(index: Tensor, length: Tensor) -> Tensor:
    """Where `index` lands in a window of `length` mirrored end to end (`reflect_pad`'s repeated
    symmetric padding is periodic: 0 … length−1, length−1 … 0, 0 …); an index below length stays."""
    period = index % (2 * length)
    return torch.where(period < length, period, 2 * length - 1 - period)


@lru_cache(maxsize=1)
def symmetry_flags() -> np.ndarray:
    """(8, 3) bool: for each of `augment`'s choices, whether output (i, j) reads window (j, i) rather
    than (i, j), and whether the window row, then column, it reads counts from the far end.
    Read off `augment` itself, so the two cannot disagree."""
    side = 3
    rows, cols = np.indices((side, side))
    flags = []
    for choice in range(8):
        read_rows, read_cols = augment(rows, choice), augment(cols, choice)
        swap = bool(read_rows[0, 0] != read_rows[0, 1])
        flip_rows, flip_cols = bool(read_rows[0, 0] == side - 1), bool(read_cols[0, 0] == side - 1)
        down, across = (cols, rows) if swap else (rows, cols)
        expected = (side - 1 - down if flip_rows else down, side - 1 - across if flip_cols else across)
        if not (np.array_equal(read_rows, expected[0]) and np.array_equal(read_cols, expected[1])):
            raise AssertionError(f"augment choice {choice} is not a symmetry of the square")
        flags.append((swap, flip_rows, flip_cols))
    return np.array(flags, dtype=bool)


@lru_cache(maxsize=8)
def _steps(crop: int, device: torch.device) -> Tensor:
    return torch.arange(crop, device=device)


def _as_tensor(page: np.ndarray) -> Tensor:
    """A page as a host tensor (a read-only array, such as a memory map, is copied first)."""
    array = np.ascontiguousarray(page)
    return torch.from_numpy(array if array.flags.writeable else array.copy())
