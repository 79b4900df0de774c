"""Fused kernels: an op's random numbers and its element-wise work compiled into one or a few kernels.

Eagerly, every integer step of the counter-based hash (`random._mix32`), the normal table lookup
and the add are each a kernel over the whole batch: about twenty launches and as many round trips
through memory for one `gaussian_noise`, which bounds a GPU far below its arithmetic. Here the
same arithmetic is written as pure tensor functions and handed to `torch.compile`, which fuses
each into a kernel or two (Triton on NVIDIA GPUs, C++ on the CPU).

The numbers are the eager path's: the integer hash is exact, so every draw is bit for bit the
same. Pixels may differ by float rounding where the compiler fuses a multiply and an add: one
unit in the last place for the noise, a few for the stain mask's polynomial; `FLOAT_TOLERANCE`
bounds it (measured: 6e-8 and 9e-7 on values in [0, 1]) and `tests/test_fused.py` checks both
on the CPU.

When: `MANURESTORE_FUSED` = `auto` (the default: on CUDA devices where Triton is installed),
`1` (everywhere, the CPU included: compiling takes tens of seconds per kernel there and the
CPU's eager path is about as fast, so it is for tests and benchmarks), or `0` (never). Call
keys reach a kernel as tensors, never as Python numbers, so a kernel compiles once per shape
family (`dynamic=True`) instead of once per call. If compiling fails, a one-line warning says so
and the eager path takes over for the rest of the process.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Callable

import torch
from torch import Tensor

from manurestore.errors import UsageError

FUSED_ENV = "MANURESTORE_FUSED"
FLOAT_TOLERANCE = 4e-6  # the largest |fused − eager| a degraded pixel in [0, 1] may show
_SETTINGS = ("auto", "1", "0")
_failed: set[str] = set()


def setting() -> str:
    """`MANURESTORE_FUSED` as given (auto when unset); a value it cannot be is a UsageError."""
    value = os.environ.get(FUSED_ENV, "auto").strip().lower() or "auto"
    if value not in _SETTINGS:
        raise UsageError(f"{FUSED_ENV}={value!r} is not a setting; use auto (fused on CUDA), 1 (always) or 0 (never)")
    return value


def active(device: torch.device | str) -> bool:
    """Whether ops on `device` use the fused kernels."""
    value = setting()
    if value == "0":
        return False
    if value == "1":
        return True
    return torch.device(device).type == "cuda" and _triton_installed()


@functools.cache
def _triton_installed() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def run(name: str, eager: Callable[..., Tensor], *args) -> Tensor:
    """`eager(*args)` compiled (once per process and name); eager itself once compiling has failed."""
    if name not in _failed:
        try:
            return _compiled(name, eager)(*args)
        except Exception as error:  # a missing compiler, an unsupported op: slower, never wrong
            _failed.add(name)
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            warnings.warn(f"fused kernel {name!r} could not be compiled ({first_line}); using the eager ops", stacklevel=2)
    return eager(*args)


@functools.cache
def _compiled(name: str, eager: Callable[..., Tensor]) -> Callable[..., Tensor]:
    return torch.compile(eager, dynamic=True, fullgraph=True)
