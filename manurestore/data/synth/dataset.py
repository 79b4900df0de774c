"""Synthetic data sets: pages planned from one seed, split into train/ and val/, and a manifest.json.

Each page depends on its own seed only, so pages can be rendered in any order, in any number
of processes, and any one page can be made again from its manifest entry.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from manurestore import __version__
from manurestore.atomic import atomic_write_text
from manurestore.data.io import write_image
from manurestore.data.synth.fonts import fonts_for_manifest, require_raqm
from manurestore.data.synth.pages import KINDS, check_kind, check_seed, check_size, render_page
from manurestore.errors import ManurestoreError, UsageError

DEFAULT_PAGES = 48
DEFAULT_VAL_FRACTION = 0.15
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "manurestore-synth"
MANIFEST_VERSION = 1


def page_seed(seed: int, index: int) -> int:
    """The seed of page `index` (0-based) of a data set made with `seed`."""
    state = np.random.SeedSequence(entropy=check_seed(seed), spawn_key=(int(index),)).generate_state(1, np.uint32)
    return int(state[0])


_PAGE_NAME = re.compile(r"(train|val)/page-[0-9]+\.png")


def _read_manifest(out: Path) -> dict | None:
    try:
        data = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def is_synth_output(folder: str | os.PathLike) -> bool:
    """True when `folder` holds a manifest.json written by synth."""
    return _read_manifest(Path(folder)) is not None


def _write_manifest(out: Path, manifest: dict) -> None:
    """Replace out/manifest.json in one step: a reader never sees half of it."""
    path = out / MANIFEST_NAME
    try:
        atomic_write_text(path, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    except OSError as error:
        raise ManurestoreError(f"{path}: cannot write ({error.strerror or error})") from None


def _plan(pages: int, seed: int, kind: str, val_fraction: float) -> list[dict]:
    """Each page's file, split, seed and kind; val drawn stratified by kind, at least one page when asked."""
    rng = np.random.default_rng([seed, 0x5EED])
    if kind == "mixed":
        kinds = [KINDS[i % 2] for i in range(pages)]
        if pages % 2:
            kinds[-1] = KINDS[int(rng.integers(2))]
        kinds = [kinds[i] for i in rng.permutation(pages)]
    else:
        kinds = [kind] * pages
    n_val = int(round(pages * val_fraction))
    if val_fraction > 0 and pages >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, pages - 1)
    # stratified: interleave the kinds so val holds both when mixed
    by_kind = [[i for i in rng.permutation(pages) if kinds[i] == k] for k in KINDS]
    order = [i for pair in zip(*by_kind) for i in pair] + [i for lst in by_kind for i in lst[min(map(len, by_kind)):]]
    val = set(order[:n_val])
    digits = max(4, len(str(pages)))
    plan = []
    for i in range(pages):
        split = "val" if i in val else "train"
        plan.append({"file": f"{split}/page-{i + 1:0{digits}d}.png", "split": split, "seed": page_seed(seed, i), "kind": kinds[i]})
    return plan


def _write_page(job: tuple) -> dict:
    """Render one planned page and write it; returns what the manifest records of it."""
    path, seed, kind, size, overwrite = job
    array, info = render_page(seed, kind, size)
    write_image(path, array, overwrite=overwrite)
    return info


class _InProcess:
    """The executor interface, run in this process (one worker needs no pool)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)


def _page_executor(workers: int, pages: int):
    """A process pool for several workers and pages; otherwise this process."""
    if workers <= 1 or pages <= 1:
        return _InProcess()
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=min(workers, pages))


def synth_dataset(
    out: str | os.PathLike,
    pages: int = DEFAULT_PAGES,
    seed: int = 0,
    kind: str = "mixed",
    size: tuple[int, int] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict:
    """Write `pages` clean pages to out/train and out/val, and out/manifest.json; returns the manifest.

    A non-empty `out` that is not an earlier synth output is refused unless `overwrite`;
    nothing that synth did not write is ever deleted. Rewriting an earlier synth output
    replaces its pages and removes the pages its manifest lists that the new set lacks.
    `progress(done, total)` is called after every page. `workers` > 1 renders pages in that
    many processes; every page depends on its own seed only, so the output is the same.
    """
    require_raqm()
    out = Path(out)
    seed, size = _check_settings(pages, seed, kind, size, val_fraction, workers)
    previous = _earlier_output(out, overwrite)
    fonts = fonts_for_manifest()
    plan = _plan(int(pages), seed, kind, float(val_fraction))
    ours = _pages_written_by_synth(previous)
    _make_room(out, {p["file"] for p in plan}, ours, overwrite)

    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "complete": False,
        "manurestore_version": __version__,
        "settings": {
            "pages": int(pages), "seed": seed, "kind": kind,
            "size": list(size) if size else None, "val_fraction": float(val_fraction),
        },
        "fonts": fonts,
        "counts": {"train": sum(p["split"] == "train" for p in plan), "val": sum(p["split"] == "val" for p in plan)},
        "pages": [dict(p) for p in plan],
    }
    # a provisional manifest first, so an interrupted run is still recognised as ours
    _write_manifest(out, manifest)
    jobs = [(out / e["file"], e["seed"], e["kind"], size, overwrite or e["file"] in ours) for e in manifest["pages"]]
    with _page_executor(workers, len(jobs)) as executor:
        for done, (entry, info) in enumerate(zip(manifest["pages"], executor.map(_write_page, jobs)), start=1):
            entry.update(size=info["size"], font=info["font"], material=info["material"], colour=info["colour"],
                         backdrop=info["backdrop"])
            ours.add(entry["file"])
            if progress is not None:
                progress(done, len(plan))
    manifest["complete"] = True
    _write_manifest(out, manifest)
    return manifest


def _check_settings(
    pages: int, seed: int, kind: str, size: tuple[int, int] | None, val_fraction: float, workers: int,
) -> tuple[int, tuple[int, int] | None]:
    """UsageError naming the option for any bad setting; returns the seed and size, checked."""
    if isinstance(pages, bool) or not isinstance(pages, (int, np.integer)) or pages < 1:
        raise UsageError(f"--pages must be at least 1, not {pages!r}")
    seed = check_seed(seed)
    check_kind(kind)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers!r}")
    if size is not None:
        size = check_size(size)
    if not (0.0 <= float(val_fraction) < 1.0):
        raise UsageError(f"--val-fraction must be at least 0 and below 1, not {val_fraction!r}")
    return seed, size


def _earlier_output(out: Path, overwrite: bool) -> dict | None:
    """The manifest of an earlier synth run in `out`, if any; refuses a folder of someone else's files."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose a folder for the data set")
    previous = _read_manifest(out) if out.is_dir() else None
    if out.is_dir() and previous is None and not overwrite:
        if any(not entry.name.startswith(".") for entry in out.iterdir()):
            raise ManurestoreError(
                f"{out}: folder is not empty and holds no synth {MANIFEST_NAME}; "
                "choose a new or empty folder, or pass --overwrite to write into it anyway"
            )
    return previous


def _pages_written_by_synth(previous: dict | None) -> set[str]:
    """The pages an earlier run wrote: only names synth itself gives, whatever the manifest says."""
    return {
        str(p.get("file")) for p in (previous or {}).get("pages", [])
        if isinstance(p, dict) and _PAGE_NAME.fullmatch(str(p.get("file")))
    }


def _make_room(out: Path, new_files: set[str], ours: set[str], overwrite: bool) -> None:
    """Create train/ and val/ and drop an earlier run's extra pages; never replace a file synth did not write."""
    if not overwrite:
        clash = sorted(f for f in new_files - ours if (out / f).exists())
        if clash:
            raise ManurestoreError(
                f"{out / clash[0]}: already exists and synth did not write it; "
                "pass --overwrite to replace it, or choose another folder"
            )
    try:
        (out / "train").mkdir(parents=True, exist_ok=True)
        (out / "val").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ManurestoreError(f"{out}: cannot create the folder ({error.strerror or error})") from None
    for stale in sorted(ours - new_files):  # an earlier, larger set: drop its extra pages
        (out / stale).unlink(missing_ok=True)
