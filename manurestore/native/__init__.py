"""Native CPU loops, compiled by numba, where torch's one pass per operation costs most.

Eager torch runs every step of an op as its own pass over the batch: about twenty for one
`gaussian_noise` (each step of the counter-based hash, the normal table lookup, the add). The
loops in `loops` do an op in one pass each:

- `add_noise`: the Gaussian noise, with the same hash, so the same normals;
- `blur`: both passes of the separable Gaussian blur, the taps unrolled;
- `darken`: the stains' coarse mask upsampled bilinearly and multiplied in;
- `to_uint8` and `from_uint8`: float (B, C, H, W) ↔ uint8 (B, H, W, C), what every image read
  or written goes through.

Together they make the `aged` pipeline with its conversions 1.3–1.6× faster on one core
(benchmarks/README.md). Floats are summed in another order than torch's, so a pixel may differ
in its last bits (within `degradations.fused.FLOAT_TOLERANCE`); `tests/test_native.py` compares
each loop with the torch path, the uint8 conversion and the normals bit for bit.

When: on float32 CPU tensors outside autograd, where numba imports and `MANURESTORE_NATIVE` is not
`0` (`0` runs the torch path, to compare or time it), and while torch runs on at most MAX_THREADS
intra-op threads. Each loop runs on one core, in the calling thread: on two cores one loop is
still faster than torch's op on both, and loops shared out among extra threads were slower, not
faster, inside the pipeline (torch's own threads spin between its ops and took the cores). With
more threads torch's parallel ops should win: on one core they take 2–3× a loop's time. The
compiled code is cached on disk, so only the first process compiles (about a second per loop, and
again for each blur kernel length: the taps are a tuple, unrolled when compiled).
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch
from torch import Tensor

from manurestore.errors import UsageError
from manurestore.memory import new_batch

NATIVE_ENV = "MANURESTORE_NATIVE"
MAX_THREADS = 2  # above this many intra-op threads, torch's parallel ops beat a loop on one core


def active(x: Tensor) -> bool:
    """Whether an op on `x` runs the native loop: a float32 batch outside autograd, on a device
    where the loops are `enabled`."""
    return x.dtype == torch.float32 and not x.requires_grad and enabled(x.device)


def enabled(device: torch.device | str) -> bool:
    """Whether the loops run on `device`: the CPU, torch on at most MAX_THREADS intra-op threads,
    numba installed, not switched off (`MANURESTORE_NATIVE=0`)."""
    value = os.environ.get(NATIVE_ENV, "1").strip() or "1"
    if value not in ("0", "1"):
        raise UsageError(f"{NATIVE_ENV}={value!r} is not a setting; use 1 (native CPU loops where numba is "
                         "installed) or 0 (never)")
    return (value == "1" and torch.device(device).type == "cpu" and torch.get_num_threads() <= MAX_THREADS
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
    quantiles (`random._normal_table`)."""
    _kernels().add_noise(source.numpy(), out.numpy(), keys, scale.to(torch.float32).contiguous().numpy(), table.numpy())
    return out


def blur(source: Tensor, out: Tensor, runs: list[tuple[list[float], str, int, int]]) -> Tensor:
    """Separable blurs of contiguous float32 (P, H, W) CPU planes `source` into `out` (which may be
    `source`): each run (weights, border, first plane, last plane) blurs its planes with the
    odd-length `weights` and borders "reflect" (OpenCV's BORDER_REFLECT_101) or "replicate"."""
    _, height, width = source.shape
    src, dst = source.numpy(), out.numpy()
    scratch = new_batch((1, height, width), torch.float32, "cpu").numpy()  # one plane's horizontal pass
    for weights, border, first, last in runs:
        radius = len(weights) // 2
        _kernels().blur_planes(src[first:last], dst[first:last], scratch, _taps(tuple(weights)),
                               _padded_index(height, radius, border), _padded_index(width, radius, border))
    return out


def darken(x: Tensor, images: list[int], opacity: Tensor, darkening: Tensor) -> Tensor:
    """x[images[i]] ·= 1 + opacity[i]·darkening[images[i]] in place, for a contiguous float32
    (B, C, H, W) CPU batch `x`, coarse (n, 1, h, w) `opacity` upsampled bilinearly to H×W, and
    (B, C) `darkening`."""
    coarse = opacity.float().contiguous().view(opacity.shape[0], *opacity.shape[2:])
    _kernels().darken(x.numpy(), np.asarray(images, np.int64), coarse.numpy(), darkening.numpy())
    return x


def from_uint8(images: Tensor, out: Tensor) -> Tensor:
    """uint8 (B, H, W, C) CPU `images` → float32 (B, C, H, W) `out` in [0, 1]."""
    _kernels().from_uint8(images.contiguous().numpy(), out.numpy())
    return out


def to_uint8(batch: Tensor, out: Tensor) -> Tensor:
    """Contiguous float32 (B, C, H, W) CPU `batch` in [0, 1] → rounded, clamped uint8 (B, H, W, C) `out`."""
    _kernels().to_uint8(batch.numpy(), out.numpy())
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
