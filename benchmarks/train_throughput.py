#!/usr/bin/env python
"""Images/s of full training steps, and the share of each step spent on data + degradation.

    python benchmarks/train_throughput.py                    # CPU: vit-tiny and vit-base, 256² crops, batch 16
    python benchmarks/train_throughput.py --quick            # a smoke run: 128² crops, a few steps (~3 min on 2 cores)
    python benchmarks/train_throughput.py --device cuda --json train.json   # vit-tiny, vit-base; projection of the recipe
    python benchmarks/train_throughput.py --device cuda --models vit-base --compile
    python benchmarks/train_throughput.py --breakdown        # also split the model step (forward, loss terms, backward, AdamW)
    python benchmarks/train_throughput.py --smoke            # vit-tiny, 64² crops, batch 2, one step; --breakdown, --epoch-overhead

A step is `Trainer.train_step` itself, fed by `Trainer._loader` as `manurestore train` feeds it: uint8 crops from
a PageStore of synthetic pages (written as PNG to a temporary folder and loaded as the trainer loads them) →
CropDataset + DataLoader batching → uint8 → device → float → the `aged` pipeline on the device → model →
RestorationLoss (L1 + perceptual + SSIM, the recipe's weights 1 / 0.1 / 0.1) → backward → clip → AdamW.
That is the host path (`--crops-on-host`); every figure below is for it unless it says otherwise. Beside it, the
same model and settings with the crops cut on the device (`--crops-on-device`, the default on CUDA: the pages
copied there once, each batch one gather) — full steps and the crops alone, in crops/s, for both paths.

The perceptual term is ON. Without a real torchvision VGG16 file (--vgg-weights) the script writes one with
random weights of the right shapes and the trainer loads it: the cost of the term is the same.

Figures:
  full step       — the median of per-step wall times (CPU), or of runs of back-to-back steps divided by their
                    step count (CUDA, no synchronisation inside a run), data loading included; images/s from it.
  within the step — the same steps instrumented: the loader's next batch, uint8→device→float, the degradation
                    and the rest (the model step) are timed with a synchronize at each boundary on CUDA (the
                    script wraps the trainer's `to_batch` and `Trainer.degrade` to take the marks; library code
                    is unchanged). On the CPU nothing runs asynchronously, so these *are* the timed steps.
  separately      — the loader alone (one epoch of batches), conversion + degradation alone (a fixed batch,
                    repeated), and on CUDA the model step alone (train_step on a cached, already degraded batch).
  host vs device  — the same model and settings with the crops cut on the device: its full step (timed as above)
                    and, for both paths, one batch of uint8 crops alone, delivered on the device (DataLoader + copy
                    against one gather), all in crops/s, and whether the two paths gave the same first batch.
Target printed beside the shares: data + degradation ≤ 10 % of the step time. On CUDA, for vit-base, the
measured step time is also turned into the projected wall time of the seed's full recipe.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from common import (Spread, base_parser, finish, machine_info, mode, model_names, parse, print_header, repeat_call,
                    repeat_wall, run_seconds, start, sync, wall_seconds)

import manurestore.training.trainer as trainer_module
from manurestore.batches import to_batch
from manurestore.data.dataset import CropDataset, PageStore, validation_crops
from manurestore.data.synth import generate_page, page_seed
from manurestore.degradations.pipeline import Pipeline
from manurestore.devices import resolve_precision
from manurestore.models.registry import count_parameters
from manurestore.training.config import TrainConfig
from manurestore.training.cost import device_gflops, model_step_flops
from manurestore.training.data import TrainData
from manurestore.training.losses import VGG16_FILENAME, VGGFeatures
from manurestore.training.trainer import Trainer, lr_at

PRESET = "aged"
TARGET_DATA_SHARE = 0.10  # data + degradation ≤ 10 % of the step time
# The seed's full recipe: 415 images, 100 epochs = 2,600 steps of batch 16, vit-base, perceptual on, bf16.
RECIPE = {"model": "vit-base", "images": 415, "epochs": 100, "steps": 2600, "batch_size": 16, "crop": 256,
          "precision": "bf16"}
RECIPE_TARGET_S = 60.0  # on one H100
SEED_RECIPE_S = 1.5 * 3600  # what the seed reported
SEED_IMAGES = 415  # crops per epoch in the benchmark's data set ≈ the seed's data set


# --------------------------------------------------------------------------------------------
# Data: synthetic pages → PageStore → CropDataset, as `manurestore train DATA` builds them


def make_pages(folder: Path, count: int) -> list[Path]:
    """`count` synthetic pages (palm-leaf and paper, their default sizes) written as PNG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        page = generate_page(page_seed(0, index), "mixed")
        path = folder / f"page-{index:03d}.png"
        Image.fromarray(page).save(path, compress_level=1)
        paths.append(path)
    return paths


def random_vgg_file(folder: Path) -> Path:
    """A torchvision-format VGG16 `features` state dict (up to relu3_3) with random weights."""
    torch.manual_seed(1234)
    state = {f"features.{key}": value for key, value in VGGFeatures().features.state_dict().items()}
    path = folder / f"random-{VGG16_FILENAME}"
    torch.save(state, path)
    return path


@dataclass
class Bench:
    """What every model shares: the pages, the VGG file, the settings."""

    store: PageStore
    vgg_path: Path
    vgg_random: bool
    tmp: Path
    crop: int
    batch_size: int
    crops_per_image: int
    device: torch.device
    precision: str
    compile: bool
    workers: int


def build_trainer(bench: Bench, model: str, crops_on_device: bool = False) -> Trainer:
    cfg = TrainConfig(
        data=bench.tmp / "pages", model=model, batch_size=bench.batch_size, crop=bench.crop,
        crops_per_image=bench.crops_per_image, precision=bench.precision, compile=bench.compile,
        vgg_weights=bench.vgg_path, workers=bench.workers, epochs=100, crops_on_device=crops_on_device,
        run_dir=bench.tmp / f"run-{model}{'-device-crops' if crops_on_device else ''}",
        device=bench.device.type, preset=PRESET, page_context=False,  # times the tiles; the page branch is separate
    )
    train = CropDataset(bench.store, crop=cfg.crop, crops_per_image=cfg.crops_per_image, augment=cfg.augment,
                        seed=cfg.seed)
    crops = validation_crops(bench.store, cfg.crop, cfg.seed)
    val_u8, val_seeds = crops.clean, crops.seeds
    val_clean = to_batch(val_u8, bench.device)
    pipeline = Pipeline.from_preset(PRESET)  # as build_train_data: one pipeline for validation and training
    with torch.no_grad():
        val_degraded = pipeline(val_clean, torch.tensor(val_seeds, dtype=torch.int64))
    data = TrainData(train, val_degraded, val_clean, "benchmark", [], pipeline=pipeline)
    warnings: list[str] = []
    trainer = Trainer(cfg, data, bench.device, on_event=lambda kind, payload: warnings.append(payload.get("message", "")))
    if trainer.loss_fn.vgg is None or trainer.loss_fn.perceptual_weight <= 0:
        raise SystemExit(f"the perceptual term did not switch on: {trainer.loss_fn.perceptual_disabled or warnings}")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    return trainer


def batches(trainer: Trainer) -> Iterator:
    """Batches as Trainer.run draws them: a fresh `_loader` per epoch."""
    epoch = 0
    while True:
        yield from trainer._loader(epoch, 0)
        epoch += 1


# --------------------------------------------------------------------------------------------
# Instrumenting the real step


class Probe:
    """Wraps `to_batch` (as the trainer module imported it) and `Trainer.degrade` to time them inside train_step.

    With `cached` set, they return a fixed clean / degraded batch instead: train_step is then the model step alone.
    """

    def __init__(self, trainer: Trainer, device: torch.device):
        self.trainer, self.device = trainer, device
        self.active = False
        self.cached: tuple[torch.Tensor, torch.Tensor] | None = None
        self.marks: dict[str, float] = {}
        self._convert = trainer_module.to_batch
        self._degrade = trainer.degrade

    def convert(self, batch, device: torch.device) -> torch.Tensor:
        out = self.cached[0] if self.cached is not None else self._convert(batch, device)
        if self.active:
            sync(self.device)
            self.marks["converted"] = time.perf_counter()
        return out

    def degrade(self, clean: torch.Tensor, seeds) -> torch.Tensor:
        out = self.cached[1] if self.cached is not None else self._degrade(clean, seeds)
        if self.active:
            sync(self.device)
            self.marks["degraded"] = time.perf_counter()
        return out

    @contextmanager
    def installed(self):
        trainer_module.to_batch = self.convert
        self.trainer.degrade = self.degrade
        try:
            yield self
        finally:
            trainer_module.to_batch = self._convert
            del self.trainer.degrade  # back to the class's method


@dataclass
class CropPaths:
    """The host path beside the device path, same model and settings (crops/s = images/s)."""

    device_step: Spread  # full step with the crops cut on the device, timed as the host path's `step`
    host_crops: Spread  # one batch of uint8 crops on the device: DataLoader (CropDataset) + copy
    device_crops: Spread  # the same batch cut on the device by one gather
    same_crops: bool  # the first batches of an epoch equal bit for bit
    device_losses: dict[str, float]


@dataclass
class ModelResult:
    model: str
    params: int
    device: str
    precision: str
    compiled: bool
    crop: int
    batch_size: int
    first_step_s: float  # the very first step (allocations, kernel selection; compilation with --compile)
    step: Spread  # full step, seconds
    within: dict[str, Spread]  # data / convert / degrade / model / total, seconds, from instrumented steps
    within_share_data_degrade: Spread  # (data + convert + degrade) / total, per instrumented step
    data_alone: Spread  # one batch from the loader
    prep_alone: Spread  # uint8 → device → float + aged pipeline, one batch
    model_alone: Spread | None  # CUDA: train_step on a cached degraded batch
    losses: dict[str, float]
    peak_gpu_memory_gb: float | None = None
    model_flops: float = 0.0  # FLOPs the networks do per step (training/cost.model_step_flops)
    device_gflops: float = 0.0  # this device's measured matmul rate in the training precision
    breakdown: dict[str, Spread] | None = None
    epoch_overhead: dict[str, float] | None = None
    crop_paths: CropPaths | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.step.median

    @property
    def model_flop_utilisation(self) -> float:
        """Achieved network FLOP/s over the device's measured matmul rate in the same precision."""
        return self.model_flops / self.step.median / (self.device_gflops * 1e9)

    @property
    def device_crops_per_s(self) -> float | None:
        return self.batch_size / self.crop_paths.device_step.median if self.crop_paths else None

    def utilisation_at(self, seconds: float) -> float:
        return self.model_flops / seconds / (self.device_gflops * 1e9)

    @property
    def separate_share(self) -> float:
        return (self.data_alone.median + self.prep_alone.median) / self.step.median


def bench_model(bench: Bench, name: str, plan: dict, breakdown: bool, epoch_overhead: bool) -> ModelResult:
    device = bench.device
    torch.manual_seed(0)
    trainer = build_trainer(bench, name)
    dtype = resolve_precision(bench.precision, device)
    source = batches(trainer)
    probe = Probe(trainer, device)
    notes: list[str] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    with probe.installed():
        # First step apart (oneDNN / cuDNN set-up, torch.compile), then the other warm-ups.
        sync(device)
        begin = time.perf_counter()
        parts = trainer.train_step(next(source))
        sync(device)
        first_step = time.perf_counter() - begin
        for _ in range(plan["warmup"] - 1):
            parts = trainer.train_step(next(source))
        sync(device)

        # Instrumented steps: data | convert | degrade | model, a sync at each boundary on CUDA.
        probe.active = True
        phases: dict[str, list[float]] = {k: [] for k in ("data", "convert", "degrade", "model", "total")}
        shares = []
        for _ in range(plan["steps"]):
            sync(device)
            t0 = time.perf_counter()
            batch = next(source)
            t1 = time.perf_counter()
            parts = trainer.train_step(batch)
            sync(device)
            t3 = time.perf_counter()
            converted, degraded = probe.marks["converted"], probe.marks["degraded"]
            for key, value in (("data", t1 - t0), ("convert", converted - t1), ("degrade", degraded - converted),
                               ("model", t3 - degraded), ("total", t3 - t0)):
                phases[key].append(value)
            shares.append((degraded - t0) / (t3 - t0))
        probe.active = False
        within = {key: Spread.of(values) for key, values in phases.items()}

        # Full steps without synchronisation inside: CUDA only (on the CPU the instrumented steps are these).
        if device.type == "cuda":
            per_step = []
            for _ in range(plan["runs"]):
                torch.cuda.synchronize(device)
                begin = time.perf_counter()
                for _ in range(plan["steps_per_run"]):
                    parts = trainer.train_step(next(source))
                torch.cuda.synchronize(device)
                per_step.append((time.perf_counter() - begin) / plan["steps_per_run"])
            step = Spread.of(per_step)
        else:
            step = within["total"]

        # Separately: the loader alone, then conversion + degradation alone on one batch.
        data_alone = repeat_wall(lambda: next(source), torch.device("cpu"), plan["data_batches"], 0)
        clean_u8, seeds = next(source)
        if device.type == "cuda":
            clean_u8 = clean_u8.pin_memory()

        def prep():
            return trainer.degrade(to_batch(clean_u8, device), seeds)

        prep_alone = repeat_call(prep, device, plan["prep_runs"], 2, plan["prep_min_s"])

        # The model step alone (CUDA): train_step on a cached degraded batch.
        model_alone = None
        if device.type == "cuda":
            clean = to_batch(clean_u8, device)
            probe.cached = (clean, trainer.degrade(clean, seeds))
            model_alone = repeat_call(lambda: trainer.train_step((clean_u8, seeds)), device, plan["runs"], 2, plan["prep_min_s"])
            probe.cached = None

    losses = {key: float(value) for key, value in parts.items() if key in ("l1", "perceptual", "ssim", "total")}
    if not all(math.isfinite(v) for v in losses.values()):
        raise SystemExit(f"{name}: non-finite losses {losses}")
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None

    parts_timed = None
    if breakdown:
        parts_timed = step_breakdown(trainer, next(source), device, dtype, plan["breakdown_steps"])
    overhead = None
    if epoch_overhead:
        overhead = epoch_costs(trainer, device)
    crop_paths = compare_crop_paths(bench, name, plan, trainer)

    result = ModelResult(
        model=name, params=count_parameters(trainer.model), device=device.type,
        precision=str(dtype).removeprefix("torch."), compiled=bench.compile, crop=bench.crop,
        batch_size=bench.batch_size, first_step_s=first_step, step=step, within=within,
        within_share_data_degrade=Spread.of(shares), data_alone=data_alone, prep_alone=prep_alone,
        model_alone=model_alone, losses=losses, peak_gpu_memory_gb=peak, breakdown=parts_timed,
        epoch_overhead=overhead, crop_paths=crop_paths, notes=notes,
        model_flops=model_step_flops(trainer.model.config, bench.crop, bench.batch_size, trainer.loss_fn.vgg is not None),
        device_gflops=device_gflops(device, dtype),
    )
    del trainer, probe, source
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def compare_crop_paths(bench: Bench, name: str, plan: dict, host_trainer: Trainer) -> CropPaths:
    """The same model and settings with the crops cut on the device: its full steps, timed as `bench_model`
    times the host path's, and one batch of crops alone on each path (uint8 on the device, ready for to_batch)."""
    device = bench.device
    torch.manual_seed(0)
    trainer = build_trainer(bench, name, crops_on_device=True)
    if trainer.device_crops is None:
        raise SystemExit(f"{name}: the crops did not go to the device (the pages do not fit?)")
    host_first, device_first = next(iter(host_trainer._loader(0, 0))), next(iter(trainer._loader(0, 0)))
    same = torch.equal(host_first[0].to(device), device_first[0]) and torch.equal(host_first[1], device_first[1])
    host_source, device_source = batches(host_trainer), batches(trainer)
    host_crops = repeat_wall(lambda: next(host_source)[0].to(device, non_blocking=True), device, plan["data_batches"], 1)
    device_crops = repeat_wall(lambda: next(device_source)[0], device, plan["data_batches"], 1)

    source = batches(trainer)
    for _ in range(plan["warmup"]):
        parts = trainer.train_step(next(source))
    sync(device)
    if device.type == "cuda":  # runs of back-to-back steps, no synchronisation inside
        per_step = [run_seconds(lambda: trainer.train_step(next(source)), plan["steps_per_run"], device)
                    / plan["steps_per_run"] for _ in range(plan["runs"])]
    else:
        per_step = [wall_seconds(lambda: trainer.train_step(next(source)), device) for _ in range(plan["steps"])]
    parts = trainer.train_step(next(source))
    losses = {key: float(value) for key, value in parts.items() if key in ("l1", "perceptual", "ssim", "total")}
    del trainer, source, device_source
    return CropPaths(Spread.of(per_step), host_crops, device_crops, same, losses)


def step_breakdown(trainer: Trainer, batch, device: torch.device, dtype: torch.dtype, steps: int) -> dict[str, Spread]:
    """A replica of Trainer.train_step's model part with a sync between the parts (diagnostic, --breakdown).

    It calls the trainer's own model, loss module, optimizer and scaler; only the order of the loss terms'
    forward passes is made explicit so each can be timed. Backward covers the whole graph (model, VGG, SSIM).
    """
    loss_fn = trainer.loss_fn
    clean_u8, seeds = batch
    clean = to_batch(clean_u8, device)
    degraded = trainer.degrade(clean, seeds)
    autocast = torch.autocast(device_type=device.type, dtype=dtype) if dtype != torch.float32 else None
    from manurestore.metrics import ssim_map

    times: dict[str, list[float]] = {k: [] for k in ("forward", "l1", "perceptual", "ssim", "backward", "clip", "adamw")}
    for index in range(steps + 1):  # the first is a warm-up
        marks = []

        def mark():
            sync(device)
            marks.append(time.perf_counter())

        mark()
        if autocast is not None:
            with autocast:
                restored = trainer.net(degraded)
        else:
            restored = trainer.net(degraded)
        mark()
        with torch.autocast(device_type=device.type, enabled=False):
            pred, target = restored.float(), clean.float()
            l1 = torch.nn.functional.l1_loss(pred, target)
            mark()
            perceptual = loss_fn.perceptual(pred, target)
            mark()
            ssim_term = 1.0 - ssim_map(pred, target).mean()
            mark()
            total = loss_fn.l1_weight * l1 + loss_fn.perceptual_weight * perceptual + loss_fn.ssim_weight * ssim_term
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scaler.scale(total).backward()
        mark()
        trainer.scaler.unscale_(trainer.optimizer)
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.cfg.grad_clip)
        mark()
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr_at(trainer.step, trainer.total_steps, trainer.cfg.lr, trainer.warmup_steps)
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        mark()
        if index:
            for key, begin, end in zip(times, marks[:-1], marks[1:]):
                times[key].append(end - begin)
    return {key: Spread.of(values) for key, values in times.items()}


def epoch_costs(trainer: Trainer, device: torch.device) -> dict[str, float]:
    """Seconds of the per-epoch work Trainer.run adds: validate() (32 crops) and save() (state.pt + last.safetensors)."""
    trainer.validate()  # warm-up (eval shapes)
    sync(device)
    begin = time.perf_counter()
    trainer.validate()
    sync(device)
    validate = time.perf_counter() - begin
    begin = time.perf_counter()
    trainer.save("benchmark")
    save = time.perf_counter() - begin
    sizes = sum(p.stat().st_size for p in trainer.cfg.run_dir.glob("*") if p.is_file())
    return {"validate_s": validate, "save_s": save, "files_mb": sizes / 2**20}


# --------------------------------------------------------------------------------------------
# Report


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.0f}" if seconds >= 1.0 else f"{1e3 * seconds:,.1f}" if seconds >= 0.01 else f"{1e3 * seconds:.2f}"


def _spread(s: Spread) -> str:
    return f"{_ms(s.median)} ms ({_ms(s.fastest)}–{_ms(s.slowest)}, n={s.count})"


def print_result(r: ModelResult, plan: dict) -> None:
    mp = r.batch_size * r.crop * r.crop / 1e6
    print(f"{r.model} ({r.params / 1e6:.1f} M parameters), {r.device}, {r.precision}{', compiled' if r.compiled else ''}, "
          f"crop {r.crop}², batch {r.batch_size}; warm-up {plan['warmup']} step(s), first step {r.first_step_s:.2f} s")
    how = (f"median of {r.step.count} runs of {plan['steps_per_run']} back-to-back steps" if r.device == "cuda"
           else f"median of {r.step.count} steps")
    print(f"  full step          : {_spread(r.step)} — {r.images_per_s:,.1f} img/s, {mp / r.step.median:,.2f} MP/s ({how})")
    achieved = r.model_flops / r.step.median / 1e9
    print(f"  model FLOPs        : {r.model_flops / 1e9:,.1f} GFLOP per step (model forward + backward, VGG) → "
          f"{achieved:,.1f} GFLOP/s = {100 * r.model_flop_utilisation:.1f} % of this device's measured {r.precision} "
          f"matmul rate ({r.device_gflops:,.0f} GFLOP/s)")
    w = r.within
    total = w["total"].median
    print(f"  within the step    : (instrumented{', a synchronize at each boundary' if r.device == 'cuda' else ''})")
    for key, label in (("data", "loader: crops + batching"), ("convert", "uint8 → device → float"),
                       ("degrade", f"'{PRESET}' pipeline"), ("model", "model step (fwd, loss, bwd, clip, AdamW)")):
        print(f"    {label:<40} {_spread(w[key]):>34}  {100 * w[key].median / total:5.1f} %")
    print(f"    {'step':<40} {_spread(w['total']):>34}")
    share = r.within_share_data_degrade
    print(f"    data + degradation, per step: {100 * share.median:.2f} % ({100 * share.fastest:.2f}–{100 * share.slowest:.2f})")
    print("  separately         :")
    print(f"    {'loader alone, one batch':<40} {_spread(r.data_alone):>34}")
    print(f"    {'uint8 → float + pipeline, one batch':<40} {_spread(r.prep_alone):>34}")
    if r.model_alone is not None:
        print(f"    {'model step alone (cached batch)':<40} {_spread(r.model_alone):>34}")
    print(f"    data + degradation / full step: {100 * r.separate_share:.2f} %")
    met_within = share.median <= TARGET_DATA_SHARE
    met_sep = r.separate_share <= TARGET_DATA_SHARE
    print(f"  target data + degradation ≤ {100 * TARGET_DATA_SHARE:.0f} % of the step: within {100 * share.median:.2f} % "
          f"{'MET' if met_within else 'NOT MET'}; separately {100 * r.separate_share:.2f} % {'MET' if met_sep else 'NOT MET'}")
    if r.peak_gpu_memory_gb is not None:
        print(f"  peak GPU memory allocated: {r.peak_gpu_memory_gb:.2f} GiB")
    if r.breakdown:
        b = r.breakdown
        whole = sum(s.median for s in b.values())
        print(f"  model step, part by part (a replica of train_step with syncs, median of {b['forward'].count}):")
        for key, label in (("forward", "model forward"), ("l1", "L1"), ("perceptual", "perceptual: VGG16 → relu3_3 ×2 (fwd)"),
                           ("ssim", "SSIM (fwd)"), ("backward", "backward (model + VGG + SSIM)"),
                           ("clip", "unscale + clip"), ("adamw", "AdamW step")):
            print(f"    {label:<40} {_spread(b[key]):>34}  {100 * b[key].median / whole:5.1f} %")
    if r.crop_paths:
        c, n = r.crop_paths, r.batch_size
        print("  crops on the host vs on the device (same model and settings; --crops-on-host / --crops-on-device):")
        for label, seconds in (("full step, crops cut on the host", r.step), ("full step, crops cut on the device", c.device_step)):
            print(f"    {label:<40} {_spread(seconds):>34}  {n / seconds.median:10,.1f} crops/s, "
                  f"{100 * r.utilisation_at(seconds.median):.1f} % FLOP utilisation")
        for label, seconds in (("crops alone: DataLoader + copy", c.host_crops), ("crops alone: one gather on the device", c.device_crops)):
            print(f"    {label:<40} {_spread(seconds):>34}  {n / seconds.median:10,.1f} crops/s")
        print(f"    device / host, full step: ×{r.step.median / c.device_step.median:.2f}; crops alone: "
              f"×{c.host_crops.median / c.device_crops.median:.1f}; the same crops both ways: {'yes' if c.same_crops else 'NO'}")
    if r.epoch_overhead:
        e = r.epoch_overhead
        print(f"  per-epoch extras   : validate() {e['validate_s']:.2f} s, save() {e['save_s']:.2f} s "
              f"(run folder {e['files_mb']:,.0f} MB, on {Path(tempfile.gettempdir())})")
    print("  last losses        : " + ", ".join(f"{k} {v:.4f}" for k, v in r.losses.items()))
    print()


def recipe_projection(r: ModelResult) -> dict:
    steps_s = RECIPE["steps"] * r.step.median
    extras = None
    if r.epoch_overhead:
        extras = RECIPE["epochs"] * (r.epoch_overhead["validate_s"] + r.epoch_overhead["save_s"])
    recipe = {**RECIPE, "precision": "bfloat16"}  # as ModelResult spells the dtype
    differs = [f"{k} {getattr(r, k)} (recipe {recipe[k]})"
               for k in ("model", "crop", "batch_size", "precision") if getattr(r, k) != recipe[k]]
    if r.compiled:
        differs.append("torch.compile on")
    device_steps_s = RECIPE["steps"] * r.crop_paths.device_step.median if r.crop_paths else None
    return {"model": r.model, "steps_s": steps_s, "device_crops_steps_s": device_steps_s,
            "with_epoch_extras_s": steps_s + extras if extras is not None else None,
            "target_s": RECIPE_TARGET_S, "seed_s": SEED_RECIPE_S, "met": steps_s < RECIPE_TARGET_S,
            "settings_differ": differs}


def print_projection(p: dict, gpu: str | None) -> None:
    print(f"projected full recipe ({RECIPE['images']} images, {RECIPE['epochs']} epochs = {RECIPE['steps']:,} steps of batch "
          f"{RECIPE['batch_size']}, {RECIPE['model']}, perceptual on, {RECIPE['precision']}) on {gpu}:")
    print(f"  {RECIPE['steps']:,} × measured full step = {p['steps_s']:,.1f} s — target < {RECIPE_TARGET_S:.0f} s on one H100: "
          f"{'MET' if p['met'] else 'NOT MET'}; the seed reported {SEED_RECIPE_S / 3600:.1f} h ({SEED_RECIPE_S:,.0f} s), "
          f"{SEED_RECIPE_S / p['steps_s']:,.0f}× longer")
    if p["device_crops_steps_s"] is not None:
        print(f"  with the crops cut on the device (the CUDA default): {RECIPE['steps']:,} × its full step = "
              f"{p['device_crops_steps_s']:,.1f} s — {'MET' if p['device_crops_steps_s'] < RECIPE_TARGET_S else 'NOT MET'}")
    if p["with_epoch_extras_s"] is not None:
        print(f"  + {RECIPE['epochs']} × (validate + save) per epoch = {p['with_epoch_extras_s']:,.1f} s in all")
    if p["settings_differ"]:
        print(f"  note: measured with {', '.join(p['settings_differ'])}; the projection is for these settings")
    if gpu and "H100" not in gpu:
        print("  note: the target is for an H100; this GPU is not one")
    print()


# --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__, quick="few steps; 128² crops unless --crop is given",
                         device="default: cuda when torch sees one, else cpu")
    parser.add_argument("--models", default="vit-tiny,vit-base", help="comma-separated registry names (default: %(default)s)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 on GPUs that support it, else fp32 (resolve_precision)")
    parser.add_argument("--crop", type=int, default=None, help="crop side (default 256; 128 with --quick)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model (default: by device, model, --quick)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (the trainer's default: 0)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (the trainer's --compile)")
    parser.add_argument("--vgg-weights", type=Path, default=None, help="a real torchvision vgg16-397923af.pth (default: random weights)")
    parser.add_argument("--breakdown", action="store_true", help="also time the parts of the model step")
    parser.add_argument("--epoch-overhead", action="store_true",
                        help="also time validate() and save() once (always on CUDA for vit-base)")
    parser.add_argument("--pages", type=int, default=None, help="synthetic pages in the store (default 8; 4 with --quick)")
    return parse(parser, argv, smoke={"models": "vit-tiny", "crop": 64, "batch_size": 2, "pages": 1, "steps": 1,
                                          "breakdown": True, "epoch_overhead": True})


def make_plan(args, device: torch.device, model: str) -> dict:
    """How many steps of what: cheap on CUDA; on the CPU vit-base gets only a couple of steps."""
    slow = device.type == "cpu" and model not in ("vit-tiny",)
    if device.type == "cuda":
        plan = {"warmup": 10 if args.compile else 5, "steps": 10, "runs": 5, "steps_per_run": 10,
                "data_batches": 26, "prep_runs": 5, "prep_min_s": 0.3, "breakdown_steps": 5}
        if args.quick:
            plan.update(warmup=5 if args.compile else 3, steps=5, runs=3, steps_per_run=5, data_batches=10,
                        prep_runs=3, prep_min_s=0.1, breakdown_steps=3)
    elif args.quick:
        plan = {"warmup": 1, "steps": 1 if slow else 2, "runs": 1, "steps_per_run": 1, "data_batches": 8,
                "prep_runs": 5, "prep_min_s": 0.1, "breakdown_steps": 1}
    else:
        plan = {"warmup": 1, "steps": 2 if slow else 5, "runs": 1, "steps_per_run": 1, "data_batches": 26,
                "prep_runs": 5, "prep_min_s": 0.5, "breakdown_steps": 1 if slow else 2}
    if args.smoke:
        plan.update(warmup=1, runs=1, steps_per_run=1, data_batches=2, prep_runs=1, prep_min_s=0.0, breakdown_steps=1)
    if args.steps is not None:
        plan["steps"] = args.steps
    return plan


def main(argv=None) -> int:
    args = parse_args(argv)
    began = start(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    models = model_names(args.models)
    crop = args.crop or (128 if args.quick else 256)
    pages = args.pages or (4 if args.quick else 8)
    crops_per_image = max(1, math.ceil(SEED_IMAGES / pages))

    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="manurestore-train-bench-") as tmp_name:
        tmp = Path(tmp_name)
        paths = make_pages(tmp / "pages", pages)
        store = PageStore.load(paths, cache_dir=tmp / "cache")
        if args.vgg_weights is not None:
            vgg_path, vgg_random = args.vgg_weights, False
            vgg_note = f"real weights from {args.vgg_weights}"
        else:
            vgg_path, vgg_random = random_vgg_file(tmp), True
            vgg_note = ("random weights of VGG16's shapes (no real file is needed to time it: the cost is the same), "
                        "written in torchvision's format and loaded by RestorationLoss")
        bench = Bench(store, vgg_path, vgg_random, tmp, crop, args.batch_size, crops_per_image, device,
                      args.precision, args.compile, args.workers)
        if len(store) * crops_per_image < args.batch_size:
            raise SystemExit("fewer crops per epoch than one batch")
        print_header(info, f"training throughput: Trainer.train_step, preset '{PRESET}', perceptual + SSIM on", [
            f"setup : device {bench.device}, precision {bench.precision} → "
            f"{str(resolve_precision(bench.precision, bench.device)).removeprefix('torch.')}, crop {bench.crop}², batch "
            f"{bench.batch_size}, {len(bench.store)} synthetic pages × {bench.crops_per_image} crops = "
            f"{len(bench.store) * bench.crops_per_image} crops per epoch (the seed's data set: {SEED_IMAGES} images)"
            f"{', torch.compile' if bench.compile else ''}",
            f"VGG16 : {vgg_note}",
            f"timing: {mode(args)} — per model: warm-up steps then timed steps (see each model's line); medians, "
            "fastest–slowest in brackets"], threads_note=f"; DataLoader workers {bench.workers}")

        results, projections = [], []
        for name in models:
            plan = make_plan(args, device, name)
            overhead = args.epoch_overhead or (device.type == "cuda" and name == RECIPE["model"])
            result = bench_model(bench, name, plan, args.breakdown, overhead)
            print_result(result, plan)
            results.append((result, plan))
            if device.type == "cuda" and name == RECIPE["model"]:
                projection = recipe_projection(result)
                print_projection(projection, info["gpu"])
                projections.append(projection)
        if device.type != "cuda":
            print(f"projected full recipe: not computed (it is for CUDA: {RECIPE['steps']:,} steps of {RECIPE['model']}, "
                  f"target < {RECIPE_TARGET_S:.0f} s on one H100)")
            print()

    print("targets:")
    for r, _ in results:
        share = r.within_share_data_degrade.median
        print(f"  {r.model:<10} data + degradation ≤ {100 * TARGET_DATA_SHARE:.0f} % of the step: {100 * share:.2f} % within, "
              f"{100 * r.separate_share:.2f} % separately — {'MET' if max(share, r.separate_share) <= TARGET_DATA_SHARE else 'NOT MET'}")
    for p in projections:
        print(f"  {p['model']:<10} full recipe < {RECIPE_TARGET_S:.0f} s on one H100: {p['steps_s']:,.1f} s — "
              f"{'MET' if p['met'] else 'NOT MET'}" + ("" if p["device_crops_steps_s"] is None else
              f"; crops cut on the device {p['device_crops_steps_s']:,.1f} s — "
              f"{'MET' if p['device_crops_steps_s'] < RECIPE_TARGET_S else 'NOT MET'}"))
    print()
    finish(began, args.json, {
        "preset": PRESET, "machine": info, "vgg16": vgg_note,
        "settings": {"device": device.type, "precision": args.precision, "crop": crop, "batch_size": args.batch_size,
                     "pages": pages, "crops_per_image": crops_per_image, "workers": args.workers,
                     "compile": args.compile, "quick": args.quick},
        "results": [{**asdict(r), "plan": plan, "images_per_s": r.images_per_s, "model_flop_utilisation": r.model_flop_utilisation,
                     "device_crops_per_s": r.device_crops_per_s,
                     "separate_share_data_degrade": r.separate_share} for r, plan in results],
        "recipe": RECIPE, "projections": projections, "target_data_share": TARGET_DATA_SHARE,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
