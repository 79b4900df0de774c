"""`manurestore evaluate`: restored vs degraded vs clean, with the identity baseline beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from manurestore.cli.common import err_console, out_console, print_error, reports_errors
from manurestore.cli.progress import file_progress
from manurestore.errors import UsageError


def _split_positionals(paths: list[Path], model: Optional[Path], pairs: Optional[Path]) -> tuple[Optional[Path], Optional[Path]]:
    """`evaluate MODEL DATA`, `evaluate DATA -m MODEL`, `evaluate DATA` (bundled model), `evaluate MODEL --pairs DATA`."""
    if len(paths) > 2:
        raise UsageError("give at most two paths: MODEL DATA")
    if len(paths) == 2:
        if model is not None:
            raise UsageError("the model is given twice (as MODEL and with -m)")
        return paths[0], paths[1]
    if len(paths) == 1:
        only = paths[0]
        if only.suffix == ".safetensors" or (pairs is not None and model is None):
            return only, None
        return model, only
    return model, None


@reports_errors
def command(
    paths: List[Path] = typer.Argument(None, help="MODEL DATA, or just DATA (with -m, or the bundled model). DATA holds clean images.", show_default=False),
    model: Optional[Path] = typer.Option(None, "-m", "--model", help="A .safetensors file from `manurestore train`."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Real pairs: a folder with degraded/ and clean/ matched by name (no synthetic degradation)."),
    preset: str = typer.Option("aged", "--preset", "-p", help="Degradation preset for clean DATA."),
    seed: int = typer.Option(0, "--seed", help="Same seed → same degraded set, every run, every device."),
    crop: Optional[int] = typer.Option(None, "--crop", min=8, help="Evaluate centre crops of N×N instead of full pages."),
    per_degradation: bool = typer.Option(False, "--per-degradation", help="Also one row per op applied alone (built-ins and plugins)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="Tile size. Default: the model's training crop."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Tiles restored together."),
    device: str = typer.Option("auto", "--device"),
    precision: str = typer.Option("auto", "--precision"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write everything (version, model, data, seed, preset, rows) to this file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
) -> None:
    """Measure a model: PSNR, SSIM and MSE of restored pages next to the degraded input's.

    Examples: manurestore evaluate runs/latest/best.safetensors data/val --preset aged --seed 0;
    manurestore evaluate model.safetensors --pairs real/ --json report.json
    """
    from manurestore import __version__
    from manurestore.data.folders import find_images, find_pairs
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.devices import resolve_device, resolve_precision
    from manurestore.inference import evaluation
    from manurestore.inference.restorer import load_restorer

    model_path, data = _split_positionals(list(paths or []), model, pairs)
    if data is None and pairs is None:
        raise UsageError("give the data to evaluate on: DATA (clean images) or --pairs DATA")
    if json_out is not None and json_out.exists() and not overwrite:
        raise UsageError(f"{json_out}: already exists; pass --overwrite to replace it")
    torch_device = resolve_device(device)
    resolve_precision(precision, torch_device)  # a bad value is a usage error before any work
    loaded = load_restorer(model_path, torch_device, tile=tile, batch_size=batch_size, precision=precision)
    restorer, metadata, model_path = loaded.restorer, loaded.metadata, loaded.path
    failures: list = []
    pipeline = None if pairs is not None else Pipeline.from_preset(preset)
    if pairs is not None:
        found_pairs = list(find_pairs(pairs))
        count = len(found_pairs)
        make_set = lambda: evaluation.paired_set(found_pairs, pairs, crop, failures)  # noqa: E731
        data_label = f"{pairs} (real pairs)"
    else:
        root = data
        found = find_images(root)
        sources = [(p, p.relative_to(root).as_posix() if root.is_dir() else p.name) for p in found.paths]
        count = len(sources)
        make_set = lambda p=pipeline: evaluation.synthetic_set(sources, p, seed, torch_device, crop, failures)  # noqa: E731
        data_label = str(root)
    if count == 0:
        raise UsageError(f"no images found in {pairs or data}")

    started = time.perf_counter()
    with file_progress(show=count > 1) as progress:
        bar = progress.add_task("evaluate", total=count, rate="")
        rows = evaluation.evaluate_images(make_set(), restorer, on_done=lambda row: progress.update(bar, advance=1))
    per_op = []
    if per_degradation and pipeline is not None:
        for single in evaluation.single_op_pipelines(pipeline):
            op_rows = evaluation.evaluate_images(evaluation.synthetic_set(sources, single, seed, torch_device, crop, []), restorer)
            per_op.append({"op": single.name, **evaluation.mean_row(op_rows)})
    for path, message in failures:
        print_error(message)
    if not rows:
        raise typer.Exit(1)
    mean = evaluation.mean_row(rows)
    _print_table(rows, mean, f"{model_path.name} on {data_label}" + (f", preset {preset}, seed {seed}" if pipeline else ""))
    if per_op:
        _print_per_op(per_op)
    if json_out is not None:
        from manurestore.atomic import atomic_write_text

        report = {
            "manurestore_version": __version__,
            "model": {"path": str(model_path), **metadata},
            "data": data_label,
            "paired": pairs is not None,
            "seed": seed,
            "preset": None if pipeline is None else {"name": pipeline.name, "steps": pipeline.describe()},
            "crop": crop,
            "tile": restorer.tile,
            "device": str(torch_device),
            "metrics_definition": "RGB in [0, 1]; PSNR 10·log10(1/MSE) capped at 100 dB; SSIM Gaussian 11×11, σ 1.5, reflect borders",
            "mean": mean,
            "images": rows,
            "per_degradation": per_op,
            "failures": [message for _, message in failures],
            "seconds": time.perf_counter() - started,
        }
        atomic_write_text(json_out, json.dumps(report, indent=2))
        err_console.print(f"wrote {json_out}", markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


def _metric_cells(row: dict) -> list[str]:
    identity, restored, gain = row["identity"], row["restored"], row["gain"]
    return [f"{identity['psnr']:.2f}", f"{restored['psnr']:.2f}", f"{gain['psnr']:+.2f}",
            f"{identity['ssim']:.3f}", f"{restored['ssim']:.3f}", f"{gain['ssim']:+.3f}"]


def _metric_table(title: str, first: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first)
    for column in ("PSNR in", "PSNR out", "gain", "SSIM in", "SSIM out", "gain"):
        table.add_column(column, justify="right")
    return table


def _print_table(rows: list[dict], mean: dict, title: str) -> None:
    table = _metric_table(title + "\nin = degraded vs clean, out = restored vs clean (MSE and sizes in --json)", "image")
    for row in rows:
        table.add_row(row["image"], *_metric_cells(row))
    table.add_row("[bold]mean[/bold]", *_metric_cells(mean), end_section=True)
    out_console.print(table)


def _print_per_op(per_op: list[dict]) -> None:
    table = _metric_table("each op alone (always applied, at the preset's range)", "op")
    for row in per_op:
        table.add_row(row["op"], *_metric_cells(row))
    out_console.print(table)
