"""Per-image random numbers that are batched, device-side and identical on every device.

A `torch.Generator` is one stream per device: drawing for a batch makes image i's values depend on
its neighbours, a generator per image costs a launch per image per op, and CPU and CUDA streams
differ. `ImageRandom` instead hashes (image seed, stream, call, element index) with a 32-bit
integer mixer, for the whole batch at once. So:

- image i's draws depend only on its own seed: alone or inside any batch, they are the same;
- the same seed gives the same values on the CPU and on any GPU (integer arithmetic is exact);
- nothing leaves the device and there is no per-image Python loop.

>>> rand = ImageRandom(torch.tensor([7, 8]))
>>> rand.uniform(3).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import math
import zlib
from typing import Sequence

import torch
from torch import Tensor

_MASK32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    """A 32-bit pattern as the signed int32 torch stores."""
    value &= _MASK32
    return value - (1 << 32) if value >= (1 << 31) else value


# Multipliers of the "lowbias32" integer hash (a well-tested 32-bit avalanche mixer).
_M1 = _to_int32(0x7FEB352D)
_M2 = _to_int32(0x846CA68B)
_GOLDEN = _to_int32(0x9E3779B9)


def _mix32(x: Tensor) -> Tensor:
    """Avalanche an int32 tensor in place; shifts are masked so they act as logical shifts."""
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    x.mul_(_M1)
    x.bitwise_xor_((x >> 15) & 0x1FFFF)
    x.mul_(_M2)
    x.bitwise_xor_((x >> 16) & 0xFFFF)
    return x


def _mix_int(value: int) -> int:
    """The same mixer on a Python int, for deriving stream keys on the host."""
    x = value & _MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK32
    x ^= x >> 16
    return x


def stream_key(*parts: int | str) -> int:
    """A 32-bit key for a named sub-stream, stable across Python runs (no `hash()`)."""
    key = 0x5EED
    for part in parts:
        raw = zlib.crc32(part.encode()) if isinstance(part, str) else int(part)
        key = _mix_int(key ^ _mix_int(raw & _MASK32) ^ _mix_int((raw >> 32) & _MASK32))
    return key


class ImageRandom:
    """Random draws for a batch: row i of every result is a function of `seeds[i]` alone.

    Each draw (`uniform`, `normal`, `integers`, `bernoulli`) advances a call counter, so
    successive draws differ; `fork(key)` opens an independent named sub-stream and `subset`
    keeps the same streams for some of the images.
    """

    def __init__(self, seeds: Tensor | Sequence[int], stream: int = 0, *, device: torch.device | str | None = None):
        seeds = torch.as_tensor(seeds, dtype=torch.int64, device=device)
        if seeds.ndim != 1:
            raise ValueError("seeds must be a 1-D sequence of per-image integer seeds")
        self.seeds = seeds
        self.stream = stream & _MASK32
        self._calls = 0
        # Fold each 64-bit seed into a 32-bit per-image key (the low and high halves both count).
        low = _as_int32(seeds & _MASK32)
        high = _as_int32((seeds >> 32) & _MASK32)
        key = _mix32(low ^ _to_int32(self.stream))
        self._image_keys = _mix32(key ^ _mix32(high.add_(_GOLDEN)))

    @property
    def device(self) -> torch.device:
        return self.seeds.device

    def __len__(self) -> int:
        return self.seeds.shape[0]

    def fork(self, *key: int | str) -> "ImageRandom":
        """An independent stream for a named purpose (an op, a step), same images."""
        return ImageRandom(self.seeds, stream_key(self.stream, *key))

    def subset(self, index: Tensor) -> "ImageRandom":
        """The same streams, at the same call count, for the images selected by `index`."""
        child = ImageRandom.__new__(ImageRandom)
        child.seeds = self.seeds[index]
        child.stream = self.stream
        child._calls = self._calls
        child._image_keys = self._image_keys[index]
        return child

    def _bits(self, shape: Sequence[int]) -> Tensor:
        """(B, *shape) int32 of independent 32-bit patterns for the next call."""
        call_key = _to_int32(_mix_int(self._calls * 0x68E31DA4 + 0x1B56C4E9))
        self._calls += 1
        numel = math.prod(shape)
        index = torch.arange(numel, dtype=torch.int32, device=self.device)
        keys = (self._image_keys ^ call_key).view(-1, 1)
        bits = _mix32(index.view(1, -1).mul(_GOLDEN).add(keys))
        bits = _mix32(bits.bitwise_xor_(keys))
        return bits.view(len(self), *shape)

    def uniform(self, *shape: int, low: float | Tensor = 0.0, high: float | Tensor = 1.0) -> Tensor:
        """(B, *shape) float32 uniform in [low, high); low/high may be (B,) per-image tensors."""
        unit = ((self._bits(shape) >> 8) & 0xFFFFFF).to(torch.float32).mul_(1.0 / (1 << 24))
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            if (low, high) == (0.0, 1.0):
                return unit
            return unit.mul_(high - low).add_(low)
        low_t, high_t = (_per_image(v, unit) for v in (low, high))
        return unit.mul_(high_t - low_t).add_(low_t)

    def normal(self, *shape: int) -> Tensor:
        """(B, *shape) float32 standard normal (Box–Muller: one uniform pair gives two normals)."""
        numel = math.prod(shape)
        half = (numel + 1) // 2
        u1 = self.uniform(half)
        angle = self.uniform(half).mul_(2.0 * math.pi)
        radius = torch.log1p(-u1).mul_(-2.0).sqrt_()  # 1 - u1 lies in (0, 1], so the log is finite
        pairs = torch.cat([torch.cos(angle).mul_(radius), angle.sin_().mul_(radius)], dim=1)
        return pairs[:, :numel].reshape(len(self), *shape)

    def integers(self, low: int | Tensor, high: int | Tensor, *shape: int) -> Tensor:
        """(B, *shape) int64 uniform in [low, high] inclusive; bounds may be per image."""
        unit = self.uniform(*shape)
        low_t, high_t = (_per_image(torch.as_tensor(v, device=self.device).float(), unit) for v in (low, high))
        value = torch.floor(unit * (high_t - low_t + 1.0) + low_t)
        return torch.minimum(value, high_t).to(torch.int64)

    def bernoulli(self, probability: float | Tensor, *shape: int) -> Tensor:
        """(B, *shape) bool, True with the given (per-image) probability."""
        unit = self.uniform(*shape)
        if isinstance(probability, (int, float)):
            return unit < probability
        return unit < _per_image(probability, unit)


def _as_int32(values: Tensor) -> Tensor:
    """int64 values in [0, 2^32) reinterpreted as int32 bit patterns."""
    return torch.where(values >= (1 << 31), values - (1 << 32), values).to(torch.int32)


def _per_image(value: float | Tensor, like: Tensor) -> Tensor | float:
    """Reshape a (B,) tensor so it broadcasts over the trailing dims of `like`."""
    if isinstance(value, Tensor) and value.ndim == 1:
        return value.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))
    return value


def image_seed(seed: int, identity: str) -> int:
    """A 63-bit seed for one image from the job's seed and the image's identity (its relative path).

    An image's result then depends on nothing else: not the batch size, the order or its neighbours.
    """
    import hashlib

    digest = hashlib.blake2b(f"{seed}\0{identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)
