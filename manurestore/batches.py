"""uint8 pages ↔ float batches, the one conversion every stage shares.

Files and caches hold uint8 H×W×C pages; models and degradations work on float (B, C, H, W)
batches in [0, 1]. Moving uint8 and widening on the device costs a quarter of the transfer, and
rounding back happens once, here, the same way for `degrade`, `restore`, `evaluate` and training.

>>> batch = to_batch([np.zeros((4, 6, 3), np.uint8)], torch.device("cpu"))
>>> tuple(batch.shape), tuple(to_images(batch).shape)
((1, 3, 4, 6), (1, 4, 6, 3))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from manurestore import native
from manurestore.memory import cpu_piece, new_batch


def to_batch(images: Sequence[np.ndarray] | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 H×W×C pages of one shape (or a (B, H, W, C) uint8 tensor) → contiguous float
    (B, C, H, W) in [0, 1] on `device`.

    The uint8 stack is moved first (a quarter of the bytes) and transposed while still uint8; a
    channels-last float batch would make every later op slower. On the CPU a native loop
    (`manurestore.native`) transposes, widens and scales in one pass, to the same values.
    """
    stacked = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.stack(images))
    stacked = stacked.to(device, non_blocking=True)
    if stacked.dtype == torch.uint8 and native.enabled(stacked.device):  # one native pass (`manurestore.native`)
        count, height, width, channels = stacked.shape
        return native.from_uint8(stacked, new_batch((count, channels, height, width), torch.float32, stacked.device))
    planar = stacked.permute(0, 3, 1, 2).contiguous()
    return new_batch(planar.shape, torch.float32, planar.device).copy_(planar).div_(255.0)


def to_images(batch: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [0, 1] → contiguous uint8 (B, H, W, C) on the host, rounded.

    On the CPU a native loop (`manurestore.native`) does it in one pass. Otherwise: rounded and
    clamped in float, narrowed through int16 (far quicker than float → uint8 on the CPU), then
    interleaved a channel at a time, a few images (or rows) at a time, so the scaled copy stays
    small. Both round ties to even and give the same bytes.
    """
    count, channels, height, width = batch.shape
    out = torch.empty((count, height, width, channels), dtype=torch.uint8, device=batch.device)
    if native.active(batch) and batch.is_contiguous():  # one native pass (`manurestore.native`)
        return native.to_uint8(batch, out).numpy()
    budget = cpu_piece(1 << 19) if batch.device.type == "cpu" else max(1, batch.numel())
    images = max(1, budget // max(1, channels * height * width))  # whole images per piece
    rows = height if images > 1 else max(1, budget // max(1, channels * width))  # or rows of one
    for first in range(0, count, images):
        for top in range(0, height, rows):
            part = batch[first : first + images, :, top : top + rows]
            scaled = part.mul(255.0).round_().clamp_(0, 255).to(torch.int16).to(torch.uint8)
            target = out[first : first + images, top : top + rows]
            for channel in range(channels):
                target[..., channel].copy_(scaled[:, channel])
    return out.cpu().numpy()
