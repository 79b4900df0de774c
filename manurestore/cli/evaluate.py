"""`manurestore evaluate`: restored vs degraded vs clean, with the identity baseline beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from manurestore.cli.common import err_console, out_console, print_error, reports_errors, threads_option
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
    paths: List[Path] = typer.Argument(None, metavar="[MODEL] [DATA]", help="MODEL DATA, or just DATA (with -m, or the bundled model). DATA holds clean images.", show_default=False),
    model: Optional[Path] = typer.Option(None, "-m", "--model", help="A .safetensors file from `manurestore train`."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Real pairs: a folder with degraded/ and clean/ matched by name (no synthetic degradation)."),
    preset: str = typer.Option("aged", "--preset", "-p", help="Degradation preset for clean DATA."),
    seed: int = typer.Option(0, "--seed", help="Same seed → same degraded set, every run, every device."),
    crop: Optional[int] = typer.Option(None, "--crop", min=8, help="Evaluate centre crops of N×N instead of full pages."),
    include: Optional[List[str]] = typer.Option(None, "--include", help="Only these images: a first-level folder (collection) or a glob over the path relative to DATA. Repeatable.", show_default=False),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Leave these out (same matching as --include). Repeatable.", show_default=False),
    per_degradation: bool = typer.Option(False, "--per-degradation", help="Also one row per op applied alone (built-ins and plugins)."),
    safety: bool = typer.Option(False, "--safety", help="Do no harm: also restore each CLEAN page and report its PSNR against itself and its mean-colour shift (ΔE, CIELAB). Restores every page twice."),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="Tile size. Default: the model's training crop."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Tiles restored together."),
    device: str = typer.Option("auto", "--device"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on GPUs that support it and on CPUs with bf16 arithmetic: AMX or AVX-512 BF16; else fp32), fp32, bf16, fp16."),
    colour: str = typer.Option("correct", "--colour", "--color", help="correct or keep: as `restore --colour`."),
    local_scale: Optional[float] = typer.Option(None, "--local-scale", metavar="PX", help="The tiles' reach in pixels: as `restore --local-scale`."),
    min_change: Optional[float] = typer.Option(None, "--min-change", metavar="LEVELS", help="The tiles' smallest change: as `restore --min-change`."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write everything (version, model, data, seed, preset, colour, rows, collections, safety) to this file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
    threads: str = threads_option(),
) -> None:
    """Measure a model: PSNR, SSIM and MSE of restored pages next to the degraded input's.

    Images in subfolders of DATA are also summed up per collection (the first folder).
    Examples: manurestore evaluate runs/latest/best.safetensors data/val --preset aged --seed 0;
    manurestore evaluate model.safetensors pages/ --include tamil-palmleaf --safety --json real.json;
    manurestore evaluate model.safetensors --pairs real/ --json report.json
    """
    from manurestore import __version__
    from manurestore.data.folders import find_images, find_pairs, select_images
    from manurestore.data.io import check_environment, check_output, write_text
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.devices import resolve_device, resolve_precision
    from manurestore.inference import evaluation
    from manurestore.inference.restorer import load_restorer

    check_environment()
    model_path, data = _split_positionals(list(paths or []), model, pairs)
    if data is None and pairs is None:
        raise UsageError("give the data to evaluate on: DATA (clean images) or --pairs DATA")
    include, exclude = list(include or []), list(exclude or [])
    torch_device = resolve_device(device)
    resolve_precision(precision, torch_device)  # a bad value is a usage error before any work
    # Everything about the data is checked before the weights are read.
    pipeline = None if pairs is not None else Pipeline.from_preset(preset)
    if pairs is not None:
        found_pairs = find_pairs(pairs)
        kept = set(select_images([d for d, _ in found_pairs], found_pairs.degraded_dir, include, exclude))
        selected_pairs = [pair for pair in found_pairs if pair[0] in kept]
        count = len(selected_pairs)
        data_label = f"{pairs} (real pairs)"
        inputs = [path for pair in found_pairs for path in pair]
    else:
        root = data
        inputs = find_images(root).paths
        found = select_images(inputs, root, include, exclude)
        sources = [(p, p.relative_to(root).as_posix() if root.is_dir() else p.name) for p in found]
        count = len(sources)
        data_label = str(root)
    inputs += [path for path in (model_path, Path(preset)) if path is not None and path.is_file()]
    if json_out is not None:
        check_output(json_out, inputs, overwrite)
    if count == 0:
        which = " with " + " ".join([f"--include {p}" for p in include] + [f"--exclude {p}" for p in exclude]) if include or exclude else ""
        raise UsageError(f"no images found in {pairs or data}{which}")
    loaded = load_restorer(model_path, torch_device, tile=tile, batch_size=batch_size, precision=precision, colour=colour,
                           local_scale=local_scale, min_change=min_change)
    restorer, metadata, model_path = loaded.restorer, loaded.metadata, loaded.path
    failures: list = []

    def make_set(p=pipeline, failed=failures):
        if pairs is not None:
            return evaluation.paired_set(selected_pairs, pairs, crop, failed)
        return evaluation.synthetic_set(sources, p, seed, torch_device, crop, failed)

    started = time.perf_counter()
    singles = evaluation.single_op_pipelines(pipeline) if per_degradation and pipeline is not None else []
    with file_progress(show=count > 1 or bool(singles)) as progress:
        # Every file advances the bar, a failed one too, so it always reaches its total.
        bar = progress.add_task("evaluate", total=count, rate="")
        result = evaluation.evaluate_images(make_set(), restorer, on_done=lambda row: progress.update(bar, advance=1),
                                            safety=safety, failures=failures)
        per_op_rows = []
        if singles:
            op_bar = progress.add_task("each op", total=count * len(singles), rate="")
            for single in singles:
                # A file that failed above fails again here: it is reported once, from the first pass.
                op_result = evaluation.evaluate_images(make_set(single, []), restorer, failures=[],
                                                       on_done=lambda row: progress.update(op_bar, advance=1))
                per_op_rows.append((single.name, op_result.rows))
    for _, message in failures:
        print_error(message)
    rows = result.rows
    if not rows:
        raise typer.Exit(1)
    grouped = evaluation.has_collections(row["image"] for row in rows)
    mean = evaluation.mean_row(rows)
    worst = evaluation.worst_case(rows)
    collections = _collections(rows, result.safety, evaluation) if grouped else None
    per_op = []
    for name, op_rows in per_op_rows:
        entry = {"op": name, **evaluation.mean_row(op_rows)}
        if grouped:
            entry["collections"] = {group: evaluation.mean_row(members) for group, members in evaluation.by_collection(op_rows).items()}
        per_op.append(entry)
    settings = f", preset {preset}, seed {seed}" if pipeline else ""
    _print_table(rows, mean, collections, evaluation,
                 f"{model_path.name} on {data_label}{settings}, colour {colour}, local scale {restorer.local_scale:g} px, "
                 f"min change {restorer.min_change * 255:g} levels")
    _print_worst(worst, collections)
    if safety:
        _print_safety(result.safety, evaluation.safety_summary(result.safety), collections, evaluation, colour)
    if per_op:
        _print_per_op(per_op, grouped)
    if json_out is not None:
        report = {
            "manurestore_version": __version__,
            "model": {"path": str(model_path), **metadata},
            "data": data_label,
            "paired": pairs is not None,
            "selection": {"include": include, "exclude": exclude, "pages": count},
            "seed": seed,
            "preset": None if pipeline is None else {"name": pipeline.name, "steps": pipeline.describe()},
            "colour": colour,
            "crop": crop,
            "tile": restorer.tile,
            "local_scale": restorer.local_scale,
            "min_change": round(restorer.min_change * 255, 6),  # levels of 255
            "device": str(torch_device),
            "metrics_definition": "RGB in [0, 1]; PSNR 10·log10(1/MSE) capped at 100 dB; SSIM Gaussian 11×11, σ 1.5, reflect borders",
            "mean": mean,
            "worst": worst,
            "collections": collections,
            "images": rows,
            "per_degradation": per_op,
            "safety": None if not safety else {
                "definition": SAFETY_DEFINITION,
                **evaluation.safety_summary(result.safety),
                "images": result.safety,
            },
            "failures": [message for _, message in failures],
            "seconds": time.perf_counter() - started,
        }
        write_text(json_out, json.dumps(report, indent=2), overwrite=overwrite, protected=[*inputs, model_path])
        err_console.print(f"wrote {json_out}", markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


SAFETY_DEFINITION = ("the clean page restored as if it were damaged, against the clean page (PSNR, SSIM, MSE as above); "
                     "delta_e: CIE76 ΔE*ab between the mean CIELAB colour (D65) of that output and of the clean page")


def _collections(rows: list[dict], safety_rows: list[dict], evaluation) -> dict:
    """Per collection: page count, mean, worst cases and (with --safety) the safety summary."""
    safety_groups = evaluation.by_collection(safety_rows)
    collections = {}
    for name, members in evaluation.by_collection(rows).items():
        entry = {"pages": len(members), "mean": evaluation.mean_row(members), "worst": evaluation.worst_case(members)}
        if safety_rows:
            entry["safety"] = evaluation.safety_summary(safety_groups.get(name, []))
        collections[name] = entry
    return collections


def _metric_cells(row: dict) -> list[str]:
    identity, restored, gain = row["identity"], row["restored"], row["gain"]
    return [f"{identity['psnr']:.2f}", f"{restored['psnr']:.2f}", f"{gain['psnr']:+.2f}",
            f"{identity['ssim']:.3f}", f"{restored['ssim']:.3f}", f"{gain['ssim']:+.3f}"]


def _metric_table(title: str, first: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first, no_wrap=True)
    for column in ("PSNR in", "PSNR out", "gain", "SSIM in", "SSIM out", "gain"):
        table.add_column(column, justify="right")
    return table


def _grouped_rows(table: Table, rows: list[dict], collections: Optional[dict], evaluation, cells) -> None:
    """Image rows, one section per collection (or one section), then per-collection means."""
    groups = [rows] if collections is None else list(evaluation.by_collection(rows).values())
    for members in groups:
        for index, row in enumerate(members):
            table.add_row(row["image"], *cells(row), end_section=index == len(members) - 1)


def _label(name: str) -> str:
    from manurestore.inference.evaluation import TOP_LEVEL

    return "(top level)" if name == TOP_LEVEL else name


def _collection_rows(table: Table, collections: Optional[dict], cells, mean_label: bool = True) -> None:
    """One row per collection ("mean NAME (pages)", or just NAME), the last closing a section."""
    names = list(collections or {})
    for name in names:
        label = f"mean {_label(name)} ({collections[name]['pages']})" if mean_label else _label(name)
        table.add_row(label, *cells(collections[name]), end_section=name == names[-1])


def _print_table(rows: list[dict], mean: dict, collections: Optional[dict], evaluation, title: str) -> None:
    table = _metric_table(title + "\nin = degraded vs clean, out = restored vs clean (MSE and sizes in --json)", "image")
    _grouped_rows(table, rows, collections, evaluation, _metric_cells)
    _collection_rows(table, collections, lambda entry: _metric_cells(entry["mean"]))
    table.add_row(f"[bold]mean ({len(rows)})[/bold]", *_metric_cells(mean))
    out_console.print(table)


def _worst_cells(worst: dict) -> list[str]:
    psnr = worst["worst_psnr_gain"]
    return [str(worst["pages"]), str(worst["worse_psnr"]), str(worst["worse_ssim"]), f"{psnr['gain']:+.2f}", psnr["image"]]


def _print_worst(worst: dict, collections: Optional[dict]) -> None:
    table = Table(title="made worse than the degraded input (gain < 0)", title_justify="left")
    table.add_column("", no_wrap=True)
    for column in ("pages", "worse PSNR", "worse SSIM", "worst PSNR gain"):
        table.add_column(column, justify="right")
    table.add_column("worst page", no_wrap=True)
    _collection_rows(table, collections, lambda entry: _worst_cells(entry["worst"]), mean_label=False)
    table.add_row("[bold]all[/bold]", *_worst_cells(worst))
    out_console.print(table)


def _safety_cells(row: dict) -> list[str]:
    return [f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", f"{row['delta_e']:.2f}"]


def _print_safety(rows: list[dict], summary: dict, collections: Optional[dict], evaluation, colour: str) -> None:
    threshold = summary["threshold_delta_e"]
    table = Table(title=f"do no harm: clean pages restored (colour {colour})", title_justify="left")
    table.add_column("image", no_wrap=True)
    for column in ("PSNR", "SSIM", "ΔE"):
        table.add_column(column, justify="right")
    _grouped_rows(table, rows, collections, evaluation, _safety_cells)
    _collection_rows(table, collections, lambda entry: _safety_cells(entry["safety"]["mean"]))
    table.add_row(f"[bold]mean ({summary['pages']})[/bold]", *_safety_cells(summary["mean"]))
    out_console.print(table)
    lowest, largest = summary["min_psnr"], summary["max_delta_e"]
    out_console.print(
        "PSNR, SSIM: restored clean page vs clean page; ΔE: CIE76 shift of its mean CIELAB colour\n"
        f"lowest PSNR {lowest['psnr']:.2f} dB ({lowest['image']}), largest ΔE {largest['delta_e']:.2f} ({largest['image']}), "
        f"{summary['over_threshold']} of {summary['pages']} pages over ΔE {threshold:g}",
        markup=False, soft_wrap=True)


def _print_per_op(per_op: list[dict], grouped: bool) -> None:
    note = " (per collection in --json)" if grouped else ""
    table = _metric_table(f"each op alone, always applied at the preset's range{note}", "op")
    for row in per_op:
        table.add_row(row["op"], *_metric_cells(row))
    out_console.print(table)
