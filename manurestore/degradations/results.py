"""Where an op function's result goes: `out=` checked and honoured the same way by every op.

>>> x = torch.zeros(1, 1, 2, 2)
>>> deliver(x + 1, x, None) is x
False
>>> deliver(x + 1, x, x) is x, float(x.sum())
(True, 4.0)
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_out(x: Tensor, out: Tensor | None) -> None:
    """Raise ValueError unless `out` is None or a tensor of x's shape, dtype and device."""
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype or out.device != x.device):
        raise ValueError(
            f"out must match x: got {tuple(out.shape)} {out.dtype} on {out.device}, "
            f"x is {tuple(x.shape)} {x.dtype} on {x.device}"
        )


def deliver(result: Tensor, x: Tensor, out: Tensor | None) -> Tensor:
    """`result` in x's dtype: returned as a tensor of its own when `out` is None, else written
    into `out` (which may be `x`) and `out` returned."""
    check_out(x, out)
    if out is None:
        if result.dtype != x.dtype:
            return result.to(x.dtype)
        same = result.numel() and result.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        return result.clone() if same else result
    return out.copy_(result)


def multiply(x: Tensor, factor: Tensor, out: Tensor | None) -> Tensor:
    """x·factor (factor broadcast over x, cast to x's dtype once), into `out` when given."""
    check_out(x, out)
    factor = factor.to(x.dtype)
    return torch.mul(x, factor) if out is None else torch.mul(x, factor, out=out)
