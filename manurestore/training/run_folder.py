"""The run folder (`--run-dir`): one run per folder, its settings in `config.json`.

A new run refuses a folder that already holds one, unless told to replace it (then only the
files a run writes are removed, never the user's own); a resumed run must keep the settings that
shape its results, so its losses continue exactly where they stopped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from manurestore.atomic import atomic_write_text
from manurestore.errors import UsageError
from manurestore.training.config import TrainConfig

# Everything a run writes, named once, so --overwrite removes exactly these.
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
BEST_WEIGHTS = "best.safetensors"
LAST_WEIGHTS = "last.safetensors"
STATE_FILE = "state.pt"
SAMPLES_DIR = "samples"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, BEST_WEIGHTS, LAST_WEIGHTS, STATE_FILE, SAMPLES_DIR)
# Settings a resumed run may change; everything else must match the run being resumed.
RESUMABLE_CHANGES = {"epochs", "max_steps", "time_limit", "device", "workers", "log_every", "val_every", "run_dir", "cache_dir", "memory_budget_mb", "compile", "checkpoint_every", "weights_dtype"}


def prepare_run_dir(cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; with --overwrite remove only our own files."""
    run_dir = cfg.run_dir
    holds_run = (run_dir / CONFIG_FILE).exists() or (run_dir / STATE_FILE).exists()
    if resume:
        if not (run_dir / STATE_FILE).exists():
            raise UsageError(f"{run_dir}: no {STATE_FILE} to resume from; drop --resume to start a new run")
        return
    if holds_run and not overwrite:
        raise UsageError(f"{run_dir}: already holds a run; pass --resume to continue it, --overwrite to replace it, or choose another --run-dir")
    if overwrite:
        for name in RUN_FILES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def write_run_config(cfg: TrainConfig) -> None:
    """Record the run's settings, so `--resume` can restore them and check what changed."""
    atomic_write_text(cfg.run_dir / CONFIG_FILE, cfg.model_dump_json(indent=2))


def read_run_config(run_dir: Path) -> dict | None:
    """The settings a run in `run_dir` was started with, or None where it recorded none."""
    path = run_dir / CONFIG_FILE
    return json.loads(path.read_text()) if path.exists() else None


def check_resume_config(saved: dict | None, cfg: TrainConfig) -> None:
    """Refuse to resume with settings that would make the continued run differ from the first part."""
    if saved is None:
        raise UsageError(f"{cfg.run_dir}: no {CONFIG_FILE}, so the run's settings are unknown; start a new --run-dir")
    current = json.loads(cfg.model_dump_json())
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current[k]!r}" for k in changed[:4])
        raise UsageError(f"--resume with different settings ({details}); resume with the run's own settings or start a new --run-dir")
