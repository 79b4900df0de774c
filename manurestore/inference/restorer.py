"""The restorer every command uses: a model file (or the bundled default) behind the tiler.

`restore`, `evaluate` and both `visualize` commands call `load_restorer`, so they restore a page
the same way: the model's own training crop as the tile, the same overlap rule and precision.

>>> loaded = load_restorer(None, torch.device("cpu"))          # doctest: +SKIP
>>> restored = loaded.restorer.restore(page)                    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from manurestore.devices import resolve_precision
from manurestore.errors import UsageError
from manurestore.inference.tiling import COLOUR_MODES, LOCAL_SCALE, MIN_CHANGE, TiledRestorer
from manurestore.models.checkpoint import bundled_model_path, load_model


@dataclass(frozen=True)
class LoadedRestorer:
    """A ready tiler and where its model came from."""

    restorer: TiledRestorer
    metadata: dict[str, Any]  # the weights file's metadata (model config, training crop, metrics)
    path: Path


def model_file(path: Path | None) -> Path:
    """The weights file meant by -m: a file, a run folder's best.safetensors, or the bundled default."""
    if path is None:
        bundled = bundled_model_path()
        if bundled is None:
            raise UsageError("no model given and no bundled default model is installed; pass -m RUN_DIR/best.safetensors from `manurestore train`")
        return bundled
    if path.is_dir():
        candidate = path / "best.safetensors"
        if not candidate.exists():
            raise UsageError(f"{path}: a folder without best.safetensors; pass the .safetensors file written by `manurestore train`")
        return candidate
    if not path.exists():
        raise UsageError(f"{path}: model file not found")
    return path


def load_restorer(model: Path | None, device: torch.device, *, tile: int | None = None, overlap: int | None = None,
                  batch_size: int = 8, precision: str = "auto", colour: str = "correct",
                  local_scale: float | None = None, min_change: float | None = None) -> LoadedRestorer:
    """Load a model and wrap it in the tiler; `tile` defaults to the model's training crop,
    `local_scale` (the tiles' reach, see `tiling`) to LOCAL_SCALE for a model with a page-context
    branch, no limit for one without, and `min_change` (the tiles' smallest change, in levels of
    255) to MIN_CHANGE with a branch, none without.

    Bad settings (precision, overlap, colour, local scale, min change) are usage errors, checked before the
    weights are read where they can be.
    """
    dtype = resolve_precision(precision, device, inference=True)
    if colour not in COLOUR_MODES:
        raise UsageError(f"--colour {colour!r}: use {' or '.join(COLOUR_MODES)}")
    if local_scale is not None and local_scale < 0:
        raise UsageError(f"--local-scale {local_scale:g}: give a scale in pixels (0: no limit), or leave it out for the model's default")
    if min_change is not None and not 0 <= min_change <= 255:
        raise UsageError(f"--min-change {min_change:g}: give levels of 255 in [0, 255] (0: every change), or leave it out for the model's default")
    path = model_file(model)
    net, metadata = load_model(path, device)
    size = tile or int(metadata.get("train_crop", 256))
    has_branch = getattr(net, "page_context", None) is not None
    if local_scale is None:  # the defaults follow the model, and fit any tile
        local_scale = min(LOCAL_SCALE, size / 4) if has_branch else 0.0
    floor = (MIN_CHANGE if has_branch else 0.0) if min_change is None else min_change / 255
    if local_scale > size / 4:
        raise UsageError(f"--local-scale {local_scale:g}: at most a quarter of the {size}-pixel tile ({size / 4:g})")
    try:
        restorer = TiledRestorer(net, tile=size, overlap=overlap, batch_size=batch_size, device=device, dtype=dtype,
                                 colour=colour, local_scale=local_scale, min_change=floor)
    except ValueError as error:
        raise UsageError(f"--overlap: {error}") from None
    return LoadedRestorer(restorer, metadata, path)
