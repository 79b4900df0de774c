"""Honest numbers: restore a reproducibly degraded (or real paired) set at full resolution and
compare PSNR, SSIM and MSE of the restored output with the identity baseline (degraded vs clean).

Metrics are computed on RGB in [0, 1] (grayscale pages are repeated to three channels), with the
definitions of `manurestore.metrics`. Large pages are measured in horizontal strips with
a halo of the SSIM window, which gives the same numbers as one pass without its memory.

Beside the mean: per collection (the first folder of an image's path relative to the data),
worst cases (pages made worse than their degraded input) and, with `safety`, "do no harm"
figures — the clean page restored as if it were damaged, scored against itself, with the shift
of its mean CIELAB colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from manurestore import metrics
from manurestore.batches import to_batch
from manurestore.data.io import OutOfMemoryPageError, page_memory, read_image
from manurestore.degradations.files import degrade_page
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.errors import ManurestoreError
from manurestore.inference.tiling import TiledRestorer

STRIP_ROWS = 512
HALO = metrics.SSIM_WINDOW // 2
SAFETY_DELTA_E = 2.0  # a mean-colour shift above this is counted: visible side by side
TOP_LEVEL = "."  # the collection of images directly in the data folder
MEMORY_HINT = "evaluate with a smaller --tile or --batch-size, with --crop, or with --device cpu"


@dataclass
class EvalImage:
    identity: str
    clean: np.ndarray  # uint8 H×W×3
    degraded: np.ndarray


def _rgb_batch(page: np.ndarray) -> torch.Tensor:
    """A uint8 page as a float (1, 3, H, W) batch; a grayscale page counts as three equal channels."""
    return to_batch([np.repeat(page, 3, axis=2) if page.shape[2] == 1 else page], torch.device("cpu"))


def page_metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and MSE of two uint8 pages, strip by strip (exactly as one pass would give)."""
    height = a.shape[0]
    squared_error, ssim_sum, pixels = 0.0, 0.0, 0
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        lo, hi = max(0, top - HALO), min(height, bottom + HALO)
        x, y = _rgb_batch(a[lo:hi]), _rgb_batch(b[lo:hi])
        inner = slice(top - lo, top - lo + (bottom - top))
        squared_error += float((x[..., inner, :] - y[..., inner, :]).double().pow(2).sum())
        ssim_sum += float(metrics.ssim_map(x, y)[..., inner, :].double().sum())
        pixels += (bottom - top) * a.shape[1] * 3
    mse = squared_error / pixels
    psnr = min(metrics.PSNR_CAP_DB, 10 * np.log10(1.0 / mse)) if mse > 0 else metrics.PSNR_CAP_DB
    return {"psnr": float(psnr), "ssim": ssim_sum / pixels, "mse": mse}


def mean_lab(page: np.ndarray) -> np.ndarray:
    """The mean CIELAB colour (L*, a*, b*) of a uint8 page: each pixel converted, then averaged
    (strip by strip, so a large page never needs a float copy of itself)."""
    total, pixels = np.zeros(3), 0
    for top in range(0, page.shape[0], STRIP_ROWS):
        lab = metrics.rgb_to_lab(_rgb_batch(page[top : top + STRIP_ROWS]).double())
        total += lab.sum(dim=(0, 2, 3)).numpy()
        pixels += lab.shape[2] * lab.shape[3]
    return total / max(pixels, 1)


def centre_crop(page: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return page
    top = max(0, (page.shape[0] - size) // 2)
    left = max(0, (page.shape[1] - size) // 2)
    return page[top : top + size, left : left + size]


def synthetic_set(paths: Iterable[tuple[Path, str]], pipeline: Pipeline, seed: int, device: torch.device, crop: int | None, failures: list):
    """EvalImages of clean files degraded reproducibly; a file that cannot be read or degraded
    (running out of memory included) is recorded in `failures` and yields None, so a progress bar
    still counts it."""
    for path, identity in paths:
        try:
            with page_memory(path, MEMORY_HINT):
                clean = centre_crop(read_image(path, mode="RGB"), crop)
                degraded = degrade_page(clean, pipeline, seed, identity, device)[0]
        except ManurestoreError as error:
            failures.append((path, str(error)))
            yield None
            continue
        yield EvalImage(identity, clean, degraded)


def paired_set(pairs: Iterable[tuple[Path, Path]], root: Path, crop: int | None, failures: list):
    """EvalImages of real (degraded, clean) pairs; a failed pair is recorded and yields None."""
    for degraded_path, clean_path in pairs:
        try:
            with page_memory(degraded_path, MEMORY_HINT):
                degraded = centre_crop(read_image(degraded_path, mode="RGB"), crop)
                clean = centre_crop(read_image(clean_path, mode="RGB"), crop)
        except ManurestoreError as error:
            failures.append((degraded_path, str(error)))
            yield None
            continue
        if degraded.shape != clean.shape:
            failures.append((degraded_path, f"{degraded_path}: size {degraded.shape[1]}×{degraded.shape[0]} differs from {clean_path} ({clean.shape[1]}×{clean.shape[0]})"))
            yield None
            continue
        yield EvalImage(str(degraded_path.relative_to(root / "degraded").with_suffix("")), clean, degraded)


@dataclass
class Evaluation:
    """What `evaluate_images` measured: one row per image and, with safety, one safety row each."""

    rows: list[dict] = field(default_factory=list)
    safety: list[dict] = field(default_factory=list)


def safety_row(identity: str, clean: np.ndarray, restored_clean: np.ndarray) -> dict:
    """Do no harm: the clean page restored as if damaged, against the clean page, and the CIE76
    ΔE between the mean Lab colour of that output and of the clean input."""
    lab_in, lab_out = mean_lab(clean), mean_lab(restored_clean)
    delta_e = float(metrics.delta_e76(torch.from_numpy(lab_out), torch.from_numpy(lab_in)))
    return {"image": identity, **page_metrics(restored_clean, clean), "delta_e": delta_e,
            "lab_in": [float(v) for v in lab_in], "lab_out": [float(v) for v in lab_out]}


def evaluate_images(images: Iterable[EvalImage | None], restorer: TiledRestorer, on_done: Callable[[dict | None], None] | None = None,
                    *, safety: bool = False, failures: list | None = None) -> Evaluation:
    """One row per image: identity baseline, restored, and the gain; with `safety`, also the clean
    page restored (see `safety_row`). `on_done` is called once per item, with None for an item that
    failed (a None from the set, or a library error or running out of memory while restoring,
    recorded in `failures`)."""
    result = Evaluation()
    for item in images:
        row = None
        if item is not None:
            try:
                with page_memory(item.identity, MEMORY_HINT):
                    row, guard = _measure(item, restorer, safety)
            except ManurestoreError as error:
                if failures is None:
                    raise
                named = isinstance(error, OutOfMemoryPageError)  # its message starts with the page
                failures.append((item.identity, str(error) if named else f"{item.identity}: {error}"))
            else:
                result.rows.append(row)
                if guard is not None:
                    result.safety.append(guard)
        if on_done:
            on_done(row)
    return result


def _measure(item: EvalImage, restorer: TiledRestorer, safety: bool) -> tuple[dict, dict | None]:
    """One page's row and, with `safety`, its safety row."""
    baseline = page_metrics(item.degraded, item.clean)
    restored = page_metrics(restorer.restore(item.degraded), item.clean)
    guard = safety_row(item.identity, item.clean, restorer.restore(item.clean)) if safety else None
    row = {
        "image": item.identity,
        "width": int(item.clean.shape[1]),
        "height": int(item.clean.shape[0]),
        "identity": baseline,
        "restored": restored,
        "gain": {"psnr": restored["psnr"] - baseline["psnr"], "ssim": restored["ssim"] - baseline["ssim"], "mse": restored["mse"] - baseline["mse"]},
    }
    return row, guard


def mean_row(rows: list[dict]) -> dict:
    def average(group, key):
        return float(np.mean([r[group][key] for r in rows])) if rows else float("nan")

    return {group: {key: average(group, key) for key in ("psnr", "ssim", "mse")} for group in ("identity", "restored", "gain")}


def worst_case(rows: list[dict]) -> dict:
    """What matters for an archive: how many pages came out worse than their degraded input
    (gain below 0) by PSNR and by SSIM, and the worst gains with their pages."""
    def worst(key):
        row = min(rows, key=lambda r: r["gain"][key])
        return {"image": row["image"], "gain": row["gain"][key]}

    return {
        "pages": len(rows),
        "worse_psnr": sum(1 for r in rows if r["gain"]["psnr"] < 0),
        "worse_ssim": sum(1 for r in rows if r["gain"]["ssim"] < 0),
        "worst_psnr_gain": worst("psnr") if rows else None,
        "worst_ssim_gain": worst("ssim") if rows else None,
    }


def safety_summary(rows: list[dict], threshold: float = SAFETY_DELTA_E) -> dict:
    """Mean PSNR, SSIM and ΔE of safety rows, the lowest PSNR and the largest ΔE with their pages,
    and how many pages shift their mean colour by more than `threshold` ΔE."""
    def average(key):
        return float(np.mean([r[key] for r in rows])) if rows else float("nan")

    lowest = min(rows, key=lambda r: r["psnr"]) if rows else None
    largest = max(rows, key=lambda r: r["delta_e"]) if rows else None
    return {
        "pages": len(rows),
        "mean": {"psnr": average("psnr"), "ssim": average("ssim"), "delta_e": average("delta_e")},
        "min_psnr": None if lowest is None else {"image": lowest["image"], "psnr": lowest["psnr"]},
        "max_delta_e": None if largest is None else {"image": largest["image"], "delta_e": largest["delta_e"]},
        "threshold_delta_e": threshold,
        "over_threshold": sum(1 for r in rows if r["delta_e"] > threshold),
    }


def collection_of(identity: str) -> str:
    """The first folder of an image's relative path; TOP_LEVEL for an image directly in the data."""
    return identity.split("/", 1)[0] if "/" in identity else TOP_LEVEL


def has_collections(identities: Iterable[str]) -> bool:
    """Whether any image lies in a subfolder, i.e. whether grouping by collection means anything."""
    return any("/" in identity for identity in identities)


def by_collection(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows grouped by collection, collections sorted by name (TOP_LEVEL first), rows in order."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(collection_of(row["image"]), []).append(row)
    return {name: groups[name] for name in sorted(groups, key=lambda name: (name != TOP_LEVEL, name))}


def single_op_pipelines(preset: Pipeline) -> list[Pipeline]:
    """Every installed op alone (always firing), at the preset's range where the preset has it."""
    from manurestore.plugins import registry

    in_preset = {step.op.name: step.op for step in preset.steps}
    pipelines = []
    for name, info in sorted(registry().items()):
        op = in_preset.get(name) or info.cls()
        pipelines.append(Pipeline([Step(op, 1.0)], name=name))
    return pipelines
