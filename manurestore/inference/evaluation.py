"""Honest numbers: restore a reproducibly degraded (or real paired) set at full resolution and
compare PSNR, SSIM and MSE of the restored output with the identity baseline (degraded vs clean).

Metrics are computed on RGB in [0, 1] (grayscale pages are repeated to three channels), with the
definitions of `manurestore.metrics`. Large pages are measured in horizontal strips with
a halo of the SSIM window, which gives the same numbers as one pass without its memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from manurestore import metrics
from manurestore.batches import to_batch
from manurestore.data.io import read_image
from manurestore.degradations.files import degrade_page
from manurestore.degradations.pipeline import Pipeline, Step
from manurestore.errors import ManurestoreError
from manurestore.inference.tiling import TiledRestorer

STRIP_ROWS = 512
HALO = metrics.SSIM_WINDOW // 2


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


def centre_crop(page: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return page
    top = max(0, (page.shape[0] - size) // 2)
    left = max(0, (page.shape[1] - size) // 2)
    return page[top : top + size, left : left + size]


def synthetic_set(paths: Iterable[tuple[Path, str]], pipeline: Pipeline, seed: int, device: torch.device, crop: int | None, failures: list):
    for path, identity in paths:
        try:
            clean = centre_crop(read_image(path, mode="RGB"), crop)
        except ManurestoreError as error:
            failures.append((path, str(error)))
            continue
        yield EvalImage(identity, clean, degrade_page(clean, pipeline, seed, identity, device)[0])


def paired_set(pairs: Iterable[tuple[Path, Path]], root: Path, crop: int | None, failures: list):
    for degraded_path, clean_path in pairs:
        try:
            degraded = centre_crop(read_image(degraded_path, mode="RGB"), crop)
            clean = centre_crop(read_image(clean_path, mode="RGB"), crop)
        except ManurestoreError as error:
            failures.append((degraded_path, str(error)))
            continue
        if degraded.shape != clean.shape:
            failures.append((degraded_path, f"{degraded_path}: size {degraded.shape[1]}×{degraded.shape[0]} differs from {clean_path} ({clean.shape[1]}×{clean.shape[0]})"))
            continue
        yield EvalImage(str(degraded_path.relative_to(root / "degraded").with_suffix("")), clean, degraded)


def evaluate_images(images: Iterable[EvalImage], restorer: TiledRestorer, on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """One row per image: identity baseline, restored, and the gain."""
    rows = []
    for item in images:
        baseline = page_metrics(item.degraded, item.clean)
        restored = page_metrics(restorer.restore(item.degraded), item.clean)
        row = {
            "image": item.identity,
            "width": int(item.clean.shape[1]),
            "height": int(item.clean.shape[0]),
            "identity": baseline,
            "restored": restored,
            "gain": {"psnr": restored["psnr"] - baseline["psnr"], "ssim": restored["ssim"] - baseline["ssim"], "mse": restored["mse"] - baseline["mse"]},
        }
        rows.append(row)
        if on_done:
            on_done(row)
    return rows


def mean_row(rows: list[dict]) -> dict:
    def average(group, key):
        return float(np.mean([r[group][key] for r in rows])) if rows else float("nan")

    return {group: {key: average(group, key) for key in ("psnr", "ssim", "mse")} for group in ("identity", "restored", "gain")}


def single_op_pipelines(preset: Pipeline) -> list[Pipeline]:
    """Every installed op alone (always firing), at the preset's range where the preset has it."""
    from manurestore.plugins import registry

    in_preset = {step.op.name: step.op for step in preset.steps}
    pipelines = []
    for name, info in sorted(registry().items()):
        op = in_preset.get(name) or info.cls()
        pipelines.append(Pipeline([Step(op, 1.0)], name=name))
    return pipelines
