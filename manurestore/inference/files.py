"""Restoring image files one page at a time; bad files are reported and the rest go on."""

from __future__ import annotations

from typing import Callable, Iterable

from manurestore.data.io import page_memory
from manurestore.data.jobs import FileJob, FileTask
from manurestore.errors import ManurestoreError
from manurestore.inference.tiling import TiledRestorer

MEMORY_HINT = "restore with a smaller --tile or --batch-size, or with --device cpu"


def restore_files(
    tasks: Iterable[FileTask],
    restorer: TiledRestorer,
    *,
    overwrite: bool = False,
    quality: int = 95,
    on_done: Callable[[FileTask, float], None] | None = None,
) -> FileJob:
    """Restore each task's source into its target; existing targets are skipped unless overwrite
    (also one another process finishes meanwhile: it is done, not failed). A page that runs out of
    memory is reported on one line and the others go on.

    `on_done(task, megapixels)` follows every task (0 MP for one skipped or failed).
    """
    job = FileJob(list(tasks), overwrite=overwrite, quality=quality)
    for task, page in job.sources(skip_existing=True):
        before = job.megapixels
        if page is not None:
            try:
                with page_memory(task.source, MEMORY_HINT):
                    restored = restorer.restore(page)
                job.write(task, restored)
            except ManurestoreError as error:
                job.fail(task, error)
        if on_done:
            on_done(task, job.megapixels - before)
    return job
