"""Degrading image files: read, group equal shapes into batches, degrade on the device, write.

Each image's randomness comes from (seed, its identity), so grouping and batch size change
nothing in the output bytes. A batch that runs out of memory is done again one page at a time,
so only a page too large on its own fails (with a one-line error naming it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Iterable

import numpy as np
import torch

from manurestore.batches import to_batch, to_images
from manurestore.data.io import is_out_of_memory, out_of_memory_error, write_text
from manurestore.data.jobs import FileJob, FileTask
from manurestore.degradations.pipeline import Pipeline
from manurestore.seeding import image_seed

MEMORY_HINT = "degrade with --device cpu"


@dataclass
class DegradeJob(FileJob):
    """The file job plus, for each output, the ops that fired and the values they drew."""

    records: list[dict] = field(default_factory=list)


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
) -> DegradeJob:
    """Degrade every task's source into its target; bad files are recorded, the rest go on.

    Without `overwrite`, a target that another process wrote first is left alone and listed in
    the job's `skipped_existing`.
    """
    job = DegradeJob(list(tasks), overwrite=overwrite, quality=quality)
    pending: dict[tuple[int, ...], list[tuple[FileTask, np.ndarray]]] = {}
    pending_count = 0

    def flush(shape):
        nonlocal pending_count
        group = pending.pop(shape)
        pending_count -= len(group)
        _degrade_group(group, pipeline, seed, device, job)
        if on_done:
            for task, _ in group:
                on_done(task)

    for task, image in job.sources(skip_existing=True):
        if image is None:
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
    order = {task.source: i for i, task in enumerate(job.tasks)}
    job.records.sort(key=lambda r: order.get(Path(r["input"]), 0))
    return job


def _degrade_group(group, pipeline: Pipeline, seed: int, device: torch.device, job: DegradeJob) -> None:
    seeds = [image_seed(seed, task.identity) for task, _ in group]
    try:
        batch = to_batch([image for _, image in group], device)
        degraded, history = pipeline(batch, seeds, record=True, overwrite_input=True)
        images = to_images(degraded)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        if len(group) == 1:
            job.fail(group[0][0], out_of_memory_error(group[0][0].source, MEMORY_HINT))
        else:
            for item in group:
                _degrade_group([item], pipeline, seed, device, job)
        return
    for (task, _), image, image_seed_value, fired in zip(group, images, seeds, history):
        if not job.write(task, image):
            continue
        job.records.append({
            "input": str(task.source),
            "output": str(task.target),
            "identity": task.identity,
            "seed": image_seed_value,
            "preset": pipeline.name,
            "ops": fired,
        })


def degrade_page(clean: np.ndarray, pipeline: Pipeline, seed: int, identity: str,
                 device: torch.device) -> tuple[np.ndarray, list[dict]]:
    """One page as `degrade` would write it (same per-image seed rule, rounded to uint8), and the
    ops that fired on it with the values they drew. `evaluate` and `visualize` use it, so their
    degraded pages are the ones `degrade` makes."""
    degraded, record = pipeline(to_batch([clean], device), [image_seed(seed, identity)], record=True, overwrite_input=True)
    return to_images(degraded)[0], record[0]


def write_records(path: Path, records: list[dict], seed: int, overwrite: bool, protected: Collection[Path] = ()) -> None:
    """The audit trail: one JSON line per output, written atomically, never over an input in
    `protected` (the command's inputs) and over an existing file only with `overwrite`."""
    lines = "".join(json.dumps({"job_seed": seed, **record}, ensure_ascii=False) + "\n" for record in records)
    write_text(path, lines, overwrite=overwrite, protected=protected)
