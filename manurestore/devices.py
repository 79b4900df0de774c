"""Choosing a torch device and a compute precision from the user's `--device` and `--precision`."""

from __future__ import annotations

import numpy as np
import torch

from manurestore.errors import UsageError


def visible_devices() -> list[str]:
    """Every device torch can use here, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """'auto' picks the first GPU when there is one, else the CPU; anything else must exist.

    Under a launcher that starts one process per GPU (torchrun's LOCAL_RANK), 'auto' and 'cuda'
    give each process its own GPU, `cuda:LOCAL_RANK` (modulo the GPUs visible).
    """
    if local_rank is not None and name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: torch sees no CUDA device here; use --device cpu")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "mps" and "mps" not in visible_devices():
        raise UsageError(f"--device {name}: MPS is not available here; use --device cpu")
    return device


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware: Intel AMX tiles, or AVX-512 BF16 dot products
    (AMD Zen 4 and later, recent Xeons). There bf16 inference of the bundled model runs 1.7–2.4×
    faster than fp32 on 2 cores (AMX 0.50 against 1.22 s/MP; AVX-512 BF16 0.95 against 1.58) and
    changes restored pages by under 0.1 dB; elsewhere bf16 is emulated and slower than fp32."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    try:
        return any(bool(probe()) for probe in probes if probe is not None)
    except RuntimeError:
        return False


def resolve_precision(precision: str, device: torch.device, inference: bool = False) -> torch.dtype:
    """The compute dtype for `--precision`: auto is bf16 on GPUs that have it and, for inference,
    on CPUs with bf16 matrix units; else fp32 (training on a CPU stays fp32, where it was measured)."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: use auto, fp32, bf16 or fp16")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise UsageError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        return torch.float16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if inference and device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32  # CPUs without bf16 arithmetic are slower in bf16 than in fp32


def to_device(array: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A small host array (or tensor) on `device` without waiting for the device: a plain copy
    from pageable memory synchronises with the CUDA stream, so there it goes through pinned
    memory, non-blocking (torch keeps the pinned block until the copy is done). A tensor already
    on `device` comes back as it is."""
    device = torch.device(device)
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
    if tensor.device.type != "cpu" or device.type == "cpu":
        return tensor.to(device)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
