"""File jobs for `degrade` and `restore`: which input goes to which output, and running them.

Rules (documented in docs/degrade.md):
- a file with no `-o` goes beside itself as `stem.TAG.suffix`;
- a folder with no `-o` goes to a sibling folder `FOLDER.TAG/`, structure mirrored, names kept;
- `-o` with an image suffix and one input file is that output file;
- otherwise `-o` is a folder: files keep their names, folders are mirrored inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from manurestore.data.folders import find_images
from manurestore.data.io import IMAGE_SUFFIXES, read_image, write_image
from manurestore.errors import ManurestoreError, UsageError


@dataclass(frozen=True)
class FileTask:
    """One image to process: where it comes from, where it goes, and its stable identity."""

    source: Path
    target: Path
    identity: str  # relative path from the input root: seeds and shards derive from it


@dataclass(frozen=True)
class FileFailure:
    """A file that could not be processed, and the one-line reason."""

    path: Path
    message: str


@dataclass
class FileJob:
    """Runs file tasks: reads each source, the caller makes the output, writes each target.

    A file that cannot be read or written becomes a `FileFailure` and the others go on; no input
    of the job is ever overwritten, whatever the targets say.

    >>> job = FileJob(tasks)                                          # doctest: +SKIP
    >>> for task, page in job.sources():                              # doctest: +SKIP
    ...     job.write(task, transform(page))
    """

    tasks: list[FileTask]
    overwrite: bool = False
    quality: int = 95
    written: list[Path] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    megapixels: float = 0.0  # of the pages written

    def __post_init__(self):
        self.tasks = list(self.tasks)
        self._protected = frozenset(task.source.resolve() for task in self.tasks)

    def sources(self, *, skip_existing: bool = False) -> Iterator[tuple[FileTask, np.ndarray | None]]:
        """(task, page) for every task in order; page is None where it failed or was skipped.

        `skip_existing` (without `overwrite`) skips tasks whose target exists, so an interrupted
        job resumes where it stopped.
        """
        for task in self.tasks:
            if skip_existing and not self.overwrite and task.target.exists():
                self.skipped_existing.append(task.target)
                yield task, None
                continue
            try:
                page = read_image(task.source)
            except ManurestoreError as error:
                self.failures.append(FileFailure(task.source, str(error)))
                page = None
            yield task, page

    def write(self, task: FileTask, image: np.ndarray) -> bool:
        """Write one output; False (and a recorded failure) when it cannot be written."""
        try:
            write_image(task.target, image, quality=self.quality, overwrite=self.overwrite, protected=self._protected)
        except ManurestoreError as error:
            self.failures.append(FileFailure(task.source, str(error)))
            return False
        self.written.append(task.target)
        self.megapixels += image.shape[0] * image.shape[1] / 1e6
        return True

    def fail(self, task: FileTask, error: ManurestoreError) -> None:
        """Record a failure of the caller's own work on one task."""
        self.failures.append(FileFailure(task.source, str(error)))


@dataclass
class JobPlan:
    tasks: list[FileTask]
    skipped_hidden: int = 0
    skipped_other: int = 0
    output_dirs: list[Path] = field(default_factory=list)


def _with_suffix(path: Path, suffix: str | None) -> Path:
    return path if suffix is None else path.with_suffix(suffix)


def normalise_format(fmt: str | None) -> str | None:
    """'png' or '.PNG' → '.png'; refuses suffixes we cannot write."""
    if fmt is None:
        return None
    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in IMAGE_SUFFIXES:
        raise UsageError(f"--format {fmt!r} is not an image format; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    return suffix


def plan_job(inputs: Sequence[Path], output: Path | None, tag: str, fmt: str | None = None) -> JobPlan:
    """Map every input image to its output path (see the module docstring for the rules)."""
    inputs = [Path(p) for p in inputs]
    for path in inputs:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
    suffix = normalise_format(fmt)
    single_file_target = (
        output is not None and len(inputs) == 1 and inputs[0].is_file() and output.suffix.lower() in IMAGE_SUFFIXES
    )
    plan = JobPlan(tasks=[])
    for root in inputs:
        if root.is_file():
            if single_file_target:
                target = output
            elif output is None:
                target = _with_suffix(root.with_name(f"{root.stem}.{tag}{root.suffix}"), suffix)
            else:
                target = _with_suffix(output / root.name, suffix)
            plan.tasks.append(FileTask(root, target, root.name))
            continue
        destination = output if output is not None else root.with_name(f"{root.name}.{tag}")
        if destination.suffix.lower() in IMAGE_SUFFIXES and not destination.is_dir():
            raise UsageError(f"-o {destination}: a folder input needs an output folder, not an image file name")
        found = find_images(root)
        plan.skipped_hidden += found.skipped_hidden
        plan.skipped_other += found.skipped_other
        plan.output_dirs.append(destination)
        destination_resolved = destination.resolve()
        for source in found.paths:
            if destination_resolved in source.resolve().parents:
                continue  # outputs of an earlier run inside the input folder are not inputs
            relative = source.relative_to(root)
            plan.tasks.append(FileTask(source, _with_suffix(destination / relative, suffix), relative.as_posix()))
    _refuse_input_targets(plan)
    return plan


def _refuse_input_targets(plan: JobPlan) -> None:
    sources = {task.source.resolve() for task in plan.tasks}
    for task in plan.tasks:
        if task.target.resolve() in sources:
            raise UsageError(f"{task.target}: output would replace an input image; choose another -o")


def existing_targets(plan: JobPlan) -> list[Path]:
    return [task.target for task in plan.tasks if task.target.exists()]


def check_writable(folder: Path) -> None:
    """Create `folder` and prove a file can be written there (os.access lies to root)."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ManurestoreError(f"{folder}: cannot write output here ({error.strerror or error}); choose another -o") from None


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/5' → (2, 5): this process takes shard 2 of 5 (1-based)."""
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N")
    return index, count


def select_shard(tasks: list[FileTask], shard: tuple[int, int] | None) -> list[FileTask]:
    """The tasks of shard K of N, chosen by a hash of each image's identity.

    Every process that lists the same archive gets the same split, whatever the listing order,
    and adding files later does not move the others to another shard.
    """
    if shard is None:
        return tasks
    import hashlib

    index, count = shard
    return [t for t in tasks if int.from_bytes(hashlib.blake2b(t.identity.encode(), digest_size=8).digest(), "little") % count == index - 1]
