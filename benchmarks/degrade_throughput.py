#!/usr/bin/env python
"""Images/s of the `aged` degradation pipeline with every op firing, beside albumentations.

    python benchmarks/degrade_throughput.py                 # CPU, and CUDA when torch sees it
    python benchmarks/degrade_throughput.py --quick         # the same cases, ~10–20 s on an idle 2-core machine
    python benchmarks/degrade_throughput.py --device cuda --json results.json
    python benchmarks/degrade_throughput.py --quick --per-op  # each op alone, both sides
    python benchmarks/degrade_throughput.py --smoke         # tiny images, one run, --per-op: checks the script works
    python benchmarks/degrade_throughput.py --device cuda --fused   # the pipeline eager and fused, side by side

Cases: 256×256 RGB at batch 16 and one 2048×1536 RGB page (batch 1) on the CPU; on CUDA the same
two plus 256×256 at batch 256. Our side is timed twice: the float pipeline alone, and with the
uint8 (B, H, W, C) → float → uint8 conversions `manurestore degrade` does (`manurestore.batches`:
uint8 host images in and out; on CUDA from pinned memory). Albumentations runs its six ops on uint8
numpy images one at a time, as a per-image CPU augmentation pipeline does; what stands in for the
ops it lacks is printed with the results. Every figure is the median of several timed runs after a
warm-up; the spread (fastest–slowest run) is printed beside it.

`--fused` also times the float pipeline with the eager ops (MANURESTORE_FUSED=0) and with the
fused kernels (MANURESTORE_FUSED=1; on the CPU too, where compiling takes tens of seconds, printed
apart). Without it each device runs as `manurestore degrade` would: fused on CUDA with Triton.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from common import (Spread, base_parser, devices, finish, machine_info, mode, parse, print_header, repeat_call,
                    start)

from manurestore.batches import to_batch, to_images
from manurestore.degradations import fused
from manurestore.degradations.base import Step
from manurestore.degradations.functional import FULL_TINT, STAIN_BROWN, opencv_sigma
from manurestore.degradations.pipeline import Pipeline

PRESET = "aged"
SMALL = (256, 256)
PAGE = (1536, 2048)  # (H, W): a 2048×1536 page scanned in landscape
SMOKE_SMALL, SMOKE_PAGE = (64, 64), (192, 256)  # --smoke: the same cases, tiny
CPU_TARGET_RATIO = 2.0  # ours ≥ 2× albumentations at 256² on the CPU
CUDA_TARGET_IMAGES_PER_S = 100_000.0  # at 256², batch 256, on an NVIDIA GPU
STAIN_GRID = 192  # the albumentations stand-in draws its stain mask at this size: our op's finest grid


# --------------------------------------------------------------------------------------------
# The two pipelines


def every_op_pipeline(preset: str = PRESET) -> Pipeline:
    """The preset's ops and parameters, each firing on every image (p = 1)."""
    base = Pipeline.from_preset(preset)
    return Pipeline([Step(step.op, 1.0) for step in base.steps], name=f"{base.name} (p=1)")


def albumentations_pipeline(pipeline: Pipeline, seed: int = 0):
    """albumentations' closest equivalents of the pipeline's ops, in the same order, all p = 1.

    Returns (Compose, [(our op name, transform, how it stands in)]). The parameters are read from
    our ops, so the two sides stay in step when the preset changes.
    """
    import albumentations as A
    import cv2

    rng = np.random.default_rng(seed)
    ops = {step.op.name: step.op.params for step in pipeline.steps}
    entries = []
    for step in pipeline.steps:
        name, params = step.op.name, step.op.params
        if name == "gaussian_noise":
            transform = A.GaussNoise(std_range=tuple(params.sigma), mean_range=(0.0, 0.0), per_channel=True, p=1.0)
            note = f"GaussNoise(std_range={tuple(params.sigma)}) — std as a fraction of 255, per pixel and channel"
        elif name == "gaussian_blur":
            low, high = min(params.kernel_sizes), max(params.kernel_sizes)
            sigmas = (opencv_sigma(low), opencv_sigma(high))
            # albumentations 2.x builds its kernel from sigma itself: sigma_limit=0 divides by zero
            # and returns a black image, so the OpenCV rule's sigmas are given as the range.
            transform = A.GaussianBlur(blur_limit=(low, high), sigma_limit=sigmas, p=1.0)
            note = (f"GaussianBlur(blur_limit=({low}, {high}), sigma_limit=({sigmas[0]:.2f}, {sigmas[1]:.2f})) — "
                    "the OpenCV rule's sigmas (2.x turns sigma_limit=0 into a black image); even sizes round up")
        elif name == "contrast":
            alpha, beta = params.alpha, params.beta
            transform = A.RandomBrightnessContrast(
                brightness_limit=(beta.low, beta.high), contrast_limit=(alpha.low - 1.0, alpha.high - 1.0),
                brightness_by_max=True, ensure_safe_range=False, p=1.0)
            note = (f"RandomBrightnessContrast(contrast_limit=({alpha.low - 1:.2f}, {alpha.high - 1:.2f}), "
                    f"brightness_limit={tuple(beta)}, brightness_by_max=True) — exactly alpha·x + beta·255")
        elif name == "salt_pepper":
            transform = A.SaltAndPepper(amount=tuple(params.amount), salt_vs_pepper=(0.5, 0.5), p=1.0)
            note = f"SaltAndPepper(amount={tuple(params.amount)}, salt_vs_pepper=(0.5, 0.5)) — whole pixels, as ours"
        elif name == "yellowing":
            transform = A.Lambda(image=_yellowing_lambda(params.strength, rng, cv2), name="yellowing", p=1.0)
            note = f"Lambda: cv2.LUT per channel ×(1 − s·(1 − {FULL_TINT})), s in {tuple(params.strength)} (no built-in op)"
        elif name == "stains":
            transform = A.Lambda(image=_stains_lambda(params, rng, cv2), name="stains", p=1.0)
            note = (f"Lambda (albumentations has no stain op): {int(params.count.low)}–{int(params.count.high)} "
                    f"filled ellipses drawn with cv2 on a ≤{STAIN_GRID}-px mask, Gaussian-softened, resized "
                    "and multiplied in as brown — smooth ellipses where ours draws wobbly outlines")
        else:
            raise SystemExit(f"no albumentations equivalent is defined for op {name!r}")
        entries.append((name, transform, note))
    assert set(ops) == {name for name, _, _ in entries}
    compose = A.Compose([transform for _, transform, _ in entries], seed=seed)
    return compose, entries


def _yellowing_lambda(strength, rng: np.random.Generator, cv2):
    tint = np.asarray(FULL_TINT, dtype=np.float32)
    levels = np.arange(256, dtype=np.float32)[:, None]

    def yellowing(image: np.ndarray, **_) -> np.ndarray:
        s = rng.uniform(strength.low, strength.high)
        scale = 1.0 - s * (1.0 - tint)
        lut = np.clip(np.rint(levels * scale), 0, 255).astype(np.uint8).reshape(256, 1, 3)
        return cv2.LUT(image, lut)

    return yellowing


def _stains_lambda(params, rng: np.random.Generator, cv2):
    brown = np.asarray(STAIN_BROWN, dtype=np.float32)

    def stains(image: np.ndarray, **_) -> np.ndarray:
        height, width = image.shape[:2]
        scale = min(1.0, STAIN_GRID / max(height, width))
        grid_h, grid_w = max(1, round(height * scale)), max(1, round(width * scale))
        keep = np.ones((grid_h, grid_w), np.float32)  # product of (1 − opacity) over the blotches
        shorter = min(grid_h, grid_w)
        for _ in range(int(rng.integers(int(params.count.low), int(params.count.high) + 1))):
            radius = rng.uniform(*params.radius) * shorter
            aspect = rng.uniform(0.6, 1.4)
            blob = np.zeros_like(keep)
            centre = (int(rng.uniform(0, grid_w)), int(rng.uniform(0, grid_h)))
            axes = (max(1, int(radius * aspect)), max(1, int(radius / aspect)))
            cv2.ellipse(blob, centre, axes, rng.uniform(0, 180), 0, 360, float(rng.uniform(*params.intensity)), -1, cv2.LINE_AA)
            blob = cv2.GaussianBlur(blob, (0, 0), max(0.5, rng.uniform(*params.softness) * radius / 2))
            keep *= 1.0 - blob
        mask = 1.0 - keep
        if (grid_h, grid_w) != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        darkening = 1.0 - np.clip(brown + rng.uniform(-0.06, 0.06, 3), 0.0, 1.0).astype(np.float32)
        factor = 1.0 - mask[..., None] * darkening
        return np.clip(image * factor + 0.5, 0, 255).astype(np.uint8)

    return stains


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Result:
    case: str
    side: str  # "manurestore" or "albumentations"
    device: str
    variant: str
    height: int
    width: int
    batch: int
    seconds: float  # median seconds per call (one call = one batch, or `batch` images one by one)
    fastest: float
    slowest: float
    runs: int
    calls_per_run: int

    @classmethod
    def timed(cls, case: str, side: str, device: str, variant: str, height: int, width: int, batch: int,
              spread: Spread) -> "Result":
        return cls(case, side, device, variant, height, width, batch, spread.median, spread.fastest, spread.slowest,
                   spread.count, spread.calls)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.seconds

    @property
    def megapixels_per_s(self) -> float:
        return self.images_per_s * self.height * self.width / 1e6

    def row(self) -> dict:
        return {**asdict(self), "images_per_s": self.images_per_s, "megapixels_per_s": self.megapixels_per_s,
                "ms_per_call": 1e3 * self.seconds}


@dataclass
class Settings:
    quick: bool
    runs: int
    warmup: int
    min_run_s: float  # a timed run repeats the call until it lasts at least this long
    fused: bool = False  # also time the pipeline eager and fused
    notes: list[str] = field(default_factory=list)


def measure(fn: Callable[[], object], device: torch.device, settings: Settings) -> Spread:
    """Seconds per call, with this run's number and length of timed runs."""
    return repeat_call(fn, device, settings.runs, settings.warmup, settings.min_run_s)


# --------------------------------------------------------------------------------------------
# The cases


def _test_images(height: int, width: int, count: int, seed: int) -> np.ndarray:
    """(count, H, W, 3) uint8: beige paper with dark ink-like strokes (content barely matters)."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, height, width, 3), np.uint8)
    images[:] = (226, 210, 178)
    rows = rng.integers(0, height, size=(count, max(1, height // 24)))
    for index in range(count):
        for row in rows[index]:
            images[index, row:row + 3, : int(width * rng.uniform(0.5, 0.95))] = (40, 30, 25)
    noise = rng.integers(-12, 13, size=images.shape, dtype=np.int16)
    return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def bench_ours(pipeline: Pipeline, case: str, height: int, width: int, batch: int, device: torch.device,
               settings: Settings) -> list[Result]:
    host = torch.from_numpy(_test_images(height, width, batch, seed=1))
    seeds = list(range(1000, 1000 + batch))
    x = to_batch(host, device)  # a plain contiguous NCHW float batch, as a training loop would hold
    if device.type == "cuda":
        host = host.pin_memory()
    # What `manurestore degrade` pays around the pipeline: uint8 host images in, uint8 host images out.
    converted = "+ uint8↔float on cpu" if device.type == "cpu" else "+ uint8↔float + host↔GPU copies"
    variants: list[tuple[str, Callable[[], object]]] = [
        ("pipeline (float in, float out)", lambda: pipeline(x, seeds)),
        (converted, lambda: to_images(pipeline(to_batch(host, device), seeds, overwrite_input=True))),
    ]
    out = pipeline(x, seeds)
    if not torch.isfinite(out).all():
        raise SystemExit(f"manurestore produced non-finite values on {case}")
    results = [Result.timed(case, "manurestore", device.type, variant, height, width, batch, measure(fn, device, settings))
               for variant, fn in variants]
    if settings.fused:
        for value, variant in (("0", "pipeline, eager ops"), ("1", "pipeline, fused kernels")):
            with fused_setting(value):
                began = time.perf_counter()
                pipeline(x, seeds)  # compiles, for this shape
                if value == "1":
                    settings.notes.append(f"{case} on {device.type}: first fused call (compiling) {time.perf_counter() - began:.1f} s")
                results.append(Result.timed(case, "manurestore", device.type, variant, height, width, batch,
                                            measure(lambda: pipeline(x, seeds), device, settings)))
    return results


@contextmanager
def fused_setting(value: str) -> Iterator[None]:
    """MANURESTORE_FUSED set to `value` inside the block, as it was after."""
    before = os.environ.get(fused.FUSED_ENV)
    os.environ[fused.FUSED_ENV] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[fused.FUSED_ENV]
        else:
            os.environ[fused.FUSED_ENV] = before


def bench_albumentations(compose, case: str, height: int, width: int, count: int, settings: Settings) -> Result:
    images = list(_test_images(height, width, count, seed=1))

    def run():
        return [compose(image=image)["image"] for image in images]

    out = run()
    means = [float(image.mean()) for image in out]
    if min(means) < 5.0:  # catches transforms that silently blank the image
        raise SystemExit(f"albumentations returned near-black images on {case} (means {means[:4]}…)")
    return Result.timed(case, "albumentations", "cpu", "per image, uint8 numpy", height, width, count,
                        measure(run, torch.device("cpu"), settings))


def per_op_timings(pipeline: Pipeline, entries, height: int, width: int, batch: int, device: torch.device,
                   settings: Settings) -> list[dict]:
    """Each op alone (through a one-step pipeline, so with its RNG set-up), and albumentations' equivalent."""
    x = to_batch(torch.from_numpy(_test_images(height, width, batch, seed=2)), device)
    seeds = list(range(batch))
    images = list(_test_images(height, width, batch, seed=2)) if entries else []
    albu = {name: transform for name, transform, _ in entries or []}
    rows = []
    for step in pipeline.steps:
        single = Pipeline([step])
        ours = measure(lambda: single(x, seeds), device, settings)
        row = {"op": step.op.name, "device": device.type, "height": height, "width": width, "batch": batch,
               "ours_ms_per_batch": 1e3 * ours.median, "ours_fastest_ms": 1e3 * ours.fastest,
               "albumentations_ms_per_batch": None, "albumentations_fastest_ms": None}
        if step.op.name in albu:
            import albumentations as A

            compose = A.Compose([albu[step.op.name]], seed=0)
            theirs = measure(lambda: [compose(image=image)["image"] for image in images], torch.device("cpu"), settings)
            row["albumentations_ms_per_batch"] = 1e3 * theirs.median
            row["albumentations_fastest_ms"] = 1e3 * theirs.fastest
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Report


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def print_results(results: list[Result]) -> None:
    print(f"{'case':<26} {'side':<15} {'dev':<5} {'variant':<33} {'img/s':>10} {'MP/s':>8} {'ms/call':>9} {'spread ms':>15}")
    last_case = None
    for r in results:
        case = r.case if r.case != last_case else ""
        spread = f"{1e3 * r.fastest:.1f}–{1e3 * r.slowest:.1f}"
        print(f"{case:<26} {r.side:<15} {r.device:<5} {r.variant:<33} {_fmt(r.images_per_s):>10} "
              f"{_fmt(r.megapixels_per_s):>8} {1e3 * r.seconds:>9.2f} {spread:>15}")
        last_case = r.case
    print()


def comparisons(results: list[Result]) -> tuple[list[dict], list[dict]]:
    """Ratios ours/albumentations on the same image size, and the two targets."""
    albu = {(r.height, r.width): r for r in results if r.side == "albumentations"}
    ratios, targets = [], []
    for r in results:
        if r.side != "manurestore":
            continue
        theirs = albu.get((r.height, r.width))
        if theirs is not None:
            ratios.append({"case": r.case, "device": r.device, "variant": r.variant,
                           "ratio": r.images_per_s / theirs.images_per_s})
    for ratio in ratios:
        if ratio["device"] == "cpu" and ratio["case"].startswith("256x256") and ratio["variant"].startswith("+ uint8"):
            targets.append({"target": f"≥{CPU_TARGET_RATIO:g}× albumentations at 256² on the CPU (with conversions)",
                            "value": ratio["ratio"], "met": ratio["ratio"] >= CPU_TARGET_RATIO})
    for r in results:
        if r.side == "manurestore" and r.device == "cuda" and r.batch == 256 and (r.height, r.width) == SMALL and r.variant.startswith("pipeline"):
            targets.append({"target": f"≥{CUDA_TARGET_IMAGES_PER_S:,.0f} img/s at 256² batch 256 on the GPU ({r.variant})",
                            "value": r.images_per_s, "met": r.images_per_s >= CUDA_TARGET_IMAGES_PER_S})
    return ratios, targets


def print_comparisons(ratios: list[dict], targets: list[dict], have_albumentations: bool) -> None:
    if ratios:
        print("ours / albumentations, images/s on the same image size:")
        for ratio in ratios:
            print(f"  {ratio['case'] + ' (' + ratio['device'] + ')':<30} {ratio['variant']:<33} {ratio['ratio']:>7.2f}×")
        print()
    print("targets:")
    if not any("CPU" in t["target"] for t in targets):
        why = "albumentations is not installed" if not have_albumentations else "the CPU was not measured at 256²"
        print(f"  ≥{CPU_TARGET_RATIO:g}× albumentations at 256² on the CPU: not measured ({why})")
    if not any("GPU" in t["target"] for t in targets):
        print(f"  ≥{CUDA_TARGET_IMAGES_PER_S:,.0f} img/s at 256² batch 256 on an NVIDIA GPU: not measured (no CUDA device used)")
    for t in targets:
        value = f"{t['value']:.2f}×" if "×" in t["target"] else f"{t['value']:,.0f} img/s"
        print(f"  {t['target']}: {value} — {'MET' if t['met'] else 'NOT MET'}")
    print()


def print_per_op(rows: list[dict]) -> None:
    print("each op alone, ms per batch, median (fastest); ours through a one-step pipeline (RNG set-up and final")
    print("clamp included), albumentations on the same images one at a time on the CPU:")
    print(f"  {'op':<16} {'case':<22} {'ours':>20} {'albumentations':>20} {'ours/albu speed':>16}")
    for row in rows:
        case = f"{row['width']}x{row['height']} b{row['batch']} {row['device']}"
        theirs = row["albumentations_ms_per_batch"]
        speed = f"{theirs / row['ours_ms_per_batch']:.2f}×" if theirs else "—"
        ours_text = f"{row['ours_ms_per_batch']:.2f} ({row['ours_fastest_ms']:.2f})"
        theirs_text = f"{theirs:.2f} ({row['albumentations_fastest_ms']:.2f})" if theirs else "—"
        print(f"  {row['op']:<16} {case:<22} {ours_text:>20} {theirs_text:>20} {speed:>16}")
    print()


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = base_parser(__doc__, quick="3 short timed runs per figure (about 10–20 s in all on an idle 2-core machine)")
    parser.add_argument("--per-op", action="store_true", help="also time each op alone, ours and albumentations'")
    parser.add_argument("--no-albumentations", action="store_true", help="measure our side only")
    parser.add_argument("--fused", action="store_true", help="also time the pipeline with eager ops and with fused kernels")
    return parse(parser, argv, smoke={"per_op": True})


def main(argv=None) -> int:
    args = parse_args(argv)
    began = start(args)
    measured = devices(args)
    if args.smoke:
        settings = Settings(quick=True, runs=1, warmup=1, min_run_s=0.0, fused=args.fused)
    elif args.quick:
        settings = Settings(quick=True, runs=3, warmup=1, min_run_s=0.15, fused=args.fused)
    else:
        settings = Settings(quick=False, runs=7, warmup=3, min_run_s=1.0, fused=args.fused)
    info = machine_info()
    print_header(info, f"degradation throughput, preset '{PRESET}' with every op firing (p=1)", [
        f"timing: {mode(args)} — {settings.warmup} warm-up call(s), then the median of {settings.runs} timed runs, "
        f"each ≥ {settings.min_run_s:g} s of back-to-back calls; devices: {', '.join(d.type for d in measured)}"])

    pipeline = every_op_pipeline()
    compose, entries = None, None
    have_albumentations = info["versions"]["albumentations"] is not None
    if have_albumentations and not args.no_albumentations:
        compose, entries = albumentations_pipeline(pipeline)
        print("albumentations side (uint8 numpy, one image at a time, every transform p=1):")
        for name, _, note in entries:
            print(f"  {name:<15} → {note}")
        print()
    elif not have_albumentations:
        print("albumentations is not installed (it is in the 'bench' extra: pip install 'manurestore[bench]');")
        print("printing manurestore's figures only.\n")

    small, page = (SMOKE_SMALL, SMOKE_PAGE) if args.smoke else (SMALL, PAGE)
    cases = [(f"{small[1]}x{small[0]} RGB b16", small, 16), (f"{page[1]}x{page[0]} RGB page b1", page, 1)]
    gpu_case = (f"{small[1]}x{small[0]} RGB b256", small, 256)
    results: list[Result] = []
    per_op: list[dict] = []
    for device in measured:
        for label, (height, width), batch in cases + ([gpu_case] if device.type == "cuda" else []):
            results += bench_ours(pipeline, label, height, width, batch, device, settings)
            if args.per_op:
                per_op += per_op_timings(pipeline, entries if device.type == "cpu" else None,
                                         height, width, batch, device, settings)
    if compose is not None:
        for label, (height, width), batch in cases:
            results.append(bench_albumentations(compose, label, height, width, batch, settings))
    # The cases in the order they were defined; within one, ours (CPU, then CUDA) before albumentations.
    order = {label: i for i, (label, _, _) in enumerate(cases + [gpu_case])}
    results.sort(key=lambda r: (order[r.case], r.side != "manurestore", r.device != "cpu"))

    print_results(results)
    for note in settings.notes:
        print(note)
    ratios, targets = comparisons(results)
    print_comparisons(ratios, targets, have_albumentations and not args.no_albumentations)
    if per_op:
        print_per_op(per_op)
    finish(began, args.json, {
        "preset": PRESET, "every_op_fires": True, "machine": info,
        "settings": asdict(settings), "albumentations_equivalents": {n: note for n, _, note in entries or []},
        "results": [r.row() for r in results], "ratios": ratios, "targets": targets, "per_op": per_op,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
