"""`manurestore degrade`: synthetic damage for image files and folders."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from manurestore.cli.common import err_console, print_error, reports_errors, threads_option
from manurestore.cli.progress import file_progress
from manurestore.errors import UsageError


@reports_errors
def command(
    inputs: List[Path] = typer.Argument(..., help="Image files or folders (folders are processed recursively).", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input file) or folder. Default: IN.PRESET.jpg beside a file, FOLDER.PRESET/ beside a folder."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Shipped preset name (light, aged, heavy) or a .toml file. Default: aged."),
    op: Optional[List[str]] = typer.Option(None, "--op", metavar="NAME", help="Apply this single op at its default range (repeatable, in order); instead of --preset."),
    seed: int = typer.Option(0, "--seed", help="One seed for everything; each image's randomness derives from it and the image's relative path."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images of one size degraded together; does not change the result."),
    params_out: Optional[Path] = typer.Option(None, "--params-out", help="Write the ops that fired and their drawn values, one JSON line per output."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Output format for every file (png, jpg, tif, webp, bmp). Default: the input's."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality of the outputs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that already exist (inputs are never replaced)."),
    threads: str = threads_option(),
) -> None:
    """Degrade manuscript images with a preset or single ops, reproducibly.

    Examples: manurestore degrade page.jpg --preset aged  (writes page.aged.jpg);
    manurestore degrade clean/ -o degraded/ --preset heavy --seed 3
    """
    from manurestore.data.io import check_environment, check_output
    from manurestore.data.jobs import existing_targets, plan_job, prepare_output_folders
    from manurestore.degradations.files import degrade_files, write_records
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.degradations.presets import preset_label
    from manurestore.devices import resolve_device

    check_environment()
    if preset and op:
        raise UsageError("give either --preset or --op, not both")
    if op:
        pipeline = Pipeline.from_ops(op)
        tag = "+".join(op)
    else:
        pipeline = Pipeline.from_preset(preset or "aged")
        tag = preset_label(preset or "aged")
    torch_device = resolve_device(device)
    plan = plan_job(inputs, output, tag, fmt)
    if not plan.tasks:
        raise UsageError(f"no images found in {', '.join(map(str, inputs))} ({plan.skipped_other} other files skipped)")
    clashes = existing_targets(plan)
    if clashes and not overwrite:
        raise UsageError(f"{clashes[0]}: already exists ({len(clashes)} output(s) in all); pass --overwrite to replace them")
    inputs_read = [task.source for task in plan.tasks] + ([Path(preset)] if preset and Path(preset).is_file() else [])
    if params_out is not None:
        check_output(params_out, inputs_read, overwrite)
        if any(params_out.resolve() == task.target.resolve() for task in plan.tasks):
            raise UsageError(f"--params-out {params_out}: is also one of the degraded images' outputs; choose another name")
    prepare_output_folders(plan, plan.tasks)

    started = time.perf_counter()
    with file_progress(show=len(plan.tasks) > 1) as progress:
        bar = progress.add_task("degrade", total=len(plan.tasks), rate="")

        def advance(_task):
            elapsed = time.perf_counter() - started
            done = progress.tasks[0].completed + 1
            progress.update(bar, advance=1, rate=f"{done / max(elapsed, 1e-9):.1f} img/s")

        result = degrade_files(
            plan.tasks, pipeline, seed=seed, device=torch_device, batch_size=batch_size,
            overwrite=overwrite, quality=quality, on_done=advance,
        )
    for failure in result.failures:
        print_error(failure.message)
    if result.failures and not (result.written or result.skipped_existing):
        raise typer.Exit(1)  # every image failed: the error lines say it all, and there is nothing to record
    if params_out is not None:
        write_records(params_out, result.records, seed, overwrite, protected=inputs_read)
    elapsed = time.perf_counter() - started
    skipped = plan.skipped_hidden + plan.skipped_other
    where = plan.output_dirs[0] if len(plan.output_dirs) == 1 else (result.written[0] if len(result.written) == 1 else "outputs")
    elsewhere = len(result.skipped_existing)  # none existed at the start: another process wrote them
    err_console.print(
        f"degraded {len(result.written)} image(s) with {pipeline.name} (seed {seed}) → {where} in {elapsed:.1f} s"
        + (f"; {elsewhere} output(s) written meanwhile by another process, kept as they are" if elsewhere else "")
        + (f"; {len(result.failures)} failed" if result.failures else "")
        + (f"; {skipped} non-image or hidden file(s) skipped" if skipped else ""),
        markup=False, highlight=False,
    )
    if result.failures:
        raise typer.Exit(1)
