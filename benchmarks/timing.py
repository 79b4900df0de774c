"""Timing helpers the benchmarks share: medians and spreads of repeated calls, CUDA-aware."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Spread:
    median: float
    fastest: float
    slowest: float
    count: int

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        return cls(statistics.median(values), min(values), max(values), len(values))


def run_seconds(fn: Callable[[], object], calls: int, device: torch.device) -> float:
    """Wall time of `calls` back-to-back calls; on CUDA between two events, after a synchronize."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - begin


def repeat_call(fn: Callable[[], object], device: torch.device, runs: int, warmup: int, min_run_s: float) -> Spread:
    """Seconds per call: warm-ups, then `runs` timed runs of back-to-back calls lasting ≥ min_run_s (CUDA events)."""
    once = min(run_seconds(fn, 1, device) for _ in range(max(1, warmup)))
    calls = max(1, math.ceil(min_run_s / max(once, 1e-6)))
    return Spread.of([run_seconds(fn, calls, device) / calls for _ in range(runs)])
