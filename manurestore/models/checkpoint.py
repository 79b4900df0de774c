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
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from manurestore import __version__
from manurestore.atomic import atomic_write
from manurestore.errors import ManurestoreError
from manurestore.models.registry import MAX_CROP, MIN_CROP, ModelConfigSchema, model_config
from manurestore.models.vit import RestorerConfig, RestorerViT
from manurestore.validation import finite_json, readable_path, short_text, validation_problem, whole_number

FORMAT = "manurestore-checkpoint-1"
FIX = "use a model file written by `manurestore train`"


class CheckpointError(ManurestoreError):
    """A weights or state file that cannot be used; the message names it."""


WEIGHTS_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# How safetensors names the float dtypes a model file may hold; loading casts them to float32.
FILE_DTYPES = {"F16", "BF16", "F32", "F64"}


class ModelMetadata(BaseModel):
    """What a model file's metadata must hold before anything is built from it.

    `format` is checked first, for its own message. Other keys (metrics, step, preset, ...) are
    kept as written; like these, they must be JSON without NaN or infinity.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    architecture: ModelConfigSchema = Field(alias="model_config")
    model_name: short_text(100) | None = None
    train_crop: whole_number(MIN_CROP, MAX_CROP) = 256  # the tile restore uses by default


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
    """The validated JSON metadata of a weights file, without loading the tensors."""
    return _checked_metadata(Path(path))[0]


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model a weights file describes and load its weights, in eval mode.

    The metadata is validated and the file's tensor shapes compared with the model's (built on
    the meta device) before the model is built, so a hostile file cannot make us allocate more
    than it holds; weights that are not all finite are refused.
    """
    path = Path(path)
    metadata, schema = _checked_metadata(path)
    config = schema.architecture.restorer_config()
    _check_shapes(path, config)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read the weights ({error}); {FIX}") from None
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weight {name} holds NaN or infinite values; the model is broken, {FIX}")
    model = RestorerViT(config)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), metadata


def _checked_metadata(path: Path) -> tuple[dict[str, Any], ModelMetadata]:
    """(metadata as written, with defaults filled in; its validated schema), or one line naming the field."""
    raw = _raw_metadata(path)
    metadata = {key: _decode(path, key, value) for key, value in raw.items()}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a manurestore model (no '{FORMAT}' metadata); {FIX}")
    try:
        schema = ModelMetadata.model_validate(metadata)
    except ValidationError as error:
        raise CheckpointError(f"{path}: {validation_problem(error, 'metadata')}; {FIX}") from None
    return {**metadata, "train_crop": schema.train_crop}, schema


def _raw_metadata(path: Path) -> dict[str, str]:
    """The header's metadata strings; safetensors checks the header against the file's size."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: model file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a safetensors model file ({error}); {FIX}") from None


def _decode(path: Path, key: str, value: str) -> Any:
    """One metadata value: JSON without NaN or infinity (json would accept them)."""
    try:
        return finite_json(value)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: metadata field {readable_path([key])} is not JSON with finite numbers ({str(error)[:80]}); {FIX}") from None


def _check_shapes(path: Path, config: RestorerConfig) -> None:
    """Every tensor the model needs is in the file with its shape and a float dtype, and no other."""
    with torch.device("meta"):
        expected = {name: tuple(value.shape) for name, value in RestorerViT(config).state_dict().items()}
    with safe_open(str(path), framework="pt") as handle:
        found = {name: handle.get_slice(name) for name in handle.keys()}
        shapes = {name: tuple(part.get_shape()) for name, part in found.items()}
        dtypes = {name: part.get_dtype() for name, part in found.items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        what = f"lacks weight {missing[0]}" if missing else f"has an unexpected weight {readable_path([extra[0]])}"
        raise CheckpointError(f"{path}: weights do not match the model its metadata describes (it {what}); {FIX}")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise CheckpointError(f"{path}: weight {name} has shape {list(shapes[name])}, the model needs {list(shape)}; {FIX}")
        if dtypes[name] not in FILE_DTYPES:
            raise CheckpointError(f"{path}: weight {name} is {dtypes[name]}, not a float type; {FIX}")


def bundled_model_path() -> Path | None:
    """The pretrained default shipped as package data, when this installation has one."""
    from importlib import resources

    candidate = resources.files("manurestore.models") / "weights" / "default.safetensors"
    return Path(str(candidate)) if candidate.is_file() else None
