"""Memory for large CPU batches: huge-page-backed buffers and cache-sized pieces of work.

Shared by the degradations, the uint8 ↔ float conversions and the tiler, which all work on
batches far larger than the CPU's caches.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor


def new_batch(shape: Sequence[int], dtype: torch.dtype, device: torch.device | str) -> Tensor:
    """An uninitialised contiguous tensor for a batch-sized result or a large scratch buffer.

    On the CPU, one of 2 MiB or more is allocated through NumPy, which asks Linux for transparent
    huge pages for large arrays, and starts on a 2 MiB boundary so that all of it can be backed
    by them: a fresh torch allocation that size is faulted in 4 KiB at a time, and on a virtual
    machine that can cost more than the arithmetic done on it. Elsewhere, `torch.empty`.
    """
    device = torch.device(device)
    nbytes = math.prod(shape) * dtype.itemsize
    if device.type != "cpu" or nbytes < _HUGE_PAGE:
        return torch.empty(tuple(shape), dtype=dtype, device=device)
    whole = -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE
    raw = np.empty(whole + _HUGE_PAGE, dtype=np.uint8)  # ≥ 4 MiB: NumPy advises huge pages
    offset = -raw.ctypes.data % _HUGE_PAGE
    return torch.from_numpy(raw[offset : offset + nbytes]).view(dtype).view(tuple(shape))


_HUGE_PAGE = 1 << 21


def cpu_piece(values: int) -> int:
    """How many values a piece of CPU work done piece by piece should hold: `values` for each
    thread torch runs on, so that each thread's share stays cache-sized and, with more threads,
    there are fewer pieces (each one a parallel region) to pay for."""
    return values * max(1, torch.get_num_threads())
