"""`manurestore restore`: full-resolution restoration of files and folders."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Optional

import typer

from manurestore.cli.common import err_console, print_error, reports_errors, threads_option
from manurestore.cli.progress import file_progress
from manurestore.errors import UsageError


@reports_errors
def command(
    inputs: List[Path] = typer.Argument(..., help="Image files or folders (recursive).", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input) or folder. Default: IN.restored.jpg beside a file, FOLDER.restored/ beside a folder."),
    model: Optional[Path] = typer.Option(None, "-m", "--model", help="A .safetensors file (or run folder) from `manurestore train`. Default: the bundled model."),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="Tile size in pixels. Default: the model's training crop."),
    overlap: Optional[int] = typer.Option(None, "--overlap", help="Tile overlap in pixels, at least (and by default) 1/8 of a tile."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Tiles restored together."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on GPUs that support it and on CPUs with bf16 arithmetic: AMX or AVX-512 BF16; else fp32), fp32, bf16, fp16."),
    colour: str = typer.Option(
        "correct", "--colour", "--color",
        help="correct: remove discolouration the model's page view is confident about (yellowing, fading, uneven light); "
        "keep: leave the page's colour exactly as scanned and repair local damage only (for conservation records).",
    ),
    local_scale: Optional[float] = typer.Option(
        None, "--local-scale", metavar="PX",
        help="The coarsest scale, in pixels, at which the tiles may change the page; coarser changes (colour, shading) are "
        "left to the page-context branch, which sees the whole page. Default: 8 for a model with that branch, else no "
        "limit. 0: no limit (tiles also remove large stains, and may repaint material they mistake for one).",
    ),
    min_change: Optional[float] = typer.Option(
        None, "--min-change", metavar="LEVELS",
        help="The smallest change, in levels of 255 over a pixel's three channels, that the tiles may make; a larger "
        "change is made that much smaller. Small changes are mostly the model's own error (redrawn grain, sharpened "
        "soft scans), so a clean page comes back nearly unchanged. Default: 3 for a model with a page-context branch, "
        "else 0 (every change).",
    ),
    fmt: Optional[str] = typer.Option(None, "--format", help="Output format for every file (png, jpg, tif, webp, bmp). Default: the input's."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: process only shard K of N of the inputs (split by file, stable across machines). Default: the shard torchrun (RANK/WORLD_SIZE) or a SLURM job array gives this process, else all."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Restore again over existing outputs (default: skip them, so an interrupted job resumes)."),
    threads: str = threads_option(),
) -> None:
    """Restore degraded manuscript scans at full resolution.

    Examples: manurestore restore folio.jpg  (writes folio.restored.jpg);
    manurestore restore scans/ -o restored/ -m runs/latest/best.safetensors --shard 1/4
    """
    from manurestore.data.io import check_environment
    from manurestore.data.jobs import launcher_shard, parse_shard, plan_job, prepare_output_folders, select_shard
    from manurestore.devices import resolve_device, resolve_precision
    from manurestore.inference.files import restore_files
    from manurestore.inference.restorer import load_restorer

    check_environment()
    shard_spec = parse_shard(shard) if shard is not None else launcher_shard()
    local_rank = int(os.environ["LOCAL_RANK"]) if shard is None and os.environ.get("LOCAL_RANK", "").isdigit() else None
    torch_device = resolve_device(device, local_rank)
    resolve_precision(precision, torch_device)  # a bad value is a usage error before any work
    plan = plan_job(inputs, output, "restored", fmt)
    tasks = select_shard(plan.tasks, shard_spec)
    if not plan.tasks:
        raise UsageError(f"no images found in {', '.join(map(str, inputs))}")
    loaded = load_restorer(model, torch_device, tile=tile, overlap=overlap, batch_size=batch_size, precision=precision,
                           colour=colour, local_scale=local_scale, min_change=min_change)
    restorer, model_path = loaded.restorer, loaded.path
    prepare_output_folders(plan, tasks)

    started = time.perf_counter()
    totals = {"pages": 0, "mp": 0.0}
    with file_progress(show=len(tasks) > 1) as progress:
        bar = progress.add_task("restore", total=len(tasks), rate="")

        def advance(_task, megapixels):
            totals["pages"] += 1
            totals["mp"] += megapixels
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.update(bar, advance=1, rate=f"{totals['pages'] / elapsed:.2f} pages/s  {totals['mp'] / elapsed:.2f} MP/s")

        result = restore_files(tasks, restorer, overwrite=overwrite, quality=quality, on_done=advance)
    for failure in result.failures:
        print_error(failure.message)
    if result.failures and not (result.written or result.skipped_existing):
        raise typer.Exit(1)  # every page failed: the error lines say it all, a line of zeros adds nothing
    elapsed = time.perf_counter() - started
    parts = [f"restored {len(result.written)} page(s) ({result.megapixels:.1f} MP) with {model_path.name} in {elapsed:.1f} s"]
    if result.megapixels:
        parts.append(f"{elapsed / result.megapixels:.2f} s/MP")
    if result.skipped_existing:
        parts.append(f"{len(result.skipped_existing)} existing output(s) skipped (--overwrite to redo)")
    if shard_spec:
        origin = "" if shard is not None else " from the launcher"
        parts.append(f"shard {shard_spec[0]}/{shard_spec[1]}{origin} on {torch_device}: {len(tasks)} of {len(plan.tasks)} inputs")
    if result.failures:
        parts.append(f"{len(result.failures)} failed")
    err_console.print("; ".join(parts), markup=False, highlight=False)
    if result.failures:
        raise typer.Exit(1)
