"""Model files: safetensors weights whose metadata rebuilds the model, and the bundled default.

`best.safetensors` / `last.safetensors` hold the weights plus JSON metadata (model name, model
config, manurestore version, training crop, metrics), so `restore` needs only that one file.
Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from manurestore import __version__
from manurestore.atomic import atomic_write
from manurestore.errors import ManurestoreError
from manurestore.models.registry import build_model_from_config, model_config

FORMAT = "manurestore-checkpoint-1"


class CheckpointError(ManurestoreError):
    """A weights or state file that cannot be used; the message names it."""


WEIGHTS_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, Any], weights: dict | None = None,
                 dtype: str = "fp32") -> None:
    """Weights (contiguous CPU tensors) and metadata (each value JSON-encoded) in one file.

    `weights` overrides the model's current state_dict (e.g. a best copy kept on the host).
    `dtype` stores floating tensors in fp16 or bf16 to halve the file (shipped models); loading
    casts them back to the model's float32.
    """
    state = model.state_dict() if weights is None else weights
    target = WEIGHTS_DTYPES[dtype]
    tensors = {
        name: value.detach().to("cpu", target if value.is_floating_point() else value.dtype).contiguous()
        for name, value in state.items()
    }
    header = {"format": FORMAT, "manurestore_version": __version__, "model_config": model_config(model), **metadata}
    encoded = {key: json.dumps(value) for key, value in header.items()}
    atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=encoded))


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a weights file, without loading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: model file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a safetensors model file ({error})") from None
    metadata = {key: json.loads(value) for key, value in raw.items()}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a manurestore model (no '{FORMAT}' metadata); use a .safetensors file written by `manurestore train`")
    return metadata


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model a weights file describes and load its weights, in eval mode."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        model = build_model_from_config(metadata["model_config"])
        model.load_state_dict(load_file(str(path)), strict=True)
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: weights do not match the model they describe ({str(error).splitlines()[0]})") from None
    return model.to(device).eval(), metadata


def bundled_model_path() -> Path | None:
    """The pretrained default shipped as package data, when this installation has one."""
    from importlib import resources

    candidate = resources.files("manurestore.models") / "weights" / "default.safetensors"
    return Path(str(candidate)) if candidate.is_file() else None
