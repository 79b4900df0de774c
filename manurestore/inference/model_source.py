"""Which model a command uses: the file given with -m, or the bundled default."""

from __future__ import annotations

from pathlib import Path

import torch

from manurestore.errors import UsageError


def bundled_model_path() -> Path | None:
    """The pretrained default shipped as package data, when this installation has one."""
    from importlib import resources

    candidate = resources.files("manurestore.models") / "weights" / "default.safetensors"
    return Path(str(candidate)) if candidate.is_file() else None


def load_restorer_model(path: Path | None, device: torch.device):
    """(model, metadata, path) from -m, else the bundled default, else a usage error."""
    from manurestore.training.checkpoint import load_model

    if path is None:
        path = bundled_model_path()
        if path is None:
            raise UsageError("no model given and no bundled default model is installed; pass -m RUN_DIR/best.safetensors from `manurestore train`")
    elif path.is_dir():
        candidate = path / "best.safetensors"
        if not candidate.exists():
            raise UsageError(f"{path}: a folder without best.safetensors; pass the .safetensors file written by `manurestore train`")
        path = candidate
    elif not path.exists():
        raise UsageError(f"{path}: model file not found")
    model, metadata = load_model(path, device)
    return model, metadata, path


def inference_dtype(precision: str, device: torch.device) -> torch.dtype:
    from manurestore.training.trainer import resolve_precision

    return resolve_precision(precision, device)
