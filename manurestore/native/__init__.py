"""Native CPU loops, compiled by numba, where torch's one pass per operation costs most.

Eager torch runs every step of an op as its own pass over the batch: about twenty for one
`gaussian_noise` (each step of the counter-based hash, the normal table lookup, the add). The
loops in `loops` do an op in one pass each:

- `add_noise`: the Gaussian noise, with the same hash, so the same normals;
- `blur`: both passes of the separable Gaussian blur, the taps unrolled;
- `darken`: the stains' coarse mask upsampled bilinearly and multiplied in;
- `to_uint8`: float (B, C, H, W) → rounded uint8 (B, H, W, C), what every written image goes through.

Together they make the `aged` pipeline with its conversions about 1.5× faster on one core
(benchmarks/README.md). Floats are summed in another order than torch's, so a pixel may differ
in its last bits (within `degradations.fused.FLOAT_TOLERANCE`); `tests/test_native.py` compares
each loop with the torch path, the uint8 conversion and the normals bit for bit.

When: on float32 CPU tensors, where numba imports and `MANURESTORE_NATIVE` is not `0` (`0` runs
the torch path, to compare or time it). The loops release the GIL: large work is shared among
torch's intra-op thread count (`torch.get_num_threads()`, which `--threads` sets), in Python
threads. The compiled code is cached on disk, so only the first process compiles (about a second
per loop).
"""

from __future__ import annotations

import functools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from manurestore.errors import UsageError
from manurestore.memory import new_batch

NATIVE_ENV = "MANURESTORE_NATIVE"
_SPLIT_MIN = 1 << 18  # values per thread below which splitting costs more than it saves


def active(x: Tensor) -> bool:
    """Whether an op on `x` runs the native loop: a float32 CPU batch outside autograd, numba
    installed, not switched off."""
    value = os.environ.get(NATIVE_ENV, "1").strip() or "1"
    if value not in ("0", "1"):
        raise UsageError(f"{NATIVE_ENV}={value!r} is not a setting; use 1 (native CPU loops where numba is installed) or 0 (never)")
    return (value == "1" and x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
            and _kernels() is not None)


@functools.cache
def _kernels():
    """The compiled loops' module, or None where numba is not installed (the torch path runs then)."""
    try:
        from manurestore.native import loops as native_loops
    except ImportError:
        return None
    except Exception as error:  # numba present but unusable here (no cache folder, say): slower, never wrong
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        warnings.warn(f"native CPU loops unavailable ({first_line}); using the torch ops", stacklevel=2)
        return None
    return native_loops


def add_noise(source: Tensor, out: Tensor, keys: np.ndarray, scale: Tensor, table: Tensor) -> Tensor:
    """`out` = `source` + scale·N(0, 1) for (B, N) float32 CPU tensors (`out` may be `source`);
    `keys` are the draw's (B,) uint32 call keys (`ImageRandom.host_call_keys`), `table` the normal
    quantiles (`random._normal_table`). The work is shared among torch's intra-op threads."""
    rows, width = source.shape
    arrays = (source.numpy(), out.numpy(), keys, scale.to(torch.float32).contiguous().numpy(), table.numpy())
    kernel = _kernels().add_noise
    _in_threads(lambda rows_, hashes: kernel(*arrays, *rows_, *hashes), rows, (width + 1) // 2)
    return out


def blur(source: Tensor, out: Tensor, runs: list[tuple[list[float], str, int, int]]) -> Tensor:
    """Separable blurs of contiguous float32 (P, H, W) CPU planes `source` into `out` (which may be
    `source`): each run (weights, border, first plane, last plane) blurs its planes with the
    odd-length `weights` and borders "reflect" (OpenCV's BORDER_REFLECT_101) or "replicate".

    Threads share the runs, a few planes each; a single page's few planes are shared row by row
    instead, the horizontal pass of a plane finishing before the vertical one starts.
    """
    planes, height, width = source.shape
    src, dst = source.numpy(), out.numpy()
    loops = _kernels()
    threads = _thread_count(planes * height * width)
    prepared = [(_taps(tuple(weights)), _padded_index(height, len(weights) // 2, border),
                 _padded_index(width, len(weights) // 2, border), first, last) for weights, border, first, last in runs]
    if threads == 1 or planes >= 2 * threads:
        shares = [[] for _ in range(threads)]
        for taps, rows, columns, first, last in prepared:  # contiguous planes to each thread
            for plane in range(first, last):
                share = shares[plane * threads // planes]
                if share and share[-1][4] == plane and share[-1][0] is taps:
                    share[-1] = (*share[-1][:4], plane + 1)
                else:
                    share.append((taps, rows, columns, plane, plane + 1))

        def blur_share(share):
            scratch = new_batch((1, height, width), torch.float32, "cpu").numpy()
            for taps, rows, columns, first, last in share:
                loops.blur_planes(src[first:last], dst[first:last], scratch, taps, rows, columns)

        _run_shares([lambda share=share: blur_share(share) for share in shares if share])
        return out
    across = new_batch((1, height, width), torch.float32, "cpu").numpy()
    bounds = [height * part // threads for part in range(threads + 1)]
    for taps, rows, columns, first, last in prepared:
        for plane in range(first, last):
            one_in, one_out = src[plane : plane + 1], dst[plane : plane + 1]
            _run_shares([lambda a=a, b=b: loops.blur_across(one_in, across, taps, columns, a, b) for a, b in zip(bounds, bounds[1:])])
            _run_shares([lambda a=a, b=b: loops.blur_down(across, one_out, taps, rows, a, b) for a, b in zip(bounds, bounds[1:])])
    return out


def darken(x: Tensor, images: list[int], opacity: Tensor, darkening: Tensor) -> Tensor:
    """x[images[i]] ·= 1 + opacity[i]·darkening[images[i]] in place, for a contiguous float32
    (B, C, H, W) CPU batch `x`, coarse (n, 1, h, w) `opacity` upsampled bilinearly to H×W, and
    (B, C) `darkening`; rows are shared among the threads."""
    height = x.shape[2]
    arrays = (x.numpy(), np.asarray(images, np.int64), opacity.float().contiguous().view(opacity.shape[0], *opacity.shape[2:]).numpy(),
              darkening.numpy())
    threads = _thread_count(len(images) * x[0].numel())
    bounds = [height * part // threads for part in range(threads + 1)]
    _run_shares([lambda a=a, b=b: _kernels().darken(*arrays, a, b) for a, b in zip(bounds, bounds[1:])])
    return x


def to_uint8(batch: Tensor, out: Tensor) -> Tensor:
    """Contiguous float32 (B, C, H, W) CPU `batch` in [0, 1] → rounded, clamped uint8 (B, H, W, C) `out`."""
    height = batch.shape[2]
    source, target = batch.detach().numpy(), out.numpy()
    threads = _thread_count(batch.numel())
    bounds = [height * part // threads for part in range(threads + 1)]
    _run_shares([lambda a=a, b=b: _kernels().to_uint8(source, target, a, b) for a, b in zip(bounds, bounds[1:])])
    return out


@functools.lru_cache(maxsize=64)
def _taps(weights: tuple[float, ...]) -> tuple:
    """The weights as the float32 tuple the loops are compiled for (one compile per length)."""
    return tuple(np.float32(w) for w in weights)


@functools.lru_cache(maxsize=64)
def _padded_index(length: int, radius: int, border: str) -> np.ndarray:
    """For each of the length + 2·radius padded positions, the position it reads."""
    index = np.arange(-radius, length + radius)
    if border == "reflect":
        index = np.abs(index)
        index = np.where(index >= length, 2 * length - 2 - index, index)
    index = np.clip(index, 0, length - 1).astype(np.int64)
    index.flags.writeable = False
    return index


def _thread_count(values: int) -> int:
    """Threads worth using for `values` of work: torch's intra-op count, fewer for small work."""
    return max(1, min(torch.get_num_threads(), values // _SPLIT_MIN))


def _run_shares(shares) -> None:
    """Run the callables, the first in this thread and the others in the pool; wait for all."""
    pending = [_pool().submit(share) for share in shares[1:]]
    shares[0]()
    for future in pending:
        future.result()


def _in_threads(work, rows: int, columns: int) -> None:
    """work((first_row, last_row), (first, last)) over a rows × columns grid of work, in up to
    torch.get_num_threads() threads: split by rows where there are enough, else by columns."""
    threads = _thread_count(rows * columns)
    if threads == 1:
        work((0, rows), (0, columns))
        return
    by_rows = rows >= threads
    length = rows if by_rows else columns
    bounds = [length * part // threads for part in range(threads + 1)]
    shares = [((a, b), (0, columns)) if by_rows else ((0, rows), (a, b)) for a, b in zip(bounds, bounds[1:])]
    _run_shares([lambda share=share: work(*share) for share in shares])


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """This process's worker threads (a forked child, such as a DataLoader worker, makes its own)."""
    pool = _POOLS.get(os.getpid())
    if pool is None:
        pool = _POOLS[os.getpid()] = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                                        thread_name_prefix="manurestore-native")
    return pool
