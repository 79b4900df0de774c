"""The run folder (`--run-dir`): one run per folder, its settings in `config.json`.

A new run refuses a folder that already holds one, unless told to replace it (then only the
files a run writes are removed, never the user's own, and never from a folder holding no run); a
resumed run must keep the settings that shape its results, so its losses continue exactly where
they stopped. The file names live in the data layer, which skips run folders when it lists images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from manurestore.atomic import atomic_write_text
from manurestore.data.folders import RUN_CONFIG_FILE, RUN_METRICS_FILE, RUN_STATE_FILE
from manurestore.errors import ManurestoreError, UsageError
from manurestore.training.config import TrainConfig, settings_problem
from manurestore.validation import finite_json

# Everything a run writes, named once, so --overwrite removes exactly these.
CONFIG_FILE, METRICS_FILE, STATE_FILE = RUN_CONFIG_FILE, RUN_METRICS_FILE, RUN_STATE_FILE
BEST_WEIGHTS = "best.safetensors"
LAST_WEIGHTS = "last.safetensors"
SAMPLES_DIR = "samples"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, BEST_WEIGHTS, LAST_WEIGHTS, STATE_FILE, SAMPLES_DIR)
SAMPLE_PANEL = re.compile(r"epoch-\d{3,}\.png")  # the trainer's sample panel names
# Settings a resumed run may change; everything else must match the run being resumed.
RESUMABLE_CHANGES = {"epochs", "max_steps", "time_limit", "device", "workers", "log_every", "val_every", "run_dir", "cache_dir", "memory_budget_mb", "compile", "checkpoint_every", "weights_dtype", "crops_on_device"}


def prepare_run_dir(cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """`check_run_dir`, then make the folder; with --overwrite first remove the old run's files."""
    check_run_dir(cfg, resume, overwrite)
    if overwrite and not resume and holds_run_config(cfg.run_dir):
        remove_run_files(cfg.run_dir)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)


def check_run_dir(cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder, to resume what cannot be, or to --overwrite a folder
    that holds no run (only a run's own files may be removed); changes nothing."""
    run_dir = cfg.run_dir
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--run-dir {run_dir}: is a file, not a folder; choose another --run-dir")
    # A run writes its config.json first: without one of ours, a state.pt there is not a run's.
    ours = holds_run_config(run_dir)
    has_state = ours and (run_dir / STATE_FILE).is_file()
    unsaved = ours and not has_state  # started, stopped before its first save
    if resume:
        if unsaved:
            raise UsageError(f"{run_dir}: holds a run stopped before its first save (no {STATE_FILE}), so nothing "
                             "can be resumed; start it again with --overwrite instead of --resume")
        if not has_state:
            raise UsageError(f"{run_dir}: holds no run to resume (no {STATE_FILE} and {CONFIG_FILE} of a run); "
                             "drop --resume to start a new run there")
        return
    if overwrite:
        if not (has_state or unsaved) and run_dir.exists() and any(run_dir.iterdir()):
            raise UsageError(f"{run_dir}: is not a run folder (no {CONFIG_FILE} or {STATE_FILE} of a run), so "
                             "--overwrite will not touch it; choose a new or empty --run-dir")
    elif has_state:
        raise UsageError(f"{run_dir}: already holds a run; pass --resume to continue it, --overwrite to replace it, "
                         "or choose another --run-dir")
    elif unsaved:
        raise UsageError(f"{run_dir}: holds a run stopped before its first save (nothing to resume); pass "
                         "--overwrite to start it again, or choose another --run-dir")
    else:
        clashes = [name for name in RUN_FILES if (run_dir / name).exists()]
        if clashes:
            raise UsageError(f"{run_dir}: holds no run but has {', '.join(clashes)}, which a run would replace; "
                             "choose another --run-dir")


def holds_run_config(run_dir: Path) -> bool:
    """Whether `run_dir/config.json` is a run's settings (not a file of the user's with that name)."""
    try:
        saved = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and {"model", "crop", "preset", "run_dir"} <= saved.keys()


def remove_run_files(run_dir: Path) -> None:
    """Delete what a run writes in `run_dir` (one whose config.json is a run's) and nothing else:
    its named files and its sample panels (`samples/epoch-NNN.png`), `samples/` itself only once it
    is empty; a folder under one of those names, or a linked `samples/`, is left alone."""
    for name in (CONFIG_FILE, METRICS_FILE, BEST_WEIGHTS, LAST_WEIGHTS, STATE_FILE):
        target = run_dir / name
        if target.is_symlink() or target.is_file():
            target.unlink()
    samples = run_dir / SAMPLES_DIR
    if samples.is_dir() and not samples.is_symlink():
        for panel in samples.iterdir():
            if SAMPLE_PANEL.fullmatch(panel.name) and panel.is_file():
                panel.unlink()
        if not any(samples.iterdir()):
            samples.rmdir()


def write_run_config(cfg: TrainConfig) -> None:
    """Record the run's settings, so `--resume` can restore them and check what changed."""
    atomic_write_text(cfg.run_dir / CONFIG_FILE, cfg.model_dump_json(indent=2))


def read_run_config(run_dir: Path) -> dict | None:
    """The settings a run in `run_dir` was started with, or None where it recorded none.

    They must still be valid settings (they are resumed as they are), so a damaged or edited
    config.json is one line naming it.
    """
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    fix = f"restore the run's own {CONFIG_FILE}, or start a new --run-dir"
    try:
        saved = finite_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ManurestoreError(f"{path}: not a readable run config ({str(error)[:80]}); {fix}") from None
    if not isinstance(saved, dict):
        raise ManurestoreError(f"{path}: not a run config (a JSON object of settings); {fix}")
    try:
        TrainConfig(**saved)
    except ValidationError as error:
        raise ManurestoreError(f"{path}: {settings_problem(error)}; {fix}") from None
    return saved


def check_resume_config(saved: dict | None, cfg: TrainConfig) -> None:
    """Refuse to resume with settings that would make the continued run differ from the first part."""
    if saved is None:
        raise UsageError(f"{cfg.run_dir}: no {CONFIG_FILE}, so the run's settings are unknown; start a new --run-dir")
    current = json.loads(cfg.model_dump_json())
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current[k]!r}" for k in changed[:4])
        raise UsageError(f"--resume with different settings ({details}); resume with the run's own settings or start a new --run-dir")
