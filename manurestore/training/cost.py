"""What a run will cost before its first step: FLOPs per step over what this device computes.

A newcomer who types `manurestore train data` on a laptop gets the original recipe's vit-base, and
without a figure up front learns only after minutes per step that it will take days. The estimate
counts a step's FLOPs (the model forward and backward, the perceptual loss's VGG) on the meta
device and divides by the rate a short matrix product reaches here, scaled by how much of that
rate training reaches in practice. It is an estimate; the progress bar's ETA is measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

# Training reaches this share of a 512² matmul's rate, and each image costs this much more work
# (drawing and degrading the crop; with the page-context branch, degrading a whole 256² page view),
# in GFLOP of the same rate. Fitted on this project's 2-core CPU, one thread, to vit-tiny and
# vit-small at crops 128 and 256, batch 4–8, with and without page context: the estimates fell
# within 25% of the measured step times (0.26–1.6 s). GPUs are not measured yet.
TRAINING_EFFICIENCY = 0.45
IMAGE_OVERHEAD_GFLOP = 1.0
PAGE_VIEW_OVERHEAD_GFLOP = 4.0
# A CPU run longer than this gets the suggestion of a smaller model or a GPU.
LONG_CPU_RUN_SECONDS = 3600.0


@dataclass(frozen=True)
class RunCost:
    """Steps, estimated seconds per step and in all, and the device's measured rate."""

    steps: int
    seconds_per_step: float
    device_gflops: float

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step


def device_gflops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s a square matmul in `dtype` reaches on `device` (a fraction of a second to measure)."""
    side = 4096 if device.type == "cuda" else 512
    a = torch.randn(side, side, device=device).to(dtype)
    b = torch.randn(side, side, device=device).to(dtype)
    torch.matmul(a, b)  # warm up the kernel choice
    _synchronize(device)
    repeats, started = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        repeats += 1
        _synchronize(device)
        elapsed = time.perf_counter() - started
        if elapsed > 0.15 or repeats >= 200:
            break
    return 2 * side**3 * repeats / elapsed / 1e9


def _synchronize(device: torch.device) -> None:
    """Wait for the device: GPU kernels run asynchronously, so timing them needs it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def vgg_flops(size: int) -> int:
    """FLOPs of the perceptual loss's VGG16 (up to relu3_3) on one size×size image."""
    from torch.utils.flop_counter import FlopCounterMode

    from manurestore.training.losses import VGGFeatures

    with torch.device("meta"):
        vgg = VGGFeatures()
        x = torch.zeros(1, 3, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vgg(x)
    return int(counter.get_total_flops())


def model_step_flops(model_config, crop: int, batch_size: int, perceptual: bool) -> float:
    """FLOPs the networks do in one training step: the model forward and backward (3× forward), the
    VGG on the restored crops (forward and the backward to its input) and on the clean ones (forward).
    The numerator of model FLOP utilisation."""
    from manurestore.models.registry import count_flops

    flops = 3 * count_flops(model_config, crop)
    if perceptual:
        flops += 3 * vgg_flops(crop)
    return float(flops * batch_size)


def step_flops(model_config, crop: int, batch_size: int, perceptual: bool) -> float:
    """Work of one training step in FLOPs: `model_step_flops` and the per-image data work (see the
    constants above), for the estimate."""
    overhead = PAGE_VIEW_OVERHEAD_GFLOP if getattr(model_config, "page_context", False) else IMAGE_OVERHEAD_GFLOP
    return model_step_flops(model_config, crop, batch_size, perceptual) + overhead * 1e9 * batch_size


def estimate(model_config, crop: int, batch_size: int, perceptual: bool, steps: int, device: torch.device,
             gflops: float | None = None) -> RunCost:
    """The run's estimated cost on `device` (its rate measured now unless given)."""
    rate = gflops if gflops is not None else device_gflops(device)
    seconds = step_flops(model_config, crop, batch_size, perceptual) / (rate * 1e9 * TRAINING_EFFICIENCY)
    return RunCost(steps, seconds, rate)


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min', '2.5 days': how long, as a person would say it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes:02d} min"
    return f"{seconds / 86400:.1f} days"
