"""Per-image random numbers that are batched, device-side and identical on every device.

A `torch.Generator` is one stream per device: drawing for a batch makes image i's values depend on
its neighbours, a generator per image costs a launch per image per op, and CPU and CUDA streams
differ. `ImageRandom` instead hashes (image seed, stream, call, element index) with a 32-bit
integer mixer, for the whole batch at once. So:

- image i's draws depend only on its own seed: alone or inside any batch, they are the same;
- the same seed gives the same values on the CPU and on any GPU (integer arithmetic is exact);
- there is no per-image Python loop; large draws are made on the device, and small ones (a few
  values per image, when the seeds are on the host) are hashed with NumPy, which is cheaper than
  launching the same two dozen tensor operations — the values are the same either way.

>>> rand = ImageRandom(torch.tensor([7, 8]))
>>> rand.uniform(3).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from manurestore.degradations import fused
from manurestore.devices import to_device
from manurestore.memory import cpu_piece

_MASK32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    """A 32-bit pattern as the signed int32 torch stores."""
    value &= _MASK32
    return value - (1 << 32) if value >= (1 << 31) else value


# Multipliers of the "lowbias32" integer hash (a well-tested 32-bit avalanche mixer).
_M1 = _to_int32(0x7FEB352D)
_M2 = _to_int32(0x846CA68B)
_GOLDEN = _to_int32(0x9E3779B9)


def _mix32(x: Tensor, scratch: Tensor | None = None) -> Tensor:
    """Avalanche an int32 tensor in place; shifts are masked so they act as logical shifts.

    `scratch`, a tensor of x's shape and dtype, holds the shifted copy; without it one is made.
    Every step writes into memory that already exists: on the CPU a fresh large tensor costs a
    page fault per 4 KiB, which is dearer than the arithmetic.
    """
    t = torch.empty_like(x) if scratch is None else scratch
    torch.bitwise_right_shift(x, 16, out=t).bitwise_and_(0xFFFF)
    x.bitwise_xor_(t).mul_(_M1)
    torch.bitwise_right_shift(x, 15, out=t).bitwise_and_(0x1FFFF)
    x.bitwise_xor_(t).mul_(_M2)
    torch.bitwise_right_shift(x, 16, out=t).bitwise_and_(0xFFFF)
    return x.bitwise_xor_(t)


def _mix32_host(x: np.ndarray) -> np.ndarray:
    """The same mixer on a NumPy uint32 array, in place (unsigned shifts need no mask)."""
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
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

    Each draw (`uniform`, `normal`, `integers`, `bernoulli`, `below`, `normal_spans`) advances
    a call counter, so successive draws differ; `fork(key)` opens an independent named sub-stream and `subset`
    keeps the same streams for some of the images.
    """

    def __init__(self, seeds: Tensor | Sequence[int], stream: int = 0, *, device: torch.device | str | None = None):
        if isinstance(seeds, Tensor):
            tensor = seeds.to(device=device, dtype=torch.int64) if device is not None else seeds.to(torch.int64)
            # Seeds already on an accelerator stay there: their keys are derived on it.
            host = seeds.detach().to(torch.int64).numpy().copy() if seeds.device.type == "cpu" else None
        else:
            host = np.array(seeds, dtype=np.int64)
            tensor = to_device(host, device) if device is not None else torch.from_numpy(host)
        if tensor.ndim != 1:
            raise ValueError("seeds must be a 1-D sequence of per-image integer seeds")
        self._start(tensor, host, stream)

    def _start(self, seeds: Tensor, host: np.ndarray | None, stream: int) -> None:
        self.seeds = seeds
        self._host_seeds = host
        self.stream = stream & _MASK32
        self._calls = 0
        # Fold each 64-bit seed into a 32-bit per-image key (the low and high halves both count).
        # With the seeds on the host (the usual case) this is a few NumPy operations on B numbers;
        # the result is bit for bit the same as the tensor path below.
        if host is not None:
            unsigned = host.view(np.uint64)
            low = (unsigned & np.uint64(_MASK32)).astype(np.uint32)
            high = (unsigned >> np.uint64(32)).astype(np.uint32)
            key = _mix32_host(low ^ np.uint32(self.stream))
            self._host_keys = _mix32_host(key ^ _mix32_host(high + np.uint32(_GOLDEN & _MASK32)))
            self._keys = None  # the device copy, made when a large draw needs it
        else:
            low = _as_int32(seeds & _MASK32)
            high = _as_int32((seeds >> 32) & _MASK32)
            key = _mix32(low ^ _to_int32(self.stream))
            self._host_keys = None
            self._keys = _mix32(key ^ _mix32(high.add_(_GOLDEN)))

    @property
    def _image_keys(self) -> Tensor:
        """(B,) int32 per-image keys on the device."""
        if self._keys is None:
            self._keys = to_device(self._host_keys.view(np.int32), self.device)
        return self._keys

    @property
    def device(self) -> torch.device:
        return self.seeds.device

    def __len__(self) -> int:
        return self.seeds.shape[0]

    def fork(self, *key: int | str) -> "ImageRandom":
        """An independent stream for a named purpose (an op, a step), same images."""
        child = ImageRandom.__new__(ImageRandom)
        child._start(self.seeds, self._host_seeds, stream_key(self.stream, *key))
        return child

    def subset(self, index: Tensor | np.ndarray) -> "ImageRandom":
        """The same streams, at the same call count, for the images selected by `index` (a host
        array of indices spares reading a device one back)."""
        host_index = index if isinstance(index, np.ndarray) else None
        if host_index is not None:
            index = to_device(host_index, self.device)
        child = ImageRandom.__new__(ImageRandom)
        child.seeds = self.seeds[index]
        child.stream = self.stream
        child._calls = self._calls
        if self._host_keys is not None:
            if host_index is None:
                host_index = index.detach().cpu().numpy()
            child._host_seeds = self._host_seeds[host_index]
            child._host_keys = self._host_keys[host_index]
            child._keys = None if self._keys is None else self._keys[index]
        else:
            child._host_seeds = child._host_keys = None
            child._keys = self._keys[index]
        return child

    def _next_call(self) -> int:
        """The 32-bit key of the next call (as an unsigned int); advances the call counter."""
        call_key = _mix_int(self._calls * 0x68E31DA4 + 0x1B56C4E9)
        self._calls += 1
        return call_key

    def _call_keys(self) -> Tensor:
        """(B, 1) int32: each image's key for the next call; advances the call counter."""
        return (self._image_keys ^ _to_int32(self._next_call())).view(-1, 1)

    def call_keys(self, numel: int) -> Tensor | None:
        """(B, 1) int32 keys of the next draw of `numel` values per image, for a kernel that
        hashes its values itself (`hashed_bits`), advancing the stream as that draw would; None,
        with the stream unchanged, where such a draw is hashed on the host instead."""
        return None if self._on_host(numel) else self._call_keys()

    def host_call_keys(self) -> np.ndarray | None:
        """(B,) uint32 keys of the next draw, as NumPy, for a CPU loop that hashes its values itself
        (`native`), advancing the stream as that draw would; None, with the stream unchanged,
        where the keys live on an accelerator."""
        if self._host_keys is not None:
            return self._host_keys ^ np.uint32(self._next_call())
        if self.device.type != "cpu":
            return None
        return self._call_keys().view(-1).numpy().view(np.uint32)

    def _on_host(self, numel: int) -> bool:
        """Whether a draw of `numel` values per image is small enough to hash on the host."""
        return self._host_keys is not None and len(self) * numel <= _HOST_LIMIT

    def _host_bits(self, numel: int) -> np.ndarray:
        """The next call's (B, numel) bits as uint32, hashed with NumPy (the same values)."""
        keys = (self._host_keys ^ np.uint32(self._next_call()))[:, None]
        index = np.arange(numel, dtype=np.uint32) * np.uint32(_GOLDEN & _MASK32)
        bits = _mix32_host(index[None, :] + keys)
        bits ^= keys
        return _mix32_host(bits)

    def _bit_spans(self, numel: int, step: int | None = None):
        """The next call's (B, numel) bits piece by piece: yields (start, stop, bits of columns
        [start, stop)). The piece is a reused buffer: use it before the next step."""
        if self._on_host(numel):
            bits = to_device(self._host_bits(numel).view(np.int32), self.device)
            return iter([(0, numel, bits)])
        keys = self._call_keys()  # now, not when the pieces are first asked for
        if fused.active(self.device):  # the whole draw, one kernel
            return iter([(0, numel, fused.run("hashed_bits", hashed_bits, keys, numel))])
        rows = len(self)
        step = step or _span(numel, rows, self.device)
        bits = torch.empty(rows, min(step, numel), dtype=torch.int32, device=self.device)
        scratch = torch.empty_like(bits)

        def pieces():
            for start in range(0, numel, step):
                stop = min(numel, start + step)
                yield start, stop, _hash_into(bits[:, : stop - start], keys, start, scratch[:, : stop - start])

        return pieces()

    def _bits(self, shape: Sequence[int]) -> Tensor:
        """(B, *shape) int32 of independent 32-bit patterns for the next call."""
        numel = math.prod(shape)
        out = torch.empty(len(self), numel, dtype=torch.int32, device=self.device)
        for start, stop, bits in self._bit_spans(numel):
            out[:, start:stop] = bits
        return out.view(len(self), *shape)

    def below(self, high: int, *shape: int) -> Tensor:
        """(B, *shape) int64 uniform in [0, high), for `high` up to 2^31: random indices.

        All 32 bits of each hash are scaled to [0, high) (Lemire's multiply-shift), so it is
        one call where `integers` would draw a float and round it; use it to pick positions,
        say pixels of an image:

        >>> where = ImageRandom([7, 8]).below(64 * 64, 10)  # 10 pixel indices per image
        >>> tuple(where.shape), bool((where >= 0).all() and (where < 64 * 64).all())
        ((2, 10), True)
        """
        if not 1 <= high <= 1 << 31:
            raise ValueError(f"high must be in [1, 2^31], got {high}")
        unsigned = self._bits(shape).to(torch.int64).bitwise_and_(_MASK32)
        return unsigned.mul_(high).bitwise_right_shift_(32)

    def uniform(self, *shape: int, low: float | Tensor = 0.0, high: float | Tensor = 1.0, host: bool = False) -> Tensor:
        """(B, *shape) float32 uniform in [low, high); low/high may be (B,) per-image tensors.

        `host=True` leaves a small draw on the CPU (when the seeds are there), for values an op
        needs on the host, such as sizes and counts: reading them from an accelerator would wait
        for it. The values are the same either way.
        """
        numel = math.prod(shape)
        on_host = self.host_uniform(*shape)
        if on_host is not None:
            unit = torch.from_numpy(on_host) if host else to_device(on_host, self.device)
        else:
            unit = torch.empty(len(self), numel, dtype=torch.float32, device=self.device)
            for start, stop, bits in self._bit_spans(numel):
                unit[:, start:stop] = bits.bitwise_right_shift_(8).bitwise_and_(0xFFFFFF)  # the top 24 bits
            unit = unit.mul_(1.0 / (1 << 24)).view(len(self), *shape)
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            if (low, high) == (0.0, 1.0):
                return unit
            return unit.mul_(high - low).add_(low)
        low_t, high_t = (_per_image(v, unit) for v in (low, high))
        return unit.mul_(high_t - low_t).add_(low_t)

    def host_uniform(self, *shape: int) -> np.ndarray | None:
        """`uniform(*shape)` as a (B, *shape) float32 NumPy array, drawn without touching the
        device (so deciding on it needs no read back), where the draw is small and the seeds are on
        the host; else None, with the stream unchanged: draw with `uniform` then."""
        numel = math.prod(shape)
        if not self._on_host(numel):
            return None
        top = (self._host_bits(numel) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))
        return top.reshape(len(self), *shape)

    def normal(self, *shape: int) -> Tensor:
        """(B, *shape) float32 standard normal.

        Each 32-bit hash gives two normals: its high and its low 16 bits each pick one of 65,536
        equally likely values, the normal quantiles at (k + ½)/65,536 (so |z| ≤ 4.32, and the
        spacing near 0 is 4·10⁻⁵). The first half of the values come from the high halves, the
        second half from the low halves of the same hashes.
        """
        numel = math.prod(shape)
        out = torch.empty(len(self), numel, dtype=torch.float32, device=self.device)
        for first, second, values in self.normal_spans(numel):
            out[:, first[0] : first[1]] = values[:, 0, : first[1] - first[0]]
            out[:, second[0] : second[1]] = values[:, 1, : second[1] - second[0]]
        return out.view(len(self), *shape)

    def normal_spans(self, numel: int):
        """The values of `normal(numel)` piece by piece, without materialising them all.

        For per-pixel noise on large batches: use each piece as it comes (add it into the image)
        and the (B, numel) normals never exist at once. Yields ((start, stop), (start2, stop2),
        values): values[:, 0, :stop - start] are the normals of columns [start, stop) and
        values[:, 1, :stop2 - start2] those of columns [start2, stop2) of `normal(numel)`'s
        result (each hash gives two normals, one for each half). `values` is a reused buffer:
        use it before asking for the next piece. On the CPU a piece covers a few hundred
        thousand values, so it stays in cache.

        >>> rand, whole = ImageRandom([7]), ImageRandom([7]).normal(5)
        >>> pieces = torch.empty(1, 5)
        >>> for (start, stop), (start2, stop2), values in rand.normal_spans(5):
        ...     pieces[:, start:stop] = values[:, 0, : stop - start]
        ...     pieces[:, start2:stop2] = values[:, 1, : stop2 - start2]
        >>> torch.equal(pieces, whole)
        True
        """
        rows, half = len(self), (numel + 1) // 2
        table = _normal_table(self.device)
        step = max(1, min(half, _span(2 * half, rows, self.device) // 2))
        index = torch.empty(rows, 2, step, dtype=torch.int32, device=self.device)
        values = torch.empty(rows, 2, step, dtype=torch.float32, device=self.device)
        return self._normal_pieces(self._bit_spans(half, step), numel, table, index, values)

    @staticmethod
    def _normal_pieces(spans, numel: int, table: Tensor, index: Tensor, values: Tensor):
        rows, _, step = index.shape
        half = (numel + 1) // 2
        for start, stop, bits in spans:
            count = stop - start
            part = index[:, :, :count]
            torch.bitwise_right_shift(bits, 16, out=part[:, 0]).bitwise_and_(0xFFFF)
            torch.bitwise_and(bits, 0xFFFF, out=part[:, 1])
            if count == step:
                torch.index_select(table, 0, index.view(-1), out=values.view(-1))
                chunk = values
            else:
                chunk = torch.index_select(table, 0, part.reshape(-1)).view(rows, 2, count)
            second_stop = max(start, min(stop, numel - half))
            yield (start, stop), (half + start, half + second_stop), chunk

    def integers(self, low: int | Tensor, high: int | Tensor, *shape: int, host: bool = False) -> Tensor:
        """(B, *shape) int64 uniform in [low, high] inclusive; bounds may be per image; `host` as
        for `uniform`."""
        unit = self.uniform(*shape, host=host)
        low_t, high_t = (_per_image(torch.as_tensor(v, device=unit.device).float(), unit) for v in (low, high))
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


# On the CPU, large draws are made in pieces of about this many values per torch thread: the
# working buffers then stay in cache and are recycled by malloc instead of being faulted in afresh.
_CPU_SPAN = 1 << 19
# Draws of at most this many values in all are hashed on the host with NumPy, when the seeds are
# there: a handful of NumPy calls cost less than launching the same two dozen tensor operations.
_HOST_LIMIT = 1 << 14
_NORMAL_TABLES: dict[torch.device, Tensor] = {}


def _span(numel: int, rows: int, device: torch.device) -> int:
    """Columns per piece when `rows` images each draw `numel` values."""
    if device.type != "cpu":
        return max(1, numel)
    return max(1, min(numel, cpu_piece(_CPU_SPAN) // max(1, rows)))


def _hash_into(out: Tensor, keys: Tensor, start: int, scratch: Tensor) -> Tensor:
    """Fill (B, n) `out` with the bits of element indices [start, start + n) for the (B, 1) keys."""
    count = out.shape[1]
    index = torch.arange(start, start + count, dtype=torch.int32, device=out.device).mul_(_GOLDEN)
    torch.add(index.view(1, -1), keys, out=out)
    _mix32(out, scratch)
    return _mix32(out.bitwise_xor_(keys), scratch)


def hashed_bits(keys: Tensor, count: int) -> Tensor:
    """(B, count) int32: the bits of element indices [0, count) for the (B, 1) keys, what
    `_hash_into` computes in place, as one pure expression that `fused` compiles into a kernel."""
    index = torch.arange(count, dtype=torch.int32, device=keys.device).mul(_GOLDEN).view(1, -1)
    return _mixed(_mixed(index + keys) ^ keys)


def _mixed(x: Tensor) -> Tensor:
    """`_mix32` out of place, in plain expressions a compiler can fuse."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _M1
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _M2
    return x ^ ((x >> 16) & 0xFFFF)


def _normal_table(device: torch.device) -> Tensor:
    """The 65,536 standard-normal quantiles at (k + ½)/65,536, float32, exactly antisymmetric.

    Built in float64 on the CPU and copied, so every device looks up the same values.
    """
    device = torch.device(device)
    table = _NORMAL_TABLES.get(device)
    if table is None:
        probability = (torch.arange(1 << 15, dtype=torch.float64) + 0.5) / (1 << 16)
        lower = torch.special.ndtri(probability)  # k < 32768: negative quantiles
        table = torch.cat([lower, -lower.flip(0)]).to(torch.float32).to(device)
        _NORMAL_TABLES[device] = table
    return table
