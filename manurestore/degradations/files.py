"""Degrading image files: read, group equal shapes into batches, degrade on the device, write.

Each image's randomness comes from (seed, its identity), so grouping and batch size change
nothing in the output bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from manurestore.data.io import read_image, write_image
from manurestore.data.jobs import FileTask
from manurestore.degradations.pipeline import Pipeline
from manurestore.degradations.random import image_seed
from manurestore.errors import ManurestoreError


@dataclass
class FileFailure:
    path: Path
    message: str


@dataclass
class DegradeResult:
    written: list[Path] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)


def to_batch(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 H×W×C arrays of one shape → contiguous float (B, C, H, W) in [0, 1] on `device`.

    The uint8 stack is moved first (a quarter of the bytes) and transposed while still uint8; a
    channels-last float batch would make every later op slower.
    """
    from manurestore.degradations.random import new_batch

    stacked = torch.from_numpy(np.stack(images)).to(device, non_blocking=True)
    planar = stacked.permute(0, 3, 1, 2).contiguous()
    return new_batch(planar.shape, torch.float32, planar.device).copy_(planar).div_(255.0)


def to_images(batch: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [0, 1] → contiguous uint8 (B, H, W, C) on the host, rounded.

    Rounded and clamped in float, narrowed through int16 (far quicker than float → uint8 on the
    CPU), then interleaved a channel at a time. On the CPU a few images (or rows) at a time, so
    the scaled copy stays small.
    """
    from manurestore.degradations.random import cpu_piece

    count, channels, height, width = batch.shape
    out = torch.empty((count, height, width, channels), dtype=torch.uint8, device=batch.device)
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


def degrade_files(
    tasks: Iterable[FileTask],
    pipeline: Pipeline,
    *,
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    batch_size: int = 16,
    overwrite: bool = False,
    quality: int = 95,
    on_done: Callable[[FileTask], None] | None = None,
) -> DegradeResult:
    """Degrade every task's source into its target; bad files are recorded, the rest go on."""
    tasks = list(tasks)
    protected = frozenset(task.source.resolve() for task in tasks)
    result = DegradeResult()
    pending: dict[tuple[int, ...], list[tuple[FileTask, np.ndarray]]] = {}
    pending_count = 0

    def flush(shape):
        nonlocal pending_count
        group = pending.pop(shape)
        pending_count -= len(group)
        _degrade_group(group, pipeline, seed, device, overwrite, quality, protected, result)
        if on_done:
            for task, _ in group:
                on_done(task)

    for task in tasks:
        try:
            image = read_image(task.source)
        except ManurestoreError as error:
            result.failures.append(FileFailure(task.source, str(error)))
            if on_done:
                on_done(task)
            continue
        pending.setdefault(image.shape, []).append((task, image))
        pending_count += 1
        if len(pending[image.shape]) >= batch_size:
            flush(image.shape)
        elif pending_count >= 4 * batch_size:  # many odd sizes: keep memory bounded
            flush(max(pending, key=lambda s: len(pending[s])))
    for shape in list(pending):
        flush(shape)
    order = {task.source: i for i, task in enumerate(tasks)}
    result.records.sort(key=lambda r: order.get(Path(r["input"]), 0))
    return result


def _degrade_group(group, pipeline, seed, device, overwrite, quality, protected, result: DegradeResult) -> None:
    seeds = [image_seed(seed, task.identity) for task, _ in group]
    batch = to_batch([image for _, image in group], device)
    degraded, history = pipeline(batch, seeds, record=True, overwrite_input=True)
    for (task, _), image, image_seed_value, fired in zip(group, to_images(degraded), seeds, history):
        try:
            write_image(task.target, image, quality=quality, overwrite=overwrite, protected=protected)
        except ManurestoreError as error:
            result.failures.append(FileFailure(task.source, str(error)))
            continue
        result.written.append(task.target)
        result.records.append({
            "input": str(task.source),
            "output": str(task.target),
            "identity": task.identity,
            "seed": image_seed_value,
            "preset": pipeline.name,
            "ops": fired,
        })


def write_records(path: Path, records: list[dict], seed: int, overwrite: bool) -> None:
    """The audit trail: one JSON line per output, written atomically."""
    from manurestore.atomic import atomic_write_text

    if path.exists() and not overwrite:
        raise ManurestoreError(f"{path}: already exists; pass --overwrite to replace it")
    lines = "".join(json.dumps({"job_seed": seed, **record}, ensure_ascii=False) + "\n" for record in records)
    try:
        atomic_write_text(path, lines)
    except OSError as error:
        raise ManurestoreError(f"{path}: cannot write the parameter record ({error.strerror or error})") from None
