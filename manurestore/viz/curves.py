"""Training curves from a run folder's `metrics.jsonl`: loss, PSNR, SSIM and learning rate over steps.

`metrics.jsonl` holds one JSON object a line, written by the trainer:
`{"kind": "identity", "step": 0, "psnr", "ssim", "mse"}` (the degraded validation set scored as
it is), `{"kind": "train", "step", "epoch" (fractional), "total", "l1", "ssim" (the SSIM *loss*
term), "perceptual", "lr", ...}` every few steps, and `{"kind": "val", "step", "epoch", "loss",
"psnr", "ssim", "mse"}` after each validated epoch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from manurestore.errors import ManurestoreError, UsageError

FIGSIZE = (12.0, 8.0)  # inches
DPI = 100  # so the PNG is 1200 × 800 pixels
TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#d62728"
IDENTITY_COLOUR = "#555555"


class MetricsError(ManurestoreError):
    """A metrics.jsonl that holds nothing to plot."""


@dataclass
class RunLog:
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    identity: dict | None = None
    skipped: int = 0  # lines that were not JSON objects with a step

    def series(self, records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
        points = sorted((r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]))
        if not points:
            return np.zeros(0), np.zeros(0)
        steps, values = zip(*points)
        return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def metrics_path(run_dir: Path) -> Path:
    """RUN_DIR/metrics.jsonl (or the file itself), with a usage error when it is not there."""
    if not run_dir.exists():
        raise UsageError(f"{run_dir}: no such run folder")
    path = run_dir if run_dir.is_file() else run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give a run folder written by `manurestore train` (it logs metrics.jsonl from its first step)")
    return path


def read_run(path: Path) -> RunLog:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManurestoreError(f"{path}: cannot read ({error})") from None
    log = RunLog()
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            log.skipped += 1
            continue
        if not isinstance(record, dict) or not isinstance(record.get("step"), (int, float)):
            log.skipped += 1
            continue
        kind = record.get("kind")
        if kind == "train":
            log.train.append(record)
        elif kind == "val":
            log.val.append(record)
        elif kind == "identity":
            log.identity = record
        else:
            log.skipped += 1
    if not log.train and not log.val:
        what = "is empty" if not text.strip() else "has no train or val records"
        raise MetricsError(f"{path}: {what}; nothing to plot yet (the trainer logs its first line after --log-every steps)")
    return log


def steps_per_epoch(log: RunLog) -> float | None:
    """Steps in one epoch, from any record whose step and epoch are both positive."""
    for record in [*log.val, *log.train]:
        epoch = record.get("epoch")
        if isinstance(epoch, (int, float)) and epoch > 0 and record["step"] > 0:
            return record["step"] / epoch
    return None


def curves_figure(log: RunLog, title: str) -> np.ndarray:
    """The 2×2 figure as a uint8 H×W×3 array (1200 × 800)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=FIGSIZE, dpi=DPI, sharex=True)
    try:
        _loss(axes[0, 0], log)
        _metric(axes[0, 1], log, "psnr", "PSNR (dB), higher is better", "{:.2f} dB")
        _metric(axes[1, 0], log, "ssim", "SSIM, higher is better", "{:.3f}")
        _lr(axes[1, 1], log)
        last_step = max([r["step"] for r in log.train + log.val] or [1])
        spe = steps_per_epoch(log)
        for ax in axes.flat:
            ax.grid(True, alpha=0.3)
            ax.set_xlim(0, max(1, last_step) * 1.02)
            if spe:
                _epoch_markers(ax, spe, last_step)
        for ax in axes[1]:
            ax.set_xlabel("step")
        if spe:
            for ax in axes[0]:
                top = ax.secondary_xaxis("top", functions=(lambda s, k=spe: s / k, lambda e, k=spe: e * k))
                top.set_xlabel("epoch", fontsize=9)
                top.tick_params(labelsize=8)
        fig.suptitle(title, fontsize=13)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        fig.canvas.draw()
        buffer = np.asarray(fig.canvas.buffer_rgba())
        return np.ascontiguousarray(buffer[:, :, :3])
    finally:
        plt.close(fig)


def _epoch_markers(ax, spe: float, last_step: float) -> None:
    epochs = int(last_step // spe)
    if epochs > 60:  # too many lines would grey out the plot
        return
    for epoch in range(1, epochs + 1):
        ax.axvline(epoch * spe, color="#999999", linewidth=0.7, linestyle=":", zorder=0)


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#777777", fontsize=10, wrap=True)


def _plot(ax, steps, values, label, colour, *, few_points: bool = False, **style):
    if len(steps) == 0:
        return
    marker = "o" if few_points or len(steps) < 30 else None
    ax.plot(steps, values, label=label, color=colour, marker=marker, markersize=4 if marker else 0, **style)


def _loss(ax, log: RunLog) -> None:
    ax.set_title("loss, lower is better")
    steps, total = log.series(log.train, "total")
    _plot(ax, steps, total, "train (total)", TRAIN_COLOUR, linewidth=1.4)
    for key, style in (("l1", "--"), ("ssim", ":"), ("perceptual", "-.")):
        s, v = log.series(log.train, key)
        if len(v) and np.any(v != 0):
            name = "1 − SSIM" if key == "ssim" else key
            _plot(ax, s, v, f"train {name} term (unweighted)", TRAIN_COLOUR, linestyle=style, linewidth=0.9, alpha=0.6)
    steps, val = log.series(log.val, "loss")
    _plot(ax, steps, val, "validation", VAL_COLOUR, few_points=True, linewidth=1.6)
    if not len(total) and not len(val):
        _empty(ax, "no loss logged")
        return
    values = np.concatenate([total, val])
    if np.all(values > 0) and values.max() / values.min() > 20:
        ax.set_yscale("log")
    ax.legend(fontsize=8, loc="best")


def _metric(ax, log: RunLog, key: str, title: str, fmt: str) -> None:
    ax.set_title(title)
    steps, train = log.series(log.train, key) if key != "ssim" else (np.zeros(0), np.zeros(0))  # train "ssim" is a loss term
    _plot(ax, steps, train, "train", TRAIN_COLOUR, linewidth=1.2)
    steps, val = log.series(log.val, key)
    label = "validation (restored vs clean)"
    if len(val):
        best = int(np.argmax(val))
        label += f", best {fmt.format(val[best])} at step {int(steps[best])}"
    _plot(ax, steps, val, label, VAL_COLOUR, few_points=True, linewidth=1.6)
    if len(val):
        ax.plot([steps[best]], [val[best]], marker="*", markersize=13, color=VAL_COLOUR, linestyle="none", zorder=5)
    shown = len(train) + len(val)
    if log.identity is not None and isinstance(log.identity.get(key), (int, float)):
        baseline = float(log.identity[key])
        ax.axhline(baseline, color=IDENTITY_COLOUR, linestyle="--", linewidth=1.2,
                   label=f"identity baseline (degraded vs clean) {fmt.format(baseline)}")
        shown += 1
    ax.margins(y=0.12)
    if not len(val):
        _empty(ax, "no validation yet (logged at the end of each validated epoch)")
    if shown:
        ax.legend(fontsize=8, loc="best")


def _lr(ax, log: RunLog) -> None:
    ax.set_title("learning rate")
    steps, lr = log.series(log.train, "lr")
    if not len(lr):
        _empty(ax, "no learning rate logged")
        return
    _plot(ax, steps, lr, "learning rate", "#2ca02c", linewidth=1.4)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))


def render_curves(run_dir: Path) -> tuple[np.ndarray, RunLog, Path]:
    """(picture, log, metrics file) for a run folder."""
    path = metrics_path(run_dir)
    log = read_run(path)
    last = max(r["step"] for r in log.train + log.val)
    title = f"training curves: {path.parent.name or path.parent}   (up to step {int(last)}"
    if log.val:
        title += f", {len(log.val)} validation(s)"
    title += ")"
    return curves_figure(log, title), log, path

