"""File jobs for `degrade` and `restore`: which input goes to which output, and running them.

Rules (documented in docs/degrade.md):
- a file with no `-o` goes beside itself as `stem.TAG.suffix`;
- a folder with no `-o` goes to a sibling folder `FOLDER.TAG/`, structure mirrored, names kept;
- `-o` with an image suffix and one input file is that output file;
- otherwise `-o` is a folder: files keep their names, folders are mirrored inside it.

No output ever replaces an input; an output folder manurestore names itself never lies inside
an input folder, and is marked so that a later listing of a folder above it leaves it out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from manurestore.atomic import remove_stale_temps
from manurestore.data.folders import OUTPUT_MARKER, find_images, mark_output_folder
from manurestore.data.io import (
    IMAGE_SUFFIXES,
    OutputExistsError,
    check_not_input,
    page_memory,
    protected_paths,
    read_image,
    write_image,
)
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

    A file that cannot be read or written (running out of memory included) becomes a
    `FileFailure` and the others go on; no input of the job is ever overwritten, whatever the
    targets say. Without `overwrite`, an output that exists when its task comes up, or that
    another process publishes while this one works on it, is left alone and listed in
    `skipped_existing`: it is done, not failed.

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
        self._protected = protected_paths(task.source for task in self.tasks)

    def sources(self, *, skip_existing: bool = False) -> Iterator[tuple[FileTask, np.ndarray | None]]:
        """(task, page) for every task in order; page is None where it failed or was skipped.

        `skip_existing` (without `overwrite`) skips tasks whose target exists, so an interrupted
        job resumes where it stopped and two jobs on the same files share the work.
        """
        for task in self.tasks:
            if skip_existing and not self.overwrite and task.target.exists():
                self.skipped_existing.append(task.target)
                yield task, None
                continue
            try:
                with page_memory(task.source):
                    page = read_image(task.source)
            except ManurestoreError as error:
                self.failures.append(FileFailure(task.source, str(error)))
                page = None
            yield task, page

    def write(self, task: FileTask, image: np.ndarray) -> bool:
        """Write one output; False when it was not written: a recorded failure, or a target another
        process wrote meanwhile (counted in skipped_existing, as done)."""
        try:
            write_image(task.target, image, quality=self.quality, overwrite=self.overwrite, protected=self._protected)
        except OutputExistsError:  # another process wrote it since the task came up: done
            self.skipped_existing.append(task.target)
            return False
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
    marked_dirs: list[Path] = field(default_factory=list)  # output folders to mark as ours


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


def default_folder(folder: Path, tag: str) -> Path:
    """FOLDER.TAG beside `folder`. `.` and `..` are resolved first, so they too give a sibling
    named after the folder itself, never a hidden folder inside the input."""
    named = folder if folder.name not in ("", "..") else folder.resolve()
    if not named.name:
        raise UsageError(f"{folder}: has no name to make an output folder name from; choose one with -o")
    return named.with_name(f"{named.name}.{tag}")


def _default_file(path: Path, tag: str, suffix: str | None) -> Path:
    return _with_suffix(path.with_name(f"{path.stem}.{tag}{path.suffix}"), suffix)


def _file_target(path: Path, output: Path | None, tag: str, suffix: str | None, one_file_out: bool) -> Path:
    if one_file_out:
        return output
    return _default_file(path, tag, suffix) if output is None else _with_suffix(output / path.name, suffix)


def plan_job(inputs: Sequence[Path], output: Path | None, tag: str, fmt: str | None = None) -> JobPlan:
    """Map every input image to its output path (see the module docstring for the rules).

    A file given beside its own default output (`restore g/*.png` again) lists that output among
    the inputs: it is an earlier result, not an input, and is left out like one in a folder.
    """
    inputs = [Path(p) for p in inputs]
    for path in inputs:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
    suffix = normalise_format(fmt)
    files = [path for path in inputs if path.is_file()]
    folders = [path.resolve() for path in inputs if not path.is_file()]
    one_file_out = output is not None and len(inputs) == len(files) == 1 and output.suffix.lower() in IMAGE_SUFFIXES
    earlier = {_default_file(path, tag, suffix).resolve() for path in files} if output is None else set()
    plan = JobPlan(tasks=[])
    for root in inputs:
        if not root.is_file():
            _plan_folder(plan, root, output, tag, suffix, folders)
        elif root.resolve() not in earlier:
            plan.tasks.append(FileTask(root, _file_target(root, output, tag, suffix, one_file_out), root.name))
    protected = protected_paths(task.source for task in plan.tasks)
    for task in plan.tasks:
        check_not_input(task.target, protected)
    _check_distinct_targets(plan.tasks)
    return plan


def _check_distinct_targets(tasks: Sequence[FileTask]) -> None:
    """Two inputs of one name (a/p.png and b/p.png into one -o) would share an output: one
    result would be lost or replace the other, so the job is refused before any work."""
    first_source: dict[Path, Path] = {}
    for task in tasks:
        target = task.target.resolve()
        if target in first_source:
            raise UsageError(f"{first_source[target]} and {task.source} would both be written to {task.target}; "
                             "give them separate -o folders or rename one")
        first_source[target] = task.source


def _plan_folder(plan: JobPlan, root: Path, output: Path | None, tag: str, suffix: str | None, folders: list[Path]) -> None:
    """Add the tasks of one input folder: its images, mirrored into the destination folder."""
    destination = output if output is not None else default_folder(root, tag)
    if destination.suffix.lower() in IMAGE_SUFFIXES and not destination.is_dir():
        raise UsageError(f"-o {destination}: a folder input needs an output folder, not an image file name")
    destination_resolved = destination.resolve()
    if destination_resolved == root.resolve():
        raise UsageError(f"-o {destination}: is the input folder; choose another -o for the outputs")
    holders = [folder for folder in folders if folder == destination_resolved or folder in destination_resolved.parents]
    if output is None and holders:
        raise UsageError(f"{destination}: the output folder for {root} would lie inside the input {holders[0]}; choose one with -o")
    found = find_images(root)
    plan.skipped_hidden += found.skipped_hidden
    plan.skipped_other += found.skipped_other
    plan.output_dirs.append(destination)
    # Marked folders are skipped when a parent is listed: never one that already holds the user's images.
    if output is None or (holders and not _holds_unmarked_images(destination)):
        plan.marked_dirs.append(destination)
    for source in found.paths:
        if destination_resolved in source.resolve().parents:
            continue  # outputs of an earlier run inside the input folder are not inputs
        relative = source.relative_to(root)
        plan.tasks.append(FileTask(source, _with_suffix(destination / relative, suffix), relative.as_posix()))


def _holds_unmarked_images(folder: Path) -> bool:
    """Whether `folder` exists with images in it but no output marker: the user's own images."""
    return folder.is_dir() and not (folder / OUTPUT_MARKER).exists() and bool(find_images(folder).paths)


def existing_targets(plan: JobPlan) -> list[Path]:
    return [task.target for task in plan.tasks if task.target.exists()]


def prepare_output_folders(plan: JobPlan, tasks: Sequence[FileTask]) -> None:
    """Before the work: every folder the tasks write to exists and takes a file, temp files that
    killed runs left there are removed, and the output folders manurestore named are marked."""
    for folder in sorted({task.target.parent for task in tasks}):
        check_writable(folder)
        remove_stale_temps(folder)
    for folder in plan.marked_dirs:
        if folder.is_dir():
            mark_output_folder(folder)


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


def launcher_shard(environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The shard a launcher gave this process: `torchrun` (RANK of WORLD_SIZE), a SLURM job array
    (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, from SLURM_ARRAY_TASK_MIN), or both (each array
    task running torchrun: array task × ranks), as (K, N) like `--shard K/N`; None when not launched so.

    The same stable hash split as `--shard`, so `torchrun --nproc_per_node 4` and `--shard 1/4` …
    `--shard 4/4` by hand restore the same files each.
    """
    env = os.environ if environ is None else environ
    index, count = 0, 1
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task, tasks, first = (_env_int(env, name) for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"))
        if tasks < 1 or not 0 <= task - first < tasks:
            raise UsageError(f"SLURM_ARRAY_TASK_ID {task} is outside the array ({tasks} task(s) from {first}); "
                             "use a contiguous --array, or --shard K/N")
        index, count = task - first, tasks
    if "WORLD_SIZE" in env and "RANK" in env:
        rank, world = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"RANK {rank} is outside WORLD_SIZE {world} (set by the launcher)")
        index, count = index * world + rank, count * world
    return None if count == 1 else (index + 1, count)


def _env_int(env: Mapping[str, str], name: str) -> int:
    text = env.get(name, "0" if name == "SLURM_ARRAY_TASK_MIN" else "")
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r}: not a whole number (set by the launcher)") from None


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
