"""Restoring image files one page at a time; bad files are reported and the rest go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from manurestore.data.io import read_image, write_image
from manurestore.data.jobs import FileTask
from manurestore.errors import ManurestoreError
from manurestore.inference.tiling import TiledRestorer


@dataclass
class RestoreResult:
    written: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    megapixels: float = 0.0


def restore_files(
    tasks: Iterable[FileTask],
    restorer: TiledRestorer,
    *,
    overwrite: bool = False,
    quality: int = 95,
    on_done: Callable[[FileTask, float], None] | None = None,
) -> RestoreResult:
    """Restore each task's source into its target; existing targets are skipped unless overwrite."""
    tasks = list(tasks)
    protected = frozenset(task.source.resolve() for task in tasks)
    result = RestoreResult()
    for task in tasks:
        megapixels = 0.0
        if task.target.exists() and not overwrite:
            result.skipped_existing.append(task.target)
        else:
            try:
                page = read_image(task.source)
                restored = restorer.restore(page)
                write_image(task.target, restored, quality=quality, overwrite=overwrite, protected=protected)
                megapixels = page.shape[0] * page.shape[1] / 1e6
                result.written.append(task.target)
                result.megapixels += megapixels
            except ManurestoreError as error:
                result.failures.append((task.source, str(error)))
        if on_done:
            on_done(task, megapixels)
    return result
