"""Training state: what resuming needs (optimizer, step, RNG states, EMA) in `state.pt`.

Saved in types that `torch.load(weights_only=True)` accepts, so reading a state file never runs
code; written to a temporary name and renamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from manurestore.atomic import atomic_write
from manurestore.models.checkpoint import CheckpointError


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda temp: torch.save(state, temp))


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no training state to resume from") from None
    except Exception as error:
        raise CheckpointError(f"{path}: unreadable training state ({str(error).splitlines()[0]})") from None
