"""Training state: what resuming needs (optimizer, step, RNG states, EMA) in `state.pt`.

Saved in types that `torch.load(weights_only=True)` accepts, so reading a state file never runs
code; written to a temporary name and renamed. A state file read back is checked field by field
before anything uses it: a damaged or hand-edited file is one line that names it and the field,
never a traceback halfway through restoring the optimizer.
"""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from manurestore.atomic import atomic_write
from manurestore.models.checkpoint import CheckpointError
from manurestore.validation import shown

# The most steps a run can have taken: far beyond any real run, low enough to catch garbage.
MAX_STEP = 10**9


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda temp: torch.save(state, temp))


def load_state(path: Path) -> dict[str, Any]:
    """The state in `path`, checked (see `check_state`); a CheckpointError names what is wrong."""
    if not path.exists():
        raise CheckpointError(f"{path}: no training state to resume from")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: is empty (0 bytes); the run cannot be resumed from it: "
                              "start a new --run-dir, or --overwrite this one")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols say nothing a user can act on
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():  # torch's refusal; its advice to bypass it must not be repeated
            raise CheckpointError(f"{path}: holds objects other than tensors and plain values, so it was not "
                                  "loaded (loading it could run code); it was not written by manurestore") from None
        raise CheckpointError(f"{path}: unreadable training state ({first_line(error)})") from None
    except Exception as error:
        raise CheckpointError(f"{path}: unreadable training state ({first_line(error)})") from None
    check_state(state, path)
    return state


def first_line(error: BaseException) -> str:
    """An exception's first line of text, or its type where it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_state(state: Any, path: Path) -> None:
    """Refuse a state whose fields are missing or of the wrong kind, before any of it is used."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a training state")
    missing = [key for key in ("step", "model", "optimizer", "scaler", "ema", "best_psnr", "identity", "torch_rng")
               if key not in state]
    if missing:
        raise CheckpointError(f"{path}: training state lacks {', '.join(missing)}; it was not written by this "
                              "version of manurestore train, or is damaged: start a new --run-dir")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{path}: step must be a whole number from 0 to {MAX_STEP}, got {shown(step)}")
    best = state["best_psnr"]
    if isinstance(best, bool) or not isinstance(best, (int, float)) or not math.isfinite(best):
        raise CheckpointError(f"{path}: best_psnr must be a finite number, got {shown(best)}")
    for key in ("model", "optimizer", "scaler", "ema", "identity"):
        if not isinstance(state[key], dict):
            raise CheckpointError(f"{path}: {key} must be a table of values, got {type(state[key]).__name__}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in state["identity"].values()):
        raise CheckpointError(f"{path}: identity must map metric names to finite numbers")
    rng = state["torch_rng"]
    expected = torch.get_rng_state()
    if not isinstance(rng, torch.Tensor) or rng.dtype != expected.dtype or rng.shape != expected.shape:
        shape = tuple(rng.shape) if isinstance(rng, torch.Tensor) else type(rng).__name__
        raise CheckpointError(f"{path}: torch_rng must be a uint8 tensor of shape {tuple(expected.shape)}, got {shape}")
    for name, tensor in state["model"].items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: model weight {shown(name)} is not a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: model weight {shown(name)} holds NaN or infinite values; resume from an "
                                  "earlier copy or start a new --run-dir")
