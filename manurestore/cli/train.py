"""`manurestore train`: flags and config files → TrainConfig → the trainer, with rich progress."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from manurestore.cli.common import err_console, out_console, print_warning, reports_errors, threads_option
from manurestore.training.config import TrainConfig

FIELDS = TrainConfig.model_fields


def _default(name: str) -> str | None:
    """TrainConfig's default as the help shows it: on/off for switches; None where there is none to show."""
    field = FIELDS[name]
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None or value == []:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _opt(name: str, *flags: str, help: str = "", **kwargs):
    """A flag whose default lives in TrainConfig (None here means 'not given'); its help ends with
    that default unless the help already says what happens without it."""
    text = help or FIELDS[name].description or ""
    default = _default(name)
    if default is not None and "default" not in text.lower():
        text = f"{text} [default: {default}]".strip()
    return typer.Option(None, *flags, help=text, show_default=False, **kwargs)


@reports_errors
def command(
    data: Optional[List[Path]] = typer.Argument(
        None, show_default=False,
        help="Training images: DATA/train + DATA/val, one folder (split), or DATA/degraded + DATA/clean with --pairs. "
        "Several folders (your scans, `synth` pages) are mixed: see --mix.",
    ),
    mix: Optional[List[float]] = _opt("mix", "--mix", help="Sampling weight of each DATA folder, once per folder in order (e.g. --mix 1 --mix 1: half each). Default: every page equally often."),
    exclude: Optional[List[str]] = _opt("exclude", "--exclude", help="Leave out images whose path inside a DATA folder starts with this folder or matches this glob (repeatable), e.g. a collection kept for evaluation."),
    page_context: Optional[bool] = _opt("page_context", "--page-context/--no-page-context", help="Train the page-context branch that decides colour and illumination once per page (default: on, except with --pairs or --resize)."),
    model: Optional[str] = _opt("model", "--model", "-m", help="Model size: vit-tiny, vit-small, vit-base."),
    epochs: Optional[int] = _opt("epochs", "--epochs"),
    batch_size: Optional[int] = _opt("batch_size", "--batch-size", "-b"),
    crop: Optional[int] = _opt("crop", "--crop"),
    crops_per_image: Optional[int] = _opt("crops_per_image", "--crops-per-image"),
    augment: Optional[bool] = _opt("augment", "--augment/--no-augment"),
    resize: Optional[bool] = _opt("resize", "--resize", help="Squash whole pages to crop×crop like the original recipe (comparison only)."),
    lr: Optional[float] = _opt("lr", "--lr"),
    page_lr_scale: Optional[float] = _opt("page_lr_scale", "--page-lr-scale", help="The page-context branch learns at this many times --lr."),
    tiles: Optional[bool] = _opt("tiles", "--tiles/--no-tiles", help="Train the tiles too (--no-tiles: only the page-context branch learns, minutes on a CPU)."),
    weight_decay: Optional[float] = _opt("weight_decay", "--weight-decay"),
    warmup: Optional[float] = _opt("warmup", "--warmup"),
    l1_weight: Optional[float] = _opt("l1_weight", "--l1-weight", help="Weight of the L1 loss."),
    perceptual_weight: Optional[float] = _opt("perceptual_weight", "--perceptual-weight", help="Weight of the VGG16 perceptual loss."),
    ssim_weight: Optional[float] = _opt("ssim_weight", "--ssim-weight", help="Weight of (1 − SSIM)."),
    vgg_weights: Optional[Path] = _opt("vgg_weights", "--vgg-weights", help="torchvision-format vgg16-397923af.pth (else $TORCH_HOME/hub/checkpoints/)."),
    init_weights: Optional[Path] = _opt("init_weights", "--init-weights", help="Fine-tune: start from a .safetensors file instead of a fresh model; 'bundled' is the pretrained model shipped with manurestore (a vit-small: pass --model vit-small)."),
    preset: Optional[str] = _opt("preset", "--preset", "-p"),
    val: Optional[Path] = _opt("val", "--val"),
    val_fraction: Optional[float] = _opt("val_fraction", "--val-fraction"),
    val_every: Optional[int] = _opt("val_every", "--val-every"),
    pairs: Optional[bool] = _opt("pairs", "--pairs", help="Train on real pairs DATA/degraded + DATA/clean."),
    seed: Optional[int] = _opt("seed", "--seed"),
    device: Optional[str] = _opt("device", "--device"),
    precision: Optional[str] = _opt("precision", "--precision", help="auto, fp32, bf16 or fp16."),
    compile: Optional[bool] = _opt("compile", "--compile", help="torch.compile the model."),
    weights_dtype: Optional[str] = _opt("weights_dtype", "--weights-dtype", help="fp32, fp16 or bf16: precision of the written weights files (fp16 halves them)."),
    ema: Optional[float] = _opt("ema", "--ema"),
    workers: Optional[int] = _opt("workers", "--workers"),
    crops_on_device: Optional[bool] = _opt("crops_on_device", "--crops-on-device/--crops-on-host", help="Cut the training crops on the device from pages copied there once (default: on for CUDA when the pages fit in half its free memory); the crops are the same either way."),
    run_dir: Optional[Path] = _opt("run_dir", "--run-dir", "-o"),
    max_steps: Optional[int] = _opt("max_steps", "--max-steps"),
    time_limit: Optional[float] = _opt("time_limit", "--time-limit", help="Stop after this many seconds, saving everything."),
    log_every: Optional[int] = _opt("log_every", "--log-every"),
    checkpoint_every: Optional[float] = _opt("checkpoint_every", "--checkpoint-every"),
    cache_dir: Optional[Path] = _opt("cache_dir", "--cache-dir", help="Decoded-page cache (default ~/.cache/manurestore/pages)."),
    memory_budget_mb: Optional[int] = _opt("memory_budget_mb", "--memory-budget-mb"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of settings (keys as the flags, with _); flags override it."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir from its state.pt."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --run-dir."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the models' sizes and the resolved settings, then stop."),
    threads: str = threads_option(),
) -> None:
    """Train a restoration model on clean images degraded on the fly on the device.

    Defaults are the original recipe (vit-base, 256² inputs, batch 16, L1 + 0.1·perceptual + 0.1·SSIM,
    AdamW 1e-4, cosine, clip 1.0, 100 epochs) on native-resolution crops.
    Example: manurestore train data/raw --model vit-tiny --epochs 5 --run-dir runs/tiny
    """
    from manurestore.devices import resolve_device
    from manurestore.training.config import build_config, load_config_file
    from manurestore.training.data import build_train_data
    from manurestore.training.distributed import barrier, init_distributed, shutdown
    from manurestore.training.run_folder import STATE_FILE, check_resume_config, check_run_dir, prepare_run_dir, read_run_config, write_run_config
    from manurestore.training.state import load_state
    from manurestore.training.stopping import stop_on_signals
    from manurestore.training.trainer import Trainer

    from manurestore.data.io import check_environment

    # An option not given is None (an empty list for the repeatable ones): the config file or the default decides.
    flags = {k: (None if v == [] else v) for k, v in locals().items() if k in FIELDS}
    check_environment()
    file_values = load_config_file(config) if config is not None else {}
    if resume:
        saved = read_run_config(flags.get("run_dir") or Path(file_values.get("run_dir", FIELDS["run_dir"].default)))
        if saved is not None:
            file_values = {**saved, **file_values}
    cfg = build_config(file_values, flags, source=str(config) if config else "flags")
    if dry_run:
        _print_dry_run(cfg)
        return

    dist_info, torch_device = init_distributed(resolve_device(cfg.device))
    try:
        if dist_info.is_main:
            check_run_dir(cfg, resume, overwrite)
        data = build_train_data(cfg, torch_device, dist_info)
        for path, message in data.failures:
            if dist_info.is_main:
                print_warning(f"skipped: {message}")
        progress = _TrainProgress(enabled=dist_info.is_main)
        trainer = Trainer(cfg, data, torch_device, dist_info, on_event=progress.handle)
        if dist_info.is_main:  # only once data and settings are known good, so a mistake leaves no folder behind
            prepare_run_dir(cfg, resume, overwrite)
        barrier(dist_info)
        if resume:
            check_resume_config(read_run_config(cfg.run_dir), cfg)
            trainer.load_state_dict(load_state(cfg.run_dir / STATE_FILE), source=str(cfg.run_dir / STATE_FILE))
        elif dist_info.is_main:
            write_run_config(cfg)
        if dist_info.is_main:
            err_console.print(
                f"training {cfg.model} on {torch_device} ({dist_info.world_size} process(es)): {data.description}"
                + ("; crops cut on the device" if trainer.device_crops is not None else ""),
                markup=False, highlight=False,
            )
            if resume:
                err_console.print(_resumed_text(trainer), markup=False, highlight=False)
        with progress, stop_on_signals():
            summary = trainer.run()
        if dist_info.is_main:
            _print_summary(cfg, summary)
    finally:
        shutdown(dist_info)


class _TrainProgress:
    """Epoch and step bars with loss, validation PSNR, images/s and an ETA, fed by the trainer's events.

    The ETA is the measured mean step time (from the first step of this session) times the steps
    left; before any step it shows the estimate printed with the plan. Validation PSNR appears once
    a validation has run, never as `nan`.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TextColumn("{task.fields[eta]}"),
            console=err_console, disable=not enabled,
        )
        self.steps_per_epoch = 1
        self.total_steps = 0
        self.loss: float | None = None
        self.psnr: float | None = None
        self.rate = 0.0
        self._last_time = None
        self._first_step: tuple[int, float] | None = None  # (step, time) when this session's first step ended
        self._first_step_seconds: float | None = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def handle(self, kind: str, payload: dict) -> None:
        if not self.enabled:
            return
        if kind == "warning":
            print_warning(payload["message"])
        elif kind == "start":
            self._start(payload)
        elif kind == "plan":
            self._plan(payload)
        elif kind == "step":
            self._step(payload)
        elif kind == "validation":
            self.psnr = payload["psnr"]
            mark = " (best)" if payload["improved"] else ""
            self.progress.console.print(
                f"epoch {payload['epoch']}: val loss {payload['loss']:.4f}  PSNR {payload['psnr']:.2f} dB  SSIM {payload['ssim']:.4f}"
                + (f"  page views {payload['page_psnr']:.2f} dB" if "page_psnr" in payload else "") + mark,
                markup=False, highlight=False,
            )

    def _start(self, payload: dict) -> None:
        self.steps_per_epoch = payload["steps_per_epoch"]
        self.total_steps = total = payload["total_steps"]
        epochs = -(-total // self.steps_per_epoch)
        done = payload["resumed_at"]
        self.epoch_bar = self.progress.add_task("epochs", total=epochs, completed=done // self.steps_per_epoch, info="", eta="")
        self.step_bar = self.progress.add_task("steps", total=total, completed=done, info="", eta="")
        identity = payload.get("identity") or {}
        if identity:
            self.progress.console.print(
                f"identity baseline on validation (degraded vs clean): PSNR {identity['psnr']:.2f} dB, SSIM {identity['ssim']:.4f}"
                + (f", page views {identity['page_psnr']:.2f} dB" if "page_psnr" in identity else "")
                + f"; precision {payload['precision']}",
                markup=False, highlight=False,
            )

    def _plan(self, payload: dict) -> None:
        from manurestore.training.cost import duration

        cost, steps = payload["cost"], payload["steps"]
        if cost is None:
            text = f"{steps} steps to go"
        else:
            text = (f"{steps} steps to go, about {cost.seconds_per_step:.2g} s each on this device "
                    f"(estimated from the model's FLOPs and a {cost.device_gflops:.0f} GFLOP/s measurement): "
                    f"about {duration(cost.seconds)}")
            self.progress.update(self.step_bar, eta=f"ETA ~{duration(cost.seconds)} (estimate)")
        if payload["time_limit"] is not None:
            text += f"; --time-limit stops it after {duration(payload['time_limit'])}"
        self.progress.console.print(text, markup=False, highlight=False)
        if payload["suggestion"]:
            print_warning(payload["suggestion"])

    def _step(self, payload: dict) -> None:
        now = time.perf_counter()
        if self._last_time is not None:
            instant = payload["images"] / max(now - self._last_time, 1e-9)
            self.rate = instant if self.rate == 0 else 0.9 * self.rate + 0.1 * instant
        self._last_time = now
        if self._first_step is None:
            self._first_step = (payload["step"], now)
            self._first_step_seconds = payload.get("seconds")
        if payload["loss"] is not None:  # given on the steps that log: reading it waits for the device
            self.loss = payload["loss"]
        info = f"loss {self.loss:.4f}" if self.loss is not None else ""
        if self.psnr is not None:
            info += f"  val PSNR {self.psnr:.2f}"
        if self.rate:
            info += f"  {self.rate:.1f} img/s"
        self.progress.update(self.step_bar, completed=payload["step"], info=info.strip(), eta=self._eta(payload["step"], now))
        self.progress.update(self.epoch_bar, completed=payload["step"] // self.steps_per_epoch)

    def _eta(self, step: int, now: float) -> str:
        """Steps left × the mean measured step time (validations included, as they recur)."""
        from manurestore.training.cost import duration

        first_step, first_time = self._first_step
        if step > first_step:
            per_step = (now - first_time) / (step - first_step)
        elif self._first_step_seconds is not None:
            per_step = self._first_step_seconds
        else:
            return ""
        return f"ETA {duration(per_step * (self.total_steps - step))}"


def _resumed_text(trainer) -> str:
    """Where a resumed run picks up: the step, the epoch and the best validation so far."""
    import math

    best = f"; best validation PSNR so far {trainer.best_psnr:.2f} dB" if math.isfinite(trainer.best_psnr) else ""
    epoch = trainer.step / trainer.steps_per_epoch
    return f"resumed {trainer.cfg.run_dir} at step {trainer.step} of {trainer.total_steps} (epoch {epoch:.2f}){best}"


def _print_summary(cfg: TrainConfig, summary: dict) -> None:
    table = Table(title=f"training {summary['stop_reason']}: {cfg.run_dir}", title_justify="left")
    table.add_column("")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    table.add_column("MSE", justify="right")
    identity, last = summary["identity"], summary["last"]
    if identity:
        table.add_row("degraded input (identity)", f"{identity['psnr']:.2f}", f"{identity['ssim']:.4f}", f"{identity['mse']:.5f}")
    if last:
        table.add_row("restored (last validation)", f"{last['psnr']:.2f}", f"{last['ssim']:.4f}", f"{last['mse']:.5f}")
    out_console.print(table)
    out_console.print(
        f"{summary['steps']} steps in {summary['seconds']:.1f} s; best validation PSNR {summary['best_psnr']:.2f} dB → {cfg.run_dir / 'best.safetensors'}",
        markup=False, highlight=False,
    )


def _print_dry_run(cfg: TrainConfig) -> None:
    from manurestore.models.registry import describe_models

    table = Table(title="models (at 256×256, one image)", title_justify="left")
    for column in ("model", "parameters", "GFLOPs", "dim", "depth", "heads", "patch"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for row in describe_models(256):
        table.add_row(row["name"], f"{row['params']:,}", f"{row['gflops']:.1f}", str(row["embed_dim"]), str(row["depth"]), str(row["heads"]), str(row["patch_size"]))
    out_console.print(table)
    out_console.print("resolved settings:", markup=False)
    out_console.print_json(cfg.model_dump_json())
