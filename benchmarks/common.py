"""What every benchmark shares: the machine it ran on, the header, the common flags, timing, the report.

Each benchmark script keeps only what it measures; this module makes their output and flags alike
(--quick, --smoke, --device, --threads, --json) so figures from different scripts can be read together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

# --------------------------------------------------------------------------------------------
# Flags


def base_parser(doc: str, quick: str, device: str | None = "measure only this device "
                "(default: the CPU, and CUDA when torch sees it)") -> argparse.ArgumentParser:
    """The flags every benchmark takes; `device=None` leaves --device out (CPU-only benchmarks)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest run through every code path, seconds long: checks the script works; "
                             "its figures mean nothing")
    if device is not None:
        parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help=device)
    parser.add_argument("--threads", type=int, default=None,
                        help="set torch's and OpenCV's thread counts (default: leave them as they are)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write every figure to FILE")
    return parser


def parse(parser: argparse.ArgumentParser, argv, smoke: dict) -> argparse.Namespace:
    """Parse; with --smoke, `smoke` replaces the defaults (flags given explicitly still win) and --quick is on."""
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(**smoke, quick=True)
        args = parser.parse_args(argv)
    return args


def start(args: argparse.Namespace) -> float:
    """Refuse --device cuda without CUDA, apply --threads; returns the start time for the wall-time line."""
    if getattr(args, "device", None) == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        raise SystemExit(2)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        with contextlib.suppress(ImportError):  # OpenCV is only there when albumentations is
            import cv2

            cv2.setNumThreads(args.threads)
    return time.perf_counter()


def devices(args: argparse.Namespace) -> list[torch.device]:
    """--device, or the CPU and, when torch sees one, CUDA."""
    if args.device:
        return [torch.device(args.device)]
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def model_names(text: str | None, *also: str) -> list[str]:
    """Comma-separated registry names (None: every model); an unknown name ends the run with status 2."""
    from manurestore.models.registry import list_models

    names = [m.strip() for m in text.split(",") if m.strip()] if text else list_models()
    unknown = [m for m in [*names, *also] if m not in list_models()]
    if unknown:
        print(f"error: unknown model(s) {unknown}; choose from {list_models()}", file=sys.stderr)
        raise SystemExit(2)
    return names


# --------------------------------------------------------------------------------------------
# The machine and the header


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info() -> dict:
    """CPU, usable cores, load, threads, GPU and library versions: what a figure depends on besides the code."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # no /proc off Linux: keep platform's name
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": load_average(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for module in ("manurestore", "kornia", "albumentations", "cv2"):
        try:
            versions["opencv" if module == "cv2" else module] = __import__(module).__version__
        except ImportError:
            versions["opencv" if module == "cv2" else module] = None
    if versions["opencv"] is not None:
        import cv2

        info["opencv_threads"] = cv2.getNumThreads()
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
    info["versions"] = versions
    return info


def print_header(info: dict, title: str, lines: list[str], threads_note: str = "") -> None:
    """The title, the machine (four lines), the benchmark's own setup `lines`, and a warning on a busy machine."""
    v = info["versions"]
    print(f"manurestore {v['manurestore']} — {title}")
    load = info["load_average"]
    load_text = f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else ""
    print(f"CPU   : {info['cpu']} — {info['usable_cpus']} usable of {info['logical_cpus']} logical CPUs{load_text}")
    threads = f"torch threads {info['torch_threads']} (interop {info['torch_interop_threads']})"
    if "opencv_threads" in info:
        threads += f", OpenCV threads {info['opencv_threads']}"
    print(f"threads: {threads}{threads_note}")
    print(f"GPU   : {info['gpu'] + ' (CUDA ' + str(info.get('cuda')) + ')' if info['gpu'] else 'none seen by torch'}")
    print("versions: " + ", ".join(f"{name} {version or 'not installed'}" for name, version in
                                   [("python", info["python"])] + list(v.items())))
    for line in lines:
        print(line)
    if load and info["usable_cpus"] and load[0] > 0.5 * info["usable_cpus"]:
        print(f"warning: the machine looks busy (load {load[0]:.2f} on {info['usable_cpus']} CPUs); timings will be noisy "
              "(--threads 1 suffers least from sharing the cores)")
    print()


def mode(args: argparse.Namespace) -> str:
    """'smoke', 'quick' or 'full', for the timing line."""
    return "smoke (figures mean nothing)" if args.smoke else "quick" if args.quick else "full"


def finish(began: float, json_path: Path | None, report: dict) -> None:
    """The closing lines (load at the end, wall time) and, with --json, the report with the final load added."""
    load = load_average()
    if load:
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"benchmark wall time: {time.perf_counter() - began:.1f} s")
    if json_path is not None:
        report = {**report, "load_average_end": load}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")


# --------------------------------------------------------------------------------------------
# Timing


def sync(device: torch.device) -> None:
    """Wait for the device: CUDA work is asynchronous, so a clock read before this measures only the launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Spread:
    """Seconds per call: the median of the timed runs, the fastest and slowest, and how many there were."""

    median: float
    fastest: float
    slowest: float
    count: int
    calls: int = 1  # back-to-back calls in each timed run

    @classmethod
    def of(cls, values: list[float], calls: int = 1) -> "Spread":
        return cls(statistics.median(values), min(values), max(values), len(values), calls)


def run_seconds(fn: Callable[[], object], calls: int, device: torch.device) -> float:
    """Wall time of `calls` back-to-back calls; on CUDA between two events, after a synchronize."""
    if device.type == "cuda":
        start_event, end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start_event.record()
        for _ in range(calls):
            fn()
        end_event.record()
        end_event.synchronize()
        return start_event.elapsed_time(end_event) / 1e3
    begin = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - begin


def repeat_call(fn: Callable[[], object], device: torch.device, runs: int, warmup: int, min_run_s: float) -> Spread:
    """Seconds per call of a quick call: warm-ups size the runs, then `runs` timed runs of back-to-back calls
    lasting ≥ min_run_s each, so the clock's resolution and one-off stalls do not dominate."""
    once = min(run_seconds(fn, 1, device) for _ in range(max(1, warmup)))
    calls = max(1, math.ceil(min_run_s / max(once, 1e-6)))
    return Spread.of([run_seconds(fn, calls, device) / calls for _ in range(runs)], calls)


def wall_seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Host-clock seconds of one call, synchronised before and after: includes the host-side work around it."""
    sync(device)
    begin = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - begin


def repeat_wall(fn: Callable[[], object], device: torch.device, runs: int, warmup: int) -> Spread:
    """Seconds per call of a slow call: `warmup` untimed calls, then `runs` calls timed one by one."""
    for _ in range(warmup):
        fn()
    return Spread.of([wall_seconds(fn, device) for _ in range(runs)])
