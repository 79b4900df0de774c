"""Finding images in folders: plain listings, train/val splits and degraded/clean pairs.

Nothing here opens an image; it only lists files, so it is cheap on large folders. Folders that
manurestore itself wrote (run folders, marked output folders) are never listed as inputs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from manurestore.data.io import IMAGE_SUFFIXES, display_path
from manurestore.errors import ManurestoreError, UsageError

__all__ = [
    "FolderError",
    "FoundImages",
    "MissingPathError",
    "NoImagesError",
    "NotEnoughImagesError",
    "OUTPUT_MARKER",
    "PairedImages",
    "TrainValSplit",
    "find_images",
    "find_pairs",
    "is_own_folder",
    "mark_output_folder",
    "matches_selection",
    "select_images",
    "split_train_val",
]

_SUFFIXES = frozenset(IMAGE_SUFFIXES)
_MAX_LISTED = 10

#: Written into the output folders `degrade` and `restore` name themselves (and into an -o folder
#: inside the input), so listing a folder above them never takes their pages for inputs.
OUTPUT_MARKER = ".manurestore-output"
_MARKER_TEXT = (
    "manurestore wrote the images in this folder. When manurestore lists a folder above this one\n"
    "(train, evaluate, degrade, restore), it leaves this folder out. Delete this file to change that.\n"
)
# A training run's folder (`manurestore train --run-dir`): its settings and log, or its state.
# training/run_folder.py writes these names.
RUN_CONFIG_FILE, RUN_METRICS_FILE, RUN_STATE_FILE = "config.json", "metrics.jsonl", "state.pt"


class MissingPathError(UsageError):
    """A path given on the command line does not exist (or is the wrong kind)."""


class FolderError(ManurestoreError):
    """A data folder whose contents or layout cannot be used; the message says what is expected."""


class NotEnoughImagesError(FolderError):
    """Fewer images than the split and batch size need."""


class NoImagesError(NotEnoughImagesError, UsageError):
    """A data folder with no images at all: the wrong folder was given (exit 2)."""


@dataclass
class FoundImages:
    """Images under a root, sorted by relative path, and how many files were passed over."""

    paths: list[Path] = field(default_factory=list)
    skipped_hidden: int = 0
    skipped_other: int = 0


@dataclass
class TrainValSplit:
    """Training and validation images, and a one-line description of where they came from."""

    train: list[Path]
    val: list[Path]
    layout: str


class PairedImages(list[tuple[Path, Path]]):
    """(degraded, clean) path pairs, sorted by relative path; a list with the two folders attached."""

    def __init__(self, pairs: Iterable[tuple[Path, Path]] = (), *, degraded_dir: Path, clean_dir: Path) -> None:
        super().__init__(pairs)
        self.degraded_dir = degraded_dir
        self.clean_dir = clean_dir


# --------------------------------------------------------------------------- listing


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except PermissionError:
        raise FolderError(f"{display_path(folder)}: cannot list folder (permission denied)") from None
    except OSError as error:
        raise FolderError(f"{display_path(folder)}: cannot list folder ({error.strerror or error})") from None


def is_own_folder(names: Collection[str]) -> bool:
    """Whether a folder holding the entries `names` is manurestore's own: a training run folder
    (config.json + metrics.jsonl, or state.pt) or an output folder carrying OUTPUT_MARKER."""
    return OUTPUT_MARKER in names or RUN_STATE_FILE in names or {RUN_CONFIG_FILE, RUN_METRICS_FILE} <= set(names)


def mark_output_folder(folder: Path) -> None:
    """Mark `folder` (which exists) as holding manurestore's outputs; see OUTPUT_MARKER."""
    if (folder / OUTPUT_MARKER).exists():
        return  # marked by an earlier run (or another process just now)
    try:
        with open(folder / OUTPUT_MARKER, "x", encoding="utf-8") as stream:
            stream.write(_MARKER_TEXT)
    except FileExistsError:
        return  # another process marked it between the check and the open
    except OSError as error:
        raise FolderError(f"{display_path(folder)}: cannot write into this folder ({error.strerror or error})") from None


def _count_files(folder: Path) -> int:
    """Files anywhere under a hidden folder (not following folder links), for the skip count."""
    count = 0
    for _, _, files in os.walk(folder):
        count += len(files)
    return count


def find_images(root: str | os.PathLike, recursive: bool = True) -> FoundImages:
    """Image files under `root` (or `root` itself if it is a file), sorted by relative path.

    Suffixes are matched case-insensitively against IMAGE_SUFFIXES. Hidden files and
    everything inside hidden folders (names starting with ".") are skipped and counted
    in skipped_hidden; other files in skipped_other. Folder links are followed once
    (loops are ignored). A root that does not exist is a MissingPathError.

    Subfolders that manurestore wrote itself (see `is_own_folder`: a training run folder,
    whose samples/ panels are not training pages, or a default output folder of `degrade` or
    `restore`) are skipped whole and counted nowhere: their pages are results, not inputs.
    `root` itself is always listed, so such a folder can still be given on purpose.
    """
    root = Path(root)
    if not root.exists():
        raise MissingPathError(f"{display_path(root)}: no such file or folder")
    if not root.is_dir():
        return FoundImages(paths=[root])
    found: list[tuple[tuple[str, ...], Path]] = []
    hidden = other = 0
    visited: set[tuple[int, int]] = set()
    # Real folders are walked first, linked folders afterwards, so a folder that is
    # reachable both ways is listed under its real path (and only once).
    pending: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    linked: list[tuple[Path, tuple[str, ...]]] = []
    while pending or linked:
        folder, relative = pending.pop() if pending else linked.pop(0)
        try:
            info = folder.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in visited:
            continue
        visited.add((info.st_dev, info.st_ino))
        subfolders: list[tuple[Path, tuple[str, ...]]] = []
        entries = _scan(folder)
        if relative and is_own_folder({entry.name for entry in entries}):
            continue
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if _is_hidden(name):
                    if recursive:
                        hidden += _count_files(Path(entry.path))
                elif recursive:
                    item = (Path(entry.path), (*relative, name))
                    (linked if entry.is_symlink() else subfolders).append(item)
                continue
            if name == OUTPUT_MARKER:
                continue  # the root's own marker: ours, not the user's
            if _is_hidden(name):
                hidden += 1
            elif os.path.splitext(name)[1].lower() in _SUFFIXES and _is_file(entry):
                found.append(((*relative, name), Path(entry.path)))
            else:
                other += 1
        pending.extend(reversed(subfolders))
    found.sort(key=lambda item: item[0])
    return FoundImages(paths=[path for _, path in found], skipped_hidden=hidden, skipped_other=other)


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _require_folder(path: Path) -> None:
    if not path.exists():
        raise MissingPathError(f"{display_path(path)}: no such folder")
    if not path.is_dir():
        raise MissingPathError(f"{display_path(path)}: is a file; give the folder that holds the images")


def _key(path: Path, root: Path) -> str:
    """Relative path with "/" separators, NFC-normalised (macOS stores names decomposed)."""
    return unicodedata.normalize("NFC", path.relative_to(root).as_posix())


# --------------------------------------------------------------------------- selection


def _relative_key(path: Path, root: Path) -> str:
    """`_key`, where a root that is the image file itself gives the file's name."""
    return unicodedata.normalize("NFC", path.name) if Path(path) == Path(root) else _key(Path(path), Path(root))


def _clean_pattern(pattern: str) -> str:
    pattern = unicodedata.normalize("NFC", pattern.replace("\\", "/"))
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.rstrip("/")


def matches_selection(relative: str, pattern: str) -> bool:
    """Whether the image at `relative` (its path relative to the data root, "/"-separated) is meant
    by `pattern`: the pattern, as a glob (`fnmatch`, case-sensitive, `*` also crosses "/"), matches
    the whole relative path or one of its leading folders. So `tamil-palmleaf` means everything in
    that first-level folder (a collection), `cremma-*` every collection whose name starts so,
    `tamil-palmleaf/0001.jpg` one image and `*/0001.jpg` that name in every collection.
    """
    pattern = _clean_pattern(pattern)
    if not pattern:
        return False
    parts = unicodedata.normalize("NFC", relative).split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:end]), pattern) for end in range(1, len(parts) + 1))


def select_images(
    paths: Iterable[Path], root: str | os.PathLike, include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[Path]:
    """The images among `paths` (found under `root`) that `--include`/`--exclude` keep, in order.

    With no include pattern every image is kept; otherwise only those matching at least one.
    Then every image matching an exclude pattern is dropped. Matching follows
    :func:`matches_selection` on the path relative to `root`. A pattern that matches no image at
    all (before the other option is applied) is a UsageError naming the first-level folders, so a
    misspelt held-out collection never silently lets its images through.
    """
    root = Path(root)
    paths = list(paths)
    keys = [_relative_key(path, root) for path in paths]
    include, exclude = list(include or ()), list(exclude or ())
    for option, patterns in (("--include", include), ("--exclude", exclude)):
        for pattern in patterns:
            if not any(matches_selection(key, pattern) for key in keys):
                folders = sorted({key.split("/")[0] for key in keys if "/" in key})
                there = f"; first-level folders: {_listing(folders)}" if folders else ""
                raise UsageError(f"{option} {pattern!r}: matches no image under {display_path(root)}{there}")
    return [
        path
        for path, key in zip(paths, keys)
        if (not include or any(matches_selection(key, p) for p in include))
        and not any(matches_selection(key, p) for p in exclude)
    ]


# --------------------------------------------------------------------------- train / val


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}\0{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _needed(val_fraction: float, batch_size: int) -> int:
    """Fewest images a split can use: one full training batch, plus one val image if any."""
    return batch_size + (1 if val_fraction > 0 else 0)


def _require_images(images: list[Path], folder: Path, data: Path) -> None:
    """A folder with no images at all is the wrong folder, not a small one: say so plainly."""
    if not images:
        raise NoImagesError(
            f"{display_path(folder)}: holds no images ({', '.join(IMAGE_SUFFIXES)}); add clean page images "
            f"or make some with: manurestore synth {display_path(data)}"
        )


def _split(
    images: list[Path], root: Path, val_fraction: float, seed: int, batch_size: int, where: str
) -> tuple[list[Path], list[Path]]:
    """Deterministic split: an image is in val when hash(seed, relative path) < val_fraction.

    Membership depends only on the seed and the image's own path, so listing order does
    not matter and adding or removing images never moves the others. Only at the edges
    is the count adjusted: at least one val image, and enough training images for a batch
    (lowest hashes join val, highest leave it first).
    """
    needed = _needed(val_fraction, batch_size)
    if len(images) < needed:
        split = f" with a {val_fraction:.0%} validation split" if val_fraction > 0 else ""
        raise NotEnoughImagesError(
            f"{where}: found {len(images)} image{'s' if len(images) != 1 else ''}, need at least {needed} "
            f"for batch size {batch_size}{split}"
        )
    if val_fraction == 0:
        return list(images), []
    scores = {path: _unit_hash(seed, _key(path, root)) for path in images}
    by_score = sorted(images, key=lambda path: (scores[path], _key(path, root)))
    n_val = sum(1 for path in images if scores[path] < val_fraction)
    n_val = min(max(n_val, 1), len(images) - batch_size)
    val_set = set(by_score[:n_val])
    return [p for p in images if p not in val_set], [p for p in images if p in val_set]


def split_train_val(
    data: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0, batch_size: int = 1
) -> TrainValSplit:
    """Training and validation images for `data`.

    Layouts, in order: `data/train` + `data/val`; `data/train` alone (split by seed);
    a single folder of images (split by seed). A split puts about val_fraction of the
    images in val (at least one when val_fraction > 0), chosen by a stable hash of the
    seed and each relative path. Too few images is a NotEnoughImagesError; none at all in
    the folder the images should be in, a NoImagesError (a UsageError, exit 2).
    """
    if isinstance(val_fraction, bool) or not 0 <= val_fraction < 1:
        raise UsageError(f"validation fraction must be at least 0 and below 1, got {val_fraction!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size must be a positive whole number, got {batch_size!r}")
    data = Path(data)
    _require_folder(data)
    train_dir, val_dir = data / "train", data / "val"
    if train_dir.is_dir():
        train = find_images(train_dir).paths
        _require_images(train, train_dir, data)
        if val_dir.is_dir():
            val = find_images(val_dir).paths
            if len(train) < batch_size:
                raise NotEnoughImagesError(
                    f"{display_path(train_dir)}: found {len(train)} image{'s' if len(train) != 1 else ''}, "
                    f"need at least {batch_size} for batch size {batch_size}"
                )
            if not val:
                raise NotEnoughImagesError(
                    f"{display_path(val_dir)}: found 0 images, need at least 1; add some or remove the "
                    f"empty folder to split {display_path(train_dir)} instead"
                )
            return TrainValSplit(train, val, f"{display_path(train_dir)} + {display_path(val_dir)}")
        train, val = _split(train, train_dir, val_fraction, seed, batch_size, display_path(train_dir))
        layout = f"{display_path(train_dir)} split by seed {seed}: {len(train)} train, {len(val)} val (no val folder)"
        return TrainValSplit(train, val, layout)
    if val_dir.is_dir():
        raise FolderError(
            f"{display_path(data)}: has a val folder but no train folder; expected {display_path(train_dir)} "
            "(+ val), or a single folder of images"
        )
    images = find_images(data).paths
    _require_images(images, data, data)
    train, val = _split(images, data, val_fraction, seed, batch_size, display_path(data))
    return TrainValSplit(train, val, f"{display_path(data)} split by seed {seed}: {len(train)} train, {len(val)} val")


# --------------------------------------------------------------------------- pairs


def _listing(names: list[str]) -> str:
    shown = ", ".join(display_path(name) for name in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{shown}, … and {more} more" if more > 0 else shown


def _by_stem(folder: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in find_images(folder).paths:
        key = _key(path.with_suffix(""), folder)
        if key in stems:
            raise FolderError(
                f"{display_path(folder)}: {display_path(stems[key].name)} and {display_path(path.name)} have the "
                "same name apart from the suffix; pairs are matched by name, so keep only one"
            )
        stems[key] = path
    return stems


def find_pairs(data: str | os.PathLike) -> PairedImages:
    """(degraded, clean) pairs from `data/degraded` and `data/clean`, matched by relative path
    without suffix (`a/b.jpg` pairs with `a/b.png`), sorted. Any unmatched image is an error."""
    data = Path(data)
    _require_folder(data)
    degraded_dir, clean_dir = data / "degraded", data / "clean"
    missing = [name for name, folder in (("degraded", degraded_dir), ("clean", clean_dir)) if not folder.is_dir()]
    if missing:
        which = " and ".join(f"{display_path(data / name)}" for name in missing)
        raise FolderError(
            f"{which}: no such folder; paired data needs {display_path(degraded_dir)} and "
            f"{display_path(clean_dir)} with the same file names"
        )
    degraded, clean = _by_stem(degraded_dir), _by_stem(clean_dir)
    only_degraded = sorted(set(degraded) - set(clean))
    only_clean = sorted(set(clean) - set(degraded))
    if only_degraded or only_clean:
        parts = []
        if only_degraded:
            parts.append(
                f"{len(only_degraded)} in degraded/ without a clean match ({_listing([degraded[k].relative_to(degraded_dir).as_posix() for k in only_degraded])})"
            )
        if only_clean:
            parts.append(
                f"{len(only_clean)} in clean/ without a degraded match ({_listing([clean[k].relative_to(clean_dir).as_posix() for k in only_clean])})"
            )
        raise FolderError(
            f"{display_path(data)}: unmatched images: {'; '.join(parts)}; images pair up by relative path "
            "without suffix"
        )
    if not degraded:
        raise FolderError(f"{display_path(degraded_dir)}: no images found (nor in {display_path(clean_dir)})")
    keys = sorted(degraded, key=lambda key: tuple(key.split("/")))
    return PairedImages(
        [(degraded[key], clean[key]) for key in keys], degraded_dir=degraded_dir, clean_dir=clean_dir
    )
