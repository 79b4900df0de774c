"""The training loop: uint8 crops → device → degradation on the device → model → loss.

AdamW (fused where available), linear warm-up then cosine decay, gradient clipping, mixed
precision where the device supports it, a fixed degraded validation set, best checkpoint by
validation PSNR, resumable at any step with the same losses as an uninterrupted run.
The CLI shows progress through the `on_event` callback; nothing here prints.
"""

from __future__ import annotations

import copy
import json
import math
import time
from contextlib import nullcontext
from typing import Callable

import torch

from manurestore import __version__
from manurestore import metrics as metric_fns
from manurestore.atomic import atomic_write_text
from manurestore.batches import to_batch, to_images
from manurestore.data.io import write_image
from manurestore.devices import resolve_precision
from manurestore.errors import ManurestoreError, UsageError
from manurestore.models.checkpoint import CheckpointError, save_weights
from manurestore.models.page_context import correct_colour, page_view
from manurestore.training.config import TrainConfig
from manurestore.training.data import TrainData
from manurestore.training.device_crops import device_crops
from manurestore.training.distributed import DistInfo, any_true, barrier
from manurestore.training.cost import LONG_CPU_RUN_SECONDS
from manurestore.training.run_folder import BEST_WEIGHTS, LAST_WEIGHTS, METRICS_FILE, SAMPLES_DIR, STATE_FILE, remove_run_files
from manurestore.training.state import first_line, save_state
from manurestore.training.stopping import StopRequested

Event = Callable[[str, dict], None]


class TrainingInterrupted(ManurestoreError):
    """Ctrl-C or a stop signal: what was trained is saved; the message says how to go on."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class Trainer:
    """One run: the model, optimizer and schedule over `data`; `run()` trains until done, out of time or interrupted."""

    def __init__(self, cfg: TrainConfig, data: TrainData, device: torch.device, dist_info: DistInfo = DistInfo(), on_event: Event | None = None):
        from manurestore.training.losses import RestorationLoss

        self.cfg, self.data, self.device, self.dist = cfg, data, device, dist_info
        self.emit = on_event or (lambda kind, payload: None)
        self.dtype = resolve_precision(cfg.precision, device)
        self.weights_dtype = cfg.weights_dtype
        torch.manual_seed(cfg.seed)
        self.model = initial_model(cfg).to(device)
        if data.pipeline is None and not cfg.pairs:
            raise ValueError("synthetic training data needs the degradation pipeline that made its validation set")
        self.pipeline = data.pipeline
        if not cfg.tiles and (data.views is None or dist_info.enabled):
            raise UsageError("--no-tiles trains the page-context branch alone: it needs one with page views (not --pairs or "
                             "--resize) and one process (not torchrun)")
        warn = (lambda message: self.emit("warning", {"message": message})) if dist_info.is_main else (lambda message: None)
        self.loss_fn = RestorationLoss(cfg.l1_weight, cfg.perceptual_weight, cfg.ssim_weight, cfg.vgg_weights, warn=warn).to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False) if cfg.ema > 0 else None
        fused = device.type == "cuda"
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, cfg.page_lr_scale), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay, fused=fused)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.net = self.model
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.steps_per_epoch = len(data.train) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise UsageError(
                f"{data.train.total} training crops per epoch (across {dist_info.world_size} process(es)) is fewer than "
                f"--batch-size {cfg.batch_size}; lower --batch-size or raise --crops-per-image"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.warmup_steps = int(cfg.warmup * self.total_steps) if cfg.warmup < 1 else int(cfg.warmup)
        self.step = 0
        self.resumed_at = 0
        self.resumed = False
        self.best_psnr = -math.inf
        self.metrics_lines: list[str] = []
        self.identity: dict[str, float] | None = None
        self.last_val: dict[str, float] = {}
        # The best weights so far, on the host, until the next checkpoint writes them.
        self._best_pending: tuple[dict, dict] | None = None
        self._last_checkpoint = time.perf_counter()
        # Last, once the model is on the device: the pages get what memory is left over (see device_crops).
        self.device_crops = device_crops(cfg, data.train, data.views, device, warn)

    # ----- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "best_psnr": self.best_psnr if math.isfinite(self.best_psnr) else -1.0,
            "identity": self.identity or {},
            "torch_rng": torch.get_rng_state(),
            "manurestore_version": __version__,
        }

    def load_state_dict(self, state: dict, source: str = STATE_FILE) -> None:
        """Continue from a state checked by `state.load_state`; one that does not fit this run's
        model or optimizer is a CheckpointError naming `source`, not a traceback."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None and state["ema"]:
                self.ema.load_state_dict(state["ema"])
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{source}: does not fit this run's {self.cfg.model} and optimizer "
                                  f"({first_line(error)}); resume with the run's own settings or start a new --run-dir") from None
        self.step = int(state["step"])
        self.resumed_at = self.step
        self.resumed = True
        self.best_psnr = state["best_psnr"] if state["best_psnr"] >= 0 else -math.inf
        self.identity = state["identity"] or None
        self.metrics_lines = self._metrics_up_to(self.step)

    def _metrics_up_to(self, step: int) -> list[str]:
        """The log's lines up to the resumed step (what came after is redone); a damaged line is one error."""
        path = self.cfg.run_dir / METRICS_FILE
        if not path.exists():
            return []
        kept = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            try:
                record = json.loads(line)
                record_step = record.get("step", 0)
                if isinstance(record_step, bool) or not isinstance(record_step, (int, float)):
                    raise ValueError("its step is not a number")
            except (ValueError, AttributeError) as error:
                raise CheckpointError(f"{path}: line {number} is not a metrics record ({first_line(error)}); "
                                      "delete that line to resume") from None
            if record_step <= step:
                kept.append(line)
        return kept

    def save(self, reason: str) -> None:
        """Write state.pt, last.safetensors and any pending best weights."""
        self._last_checkpoint = time.perf_counter()
        if not self.dist.is_main:
            return
        if self._best_pending is not None:
            weights, metadata = self._best_pending
            save_weights(self.cfg.run_dir / BEST_WEIGHTS, self.eval_model, metadata, weights=weights, dtype=self.weights_dtype)
            self._best_pending = None
        save_state(self.cfg.run_dir / STATE_FILE, self.state_dict())
        save_weights(self.cfg.run_dir / LAST_WEIGHTS, self.eval_model, self._weights_metadata(reason), dtype=self.weights_dtype)

    def _checkpoint_due(self) -> bool:
        return time.perf_counter() - self._last_checkpoint >= self.cfg.checkpoint_every

    def _weights_metadata(self, reason: str) -> dict:
        return {
            "model_name": self.cfg.model,
            "train_crop": self.cfg.crop,
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "metrics": self.last_val,
            "identity_baseline": self.identity or {},
            "preset": None if self.cfg.pairs else self.cfg.preset,
            "saved_because": reason,
            "data": self.cfg.data_label,
        }

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema if self.ema is not None else self.model

    # ----- logging -----------------------------------------------------------------------------

    def log(self, record: dict) -> None:
        if not self.dist.is_main:
            return
        self.metrics_lines.append(json.dumps(record))
        atomic_write_text(self.cfg.run_dir / METRICS_FILE, "\n".join(self.metrics_lines) + "\n")

    # ----- one step ----------------------------------------------------------------------------

    def _autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def degrade(self, clean: torch.Tensor, seeds) -> torch.Tensor:
        with torch.no_grad():
            return self.pipeline(clean, torch.as_tensor(seeds, dtype=torch.int64))

    def train_step(self, batch) -> dict[str, torch.Tensor]:
        lr = lr_at(self.step, self.total_steps, self.cfg.lr, self.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        loss, parts = self._tile_and_page_loss(batch) if self.cfg.tiles else self._page_loss()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:  # one fused call, not a kernel launch per parameter
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - self.cfg.ema)
        self.step += 1
        return {**parts, "grad_norm": grad_norm.detach(), "lr": torch.tensor(lr)}

    def _tile_and_page_loss(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The tiles' loss on the crops, plus the page-context branch's on this step's page views."""
        if self.cfg.pairs:
            degraded_u8, clean_u8, _ = batch
            degraded = to_batch(degraded_u8, self.device)
            clean = to_batch(clean_u8, self.device)
        else:
            clean_u8, seeds = batch
            clean = to_batch(clean_u8, self.device)
            degraded = self.degrade(clean, seeds)
        views = self._page_view_batch() if self.data.views is not None else None
        with self._autocast():
            if views is None:
                restored = self.net(degraded)
            else:
                restored, field = self.net(degraded, page_view=views[0])
        loss, parts = self.loss_fn(restored, clean)
        if views is not None:
            page_l1 = page_view_error(field, *views)
            loss = loss + page_l1
            parts = {**parts, "total": loss.detach(), "page_l1": page_l1.detach()}
        return loss, parts

    def _page_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """--no-tiles: the page-context branch alone learns (the crops are not even degraded)."""
        views = self._page_view_batch()
        with self._autocast():
            field = self.model.page_context(views[0])
        page_l1 = page_view_error(field, *views)
        return page_l1, {"total": page_l1.detach(), "page_l1": page_l1.detach()}

    def _page_view_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(degraded, clean) whole-page views for this step, at the branch's view size."""
        views = self.data.views
        clean_u8, seeds = views.batch(self.step, self.cfg.batch_size, self.cfg.seed)
        clean = to_batch(clean_u8, self.device)
        with torch.no_grad():
            degraded = views.pipeline(clean, torch.tensor(seeds, dtype=torch.int64))
        side = self.model.page_context.view
        return page_view(degraded, side), page_view(clean, side)

    # ----- validation --------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        model = self.eval_model.eval()
        clean_all, degraded_all = self.data.val_clean, self.data.val_degraded
        totals = {"loss": 0.0, "ssim": 0.0, "mse": 0.0}
        restored_first = None
        for start in range(0, clean_all.shape[0], self.cfg.batch_size):
            clean = clean_all[start : start + self.cfg.batch_size]
            degraded = degraded_all[start : start + self.cfg.batch_size]
            with self._autocast():
                restored = model(degraded)
            restored = restored.float()
            loss, _ = self.loss_fn(restored, clean)
            restored = restored.clamp(0, 1)
            n = clean.shape[0]
            totals["loss"] += float(loss) * n
            totals["ssim"] += float(metric_fns.ssim(restored, clean).sum())
            totals["mse"] += float(metric_fns.mse(restored, clean).sum())
            if restored_first is None:
                restored_first = restored[:4]
        self.model.train()
        count = clean_all.shape[0]
        result = {key: value / count for key, value in totals.items()}
        result["psnr"] = metric_fns.set_psnr(result["mse"])
        if self.data.views is not None:
            result["page_psnr"] = self._validate_page_context(model)
        self._save_panel(restored_first)
        return result

    def _validate_page_context(self, model: torch.nn.Module) -> float:
        """PSNR of the validation page views after the branch's colour correction."""
        side = model.page_context.view
        degraded = page_view(self.data.views.val_degraded, side)
        clean = page_view(self.data.views.val_clean, side)
        corrected = correct_colour(degraded, model.page_context(degraded), (0, 0), (side, side)).clamp(0, 1)
        return metric_fns.set_psnr(float(metric_fns.mse(corrected, clean).mean()))

    @torch.no_grad()
    def identity_baseline(self) -> dict[str, float]:
        clean, degraded = self.data.val_clean, self.data.val_degraded
        mse = float(metric_fns.mse(degraded, clean).mean())
        baseline = {"psnr": metric_fns.set_psnr(mse), "ssim": float(metric_fns.ssim(degraded, clean).mean()), "mse": mse}
        if self.data.views is not None:
            side = self.model.page_context.view
            views = self.data.views
            view_mse = metric_fns.mse(page_view(views.val_degraded, side), page_view(views.val_clean, side))
            baseline["page_psnr"] = metric_fns.set_psnr(float(view_mse.mean()))
        return baseline

    def _save_panel(self, restored: torch.Tensor) -> None:
        """degraded | restored | clean for the first validation crops, one row each."""
        n = restored.shape[0]
        rows = torch.cat([self.data.val_degraded[:n], restored, self.data.val_clean[:n]], dim=3)
        panel = torch.cat(list(rows), dim=1)  # (C, n·H, 3·W)
        array = to_images(panel.unsqueeze(0).float())[0]
        epoch = max(1, math.ceil(self.step / self.steps_per_epoch))
        write_image(self.cfg.run_dir / SAMPLES_DIR / f"epoch-{epoch:03d}.png", array, overwrite=True)

    # ----- the loop ----------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        started = time.perf_counter()
        stop_reason = "finished"
        try:
            if self.identity is None and self.dist.is_main:
                self.identity = self.identity_baseline()
                self.log({"kind": "identity", "step": 0, **self.identity})
            self.emit("start", {"total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch, "resumed_at": self.step,
                                "identity": self.identity, "precision": str(self.dtype).removeprefix("torch.")})
            if self.dist.is_main:
                self.emit("plan", self.plan())
            self.model.train()
            while self.step < self.total_steps:
                epoch = self.step // self.steps_per_epoch
                first = (self.step % self.steps_per_epoch) * cfg.batch_size
                loader = self._loader(epoch, first)
                epoch_started = time.perf_counter()
                for batch in loader:
                    step_started = time.perf_counter()
                    parts = self.train_step(batch)
                    images = cfg.batch_size * self.dist.world_size
                    # Reading a loss waits for the device, so it happens only on the steps that log.
                    loss = None
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        record = {"kind": "train", "step": self.step, "epoch": self.step / self.steps_per_epoch,
                                  **{k: float(v) for k, v in parts.items()},
                                  "images_per_s": images / max(time.perf_counter() - step_started, 1e-9)}
                        self.log(record)
                        loss = record["total"]
                    self.emit("step", {"step": self.step, "loss": loss, "images": images, "epoch": epoch,
                                       "seconds": time.perf_counter() - step_started})
                    if self._out_of_time(started):
                        stop_reason = "time limit"
                        break
                    if self.step >= self.total_steps or self.step % self.steps_per_epoch == 0:
                        break
                epoch_done = self.step % self.steps_per_epoch == 0
                if epoch_done or self.step >= self.total_steps or stop_reason != "finished":
                    # A run stopped by its time limit is validated too, so it always leaves best weights.
                    self._end_of_epoch(epoch, time.perf_counter() - epoch_started, stopping=stop_reason != "finished")
                if stop_reason != "finished":
                    break
            self.save(stop_reason)  # inside the try: a stop signal during this save saves again, whole
        except KeyboardInterrupt as stop:
            self._stop(stop)
        barrier(self.dist)
        return {"steps": self.step, "stop_reason": stop_reason, "seconds": time.perf_counter() - started,
                "best_psnr": self.best_psnr, "last": self.last_val, "identity": self.identity or {}}

    def _out_of_time(self, started: float) -> bool:
        """Whether --time-limit has passed. Under torchrun the ranks agree through a collective, which
        waits for the device, so they ask only on the steps that log (the limit is coarse anyway)."""
        if self.cfg.time_limit is None or (self.dist.enabled and self.step % self.cfg.log_every != 0):
            return False
        return any_true(time.perf_counter() - started > self.cfg.time_limit, self.dist, self.device)

    def _stop(self, stop: KeyboardInterrupt) -> None:
        """Ctrl-C or a stop signal: save what was trained and say how to go on (never returns)."""
        cfg = self.cfg
        what = f"stopped by {stop.signal_name}" if isinstance(stop, StopRequested) else "interrupted"
        exit_code = stop.exit_code if isinstance(stop, StopRequested) else 130
        if self.step == self.resumed_at:
            # Nothing new was trained: writing a model and optimizer now would only cost time and disk.
            if not self.resumed and self.dist.is_main:
                remove_run_files(cfg.run_dir)
                raise TrainingInterrupted(f"{what} before the first step; nothing was trained or saved; "
                                          "the same command starts the run again", exit_code)
            raise TrainingInterrupted(f"{what} before a new step; {cfg.run_dir} still holds step {self.step}; "
                                      f"resume with: {self.resume_command()}", exit_code)
        barrier(self.dist)
        self.save("interrupted")
        raise TrainingInterrupted(f"{what} at step {self.step}; state saved in {cfg.run_dir}; resume with: "
                                  f"{self.resume_command()}", exit_code)

    def resume_command(self) -> str:
        return f"manurestore train {self.cfg.data_label} --run-dir {self.cfg.run_dir} --resume"

    def plan(self) -> dict:
        """What the steps left will cost on this device, estimated before the first (see `cost`)."""
        from manurestore.training.cost import estimate

        steps = self.total_steps - self.step
        perceptual = self.loss_fn.vgg is not None
        crop = self.cfg.crop
        plan = {"steps": steps, "cost": None, "time_limit": self.cfg.time_limit, "suggestion": None}
        if not self.cfg.tiles:  # only the small page-context branch learns: seconds per step at most
            return plan
        cost = estimate(self.model.config, crop, self.cfg.batch_size, perceptual, steps, self.device)
        plan["cost"] = cost
        if self.device.type == "cpu" and cost.seconds > LONG_CPU_RUN_SECONDS:
            plan["suggestion"] = self._faster_alternative(cost, perceptual)
        return plan

    def _faster_alternative(self, cost, perceptual: bool) -> str:
        """A smaller model and crop on this CPU, with what it would cost, or a GPU."""
        from manurestore.models.registry import build_model
        from manurestore.training.cost import duration, estimate

        crop = min(self.cfg.crop, 128)
        if self.cfg.model == "vit-tiny" and crop == self.cfg.crop:
            return "on a CPU this run takes hours: fewer --epochs or --max-steps would be shorter; a GPU (--device cuda) is far faster"
        with torch.device("meta"):
            tiny = build_model("vit-tiny", img_size=crop, page_context=self.cfg.uses_page_context).config
        small = estimate(tiny, crop, self.cfg.batch_size, perceptual, cost.steps, self.device, gflops=cost.device_gflops)
        flags = "--model vit-tiny" + (f" --crop {crop}" if crop != self.cfg.crop else "")
        return f"on a CPU this run takes hours: {flags} would take about {duration(small.seconds)} here; a GPU (--device cuda) is far faster"

    def _end_of_epoch(self, epoch: int, seconds: float, stopping: bool = False) -> None:
        cfg = self.cfg
        finished_epochs = math.ceil(self.step / self.steps_per_epoch)
        last = self.step >= self.total_steps or stopping
        if self.dist.is_main and (finished_epochs % cfg.val_every == 0 or last):
            result = self.validate()
            self.last_val = result
            self.log({"kind": "val", "step": self.step, "epoch": finished_epochs, **result, "seconds": seconds})
            # With --no-tiles only the page views change: the best weights are the best branch.
            score = result["psnr"] if cfg.tiles else result["page_psnr"]
            improved = score > self.best_psnr
            if improved:
                self.best_psnr = score
                weights = {name: value.detach().to("cpu", copy=True) for name, value in self.eval_model.state_dict().items()}
                self._best_pending = (weights, self._weights_metadata("best validation PSNR" if cfg.tiles else "best page-view PSNR"))
            self.emit("validation", {"epoch": finished_epochs, "improved": improved, **result})
        # Writing a large model every epoch would cost more than training it on a fast GPU.
        if any_true(self._checkpoint_due(), self.dist, self.device):
            self.save("end of epoch")
        barrier(self.dist)

    def _loader(self, epoch: int, first: int):
        """Epoch `epoch`'s batches from item `first` on: cut on the device, or on the host by a DataLoader."""
        dataset = self.data.train
        usable = self.steps_per_epoch * self.cfg.batch_size
        if self.device_crops is not None:
            return self.device_crops.batches(epoch, first, usable, self.cfg.batch_size)
        dataset.set_epoch(epoch)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=range(first, usable),
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )


def parameter_groups(model: torch.nn.Module, page_lr_scale: float) -> list[dict]:
    """The tiles' parameters, and the page-context branch's at `page_lr_scale` times the rate: a
    small fresh branch beside a fine-tuned ViT learns at the ViT's gentle rate far too slowly."""
    page = [p for name, p in model.named_parameters() if name.startswith("page_context.")]
    rest = [p for name, p in model.named_parameters() if not name.startswith("page_context.")]
    groups = [{"params": rest, "lr_scale": 1.0}]
    if page:
        groups.append({"params": page, "lr_scale": page_lr_scale})
    return groups


def page_view_error(field: torch.Tensor, degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """L1 between the clean page views and the degraded ones after the branch's correction."""
    side = degraded.shape[-1]
    return (correct_colour(degraded, field.float(), (0, 0), (side, side)) - clean).abs().mean()


def initial_model(cfg: TrainConfig) -> torch.nn.Module:
    """A fresh --model, or the one stored in --init-weights to fine-tune (it must be the size --model
    names); a page-context branch is added, fresh, to a model that has none."""
    from manurestore.models.checkpoint import load_model
    from manurestore.models.registry import build_model, build_model_from_config, model_config

    if cfg.init_weights is None:
        return build_model(cfg.model, img_size=cfg.crop, page_context=cfg.uses_page_context)
    model, metadata = load_model(cfg.init_weights)
    if metadata.get("model_name") != cfg.model:
        raise UsageError(f"{cfg.init_weights}: holds a {metadata.get('model_name')} model; pass --model {metadata.get('model_name')} to fine-tune it")
    if cfg.uses_page_context and model.page_context is None:
        grown = build_model_from_config({**model_config(model), "page_context": True})
        missing, _ = grown.load_state_dict(model.state_dict(), strict=False)
        if any(not name.startswith("page_context.") for name in missing):
            raise ManurestoreError(f"{cfg.init_weights}: its weights do not fit a {cfg.model} with a page-context branch")
        model = grown
    return model.train()
