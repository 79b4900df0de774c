"""`manurestore visualize`: the pictures people would rather look at than read."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from manurestore.cli.common import ManurestoreCommand, ManurestoreGroup, err_console, print_error, reports_errors
from manurestore.errors import UsageError

app = typer.Typer(
    cls=ManurestoreGroup,
    help="Pictures of what manurestore does: the training flow, every degradation, training curves, an HTML before/after report.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FLOW_FILES = ("1_clean_original.jpg", "2_degraded_input.jpg", "3_restored_output.jpg", "training_flow_comparison.jpg")


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such {what}")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give an image file")


def _check_image_name(path: Path) -> None:
    from manurestore.data.io import IMAGE_SUFFIXES

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{path}: give an image file name ending in .png or .jpg (or {', '.join(IMAGE_SUFFIXES)})")


def _flow_inputs(image: Path, model: Optional[Path], preset: str) -> list[Path]:
    """What flow reads, so none of its pictures replaces one: the page, -m, a preset file."""
    return [image, *([model] if model is not None else []), *([Path(preset)] if Path(preset).is_file() else [])]


def _done(message: str) -> None:
    err_console.print(message, markup=False, highlight=False)


@app.command("flow", no_args_is_help=True, cls=ManurestoreCommand)
@reports_errors
def flow(
    image: Path = typer.Argument(..., help="A clean page (it is degraded here, then restored).", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", metavar="DIR", help="Folder for the four pictures (created if needed).", show_default=False),
    model: Optional[Path] = typer.Option(None, "-m", "--model", help="A .safetensors file (or run folder) from `manurestore train`. Default: the bundled model."),
    preset: str = typer.Option("aged", "--preset", "-p", help="Degradation preset name (light, aged, heavy) or a .toml file."),
    seed: int = typer.Option(0, "--seed", help="Same seed as `degrade --seed` → the same degraded page."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace pictures that already exist in DIR."),
) -> None:
    """Clean → degraded → restored, and the error left: four labelled panels with the ops that fired and PSNR/SSIM.

    Writes DIR/1_clean_original.jpg, 2_degraded_input.jpg, 3_restored_output.jpg (full resolution) and
    training_flow_comparison.jpg. Example: manurestore visualize flow page.png -m runs/latest/best.safetensors -o flow/
    """
    from manurestore.data.io import check_environment, check_output, page_memory, protected_paths, read_image, write_image
    from manurestore.degradations.pipeline import Pipeline
    from manurestore.degradations.presets import preset_label
    from manurestore.devices import resolve_device
    from manurestore.inference.restorer import load_restorer
    from manurestore.viz.flow import flow_figure, run_flow
    from manurestore.viz.panels import to_array

    check_environment()
    _require_file(image, "image file")
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: is a file; -o takes a folder for the four pictures")
    inputs = _flow_inputs(image, model, preset)
    targets = [output / name for name in FLOW_FILES]
    for target in targets:
        check_output(target, inputs, overwrite)
    pipeline = Pipeline.from_preset(preset)
    torch_device = resolve_device(device)
    loaded = load_restorer(model, torch_device)
    model_path = loaded.path
    with page_memory(image):
        clean = read_image(image, mode="RGB")
        result = run_flow(clean, pipeline, seed, image.name, loaded.restorer, torch_device)
        figure = flow_figure(result, preset=preset_label(preset), seed=seed, model=model_path.name)
    protected = protected_paths([*inputs, model_path])
    for target, array in zip(targets, (result.clean, result.degraded, result.restored, to_array(figure))):
        write_image(target, array, quality=95, overwrite=overwrite, protected=protected)
    dm, rm = result.degraded_metrics, result.restored_metrics
    _done(f"wrote {len(targets)} pictures to {output}: PSNR {dm['psnr']:.2f} → {rm['psnr']:.2f} dB, "
          f"SSIM {dm['ssim']:.3f} → {rm['ssim']:.3f} with {model_path.name}")


@app.command("presets", no_args_is_help=True, cls=ManurestoreCommand)
@reports_errors
def presets(
    image: Path = typer.Argument(..., help="A clean page to degrade every way.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="The gallery picture (.png or .jpg).", show_default=False),
    seed: int = typer.Option(0, "--seed", help="Same seed as `degrade --seed`."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the picture if it exists."),
) -> None:
    """A labelled grid of one page under each op alone (built-ins and plugins) and each preset.

    The picture to look at before choosing a preset. Example: manurestore visualize presets page.png -o gallery.png
    """
    from manurestore.data.io import check_environment, check_output, page_memory, protected_paths, read_image, write_image
    from manurestore.devices import resolve_device
    from manurestore.viz.gallery import presets_gallery
    from manurestore.viz.panels import to_array

    check_environment()
    _require_file(image, "image file")
    check_output(output, [image], overwrite)
    _check_image_name(output)
    torch_device = resolve_device(device)
    with page_memory(image):
        clean = read_image(image, mode="RGB")
        picture = to_array(presets_gallery(clean, image.name, seed, torch_device))
    write_image(output, picture, quality=92, overwrite=overwrite, protected=protected_paths([image]))
    _done(f"wrote {output} ({picture.shape[1]}×{picture.shape[0]})")


@app.command("curves", no_args_is_help=True, cls=ManurestoreCommand)
@reports_errors
def curves(
    run_dir: Path = typer.Argument(..., help="A run folder from `manurestore train` (or its metrics.jsonl).", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="The picture (.png or .jpg), 1200×800.", show_default=False),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the picture if it exists."),
) -> None:
    """Loss, PSNR, SSIM and learning rate over steps, train and validation, with the identity baseline.

    Example: manurestore visualize curves runs/latest -o curves.png
    """
    from manurestore.cli.common import print_warning
    from manurestore.data.io import check_output, protected_paths, write_image
    from manurestore.viz.curves import metrics_path, render_curves

    path = metrics_path(run_dir)
    inputs = [run_dir, path]
    check_output(output, inputs, overwrite)
    _check_image_name(output)
    picture, log, path = render_curves(path)
    if log.skipped:
        print_warning(f"{path}: {log.skipped} line(s) that are not metrics records were skipped")
    write_image(output, picture, quality=95, overwrite=overwrite, protected=protected_paths(inputs))
    _done(f"wrote {output}: {len(log.train)} train and {len(log.val)} validation record(s)")


@app.command("report", no_args_is_help=True, cls=ManurestoreCommand)
@reports_errors
def report(
    images: List[Path] = typer.Argument(None, help="Degraded scans (files or folders) to restore and show.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="The HTML file to write.", show_default=False),
    model: Optional[Path] = typer.Option(None, "-m", "--model", help="A .safetensors file (or run folder) from `manurestore train`. Default: the bundled model."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", metavar="DIR", help="A folder with degraded/ and clean/ matched by name: the degraded scans are restored and measured against the clean ones."),
    max_side: int = typer.Option(2000, "--max-side", min=64, help="Embed each picture at most this many pixels on its long side."),
    quality: int = typer.Option(90, "--quality", min=1, max=100, help="JPEG quality of the embedded pictures."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the HTML file if it exists."),
) -> None:
    """One self-contained HTML page (works offline) with a before/after slider, 1:1 zoom and metrics per scan.

    Examples: manurestore visualize report scans/ -m best.safetensors -o report.html;
    manurestore visualize report --pairs real/ -m best.safetensors -o report.html  (adds PSNR/SSIM)
    """
    import time

    from manurestore import __version__
    from manurestore.cli.progress import file_progress
    from manurestore.data.io import check_environment, check_output, protected_paths
    from manurestore.devices import resolve_device
    from manurestore.errors import ManurestoreError
    from manurestore.inference.restorer import load_restorer
    from manurestore.viz.report import ReportOptions, render_report, write_report

    check_environment()
    if not images and pairs is None:
        raise UsageError("give the scans to show: IMAGES (files or folders) and/or --pairs DIR")
    jobs = _report_jobs(images or [], pairs)
    inputs = [path for _, degraded, clean in jobs for path in (degraded, clean) if path is not None]
    inputs += [model] if model is not None else []
    check_output(output, inputs, overwrite)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{output}: give a file name ending in .html")

    torch_device = resolve_device(device)
    loaded = load_restorer(model, torch_device)
    restorer, model_path = loaded.restorer, loaded.path
    entries, failures = [], []
    started = time.perf_counter()
    with file_progress(show=len(jobs) > 1) as progress:
        bar = progress.add_task("report", total=len(jobs), rate="")
        for number, (name, degraded_path, clean_path) in enumerate(jobs, start=1):
            try:
                entries.append(_report_entry(number, name, degraded_path, clean_path, restorer, max_side, quality))
            except ManurestoreError as error:
                failures.append(str(error))
            progress.update(bar, advance=1)
    for message in failures:
        print_error(message)
    if not entries:
        raise typer.Exit(1)
    options = ReportOptions(model=f"{model_path.name} · manurestore {__version__}", max_side=max_side, quality=quality)
    text = render_report(entries, options, failures)
    write_report(output, text, overwrite=overwrite, protected=protected_paths([*inputs, model_path]))
    measured = [entry for entry in entries if entry.metrics is not None]
    summary = f"wrote {output} ({len(text) / 1e6:.1f} MB): {len(entries)} page(s)"
    if measured:
        gain = sum(entry.metrics["gain"]["psnr"] for entry in measured) / len(measured)
        summary += f", mean PSNR gain {gain:+.2f} dB over {len(measured)} with a clean target"
    _done(summary + f" in {time.perf_counter() - started:.1f} s")
    if failures:
        raise typer.Exit(1)


def _report_jobs(images: List[Path], pairs: Optional[Path]) -> list[tuple[str, Path, Optional[Path]]]:
    """(name, degraded, clean) for every scan the report shows: IMAGES, then the --pairs pairs."""
    from manurestore.data.folders import find_images, find_pairs

    jobs: list[tuple[str, Path, Optional[Path]]] = []
    for root in images:
        if not root.exists():
            raise UsageError(f"{root}: no such file or folder")
        found = find_images(root)
        jobs += [(p.relative_to(root).as_posix() if root.is_dir() else p.name, p, None) for p in found.paths]
    if pairs is not None:
        if not pairs.is_dir():
            raise UsageError(f"{pairs}: no such folder; --pairs needs a folder with degraded/ and clean/")
        found_pairs = find_pairs(pairs)
        jobs += [(d.relative_to(found_pairs.degraded_dir).as_posix(), d, c) for d, c in found_pairs]
    if not jobs:
        raise UsageError(f"no images found in {', '.join(str(p) for p in [*images, *([pairs] if pairs else [])])}")
    return jobs


def _report_entry(number: int, name: str, degraded_path: Path, clean_path: Optional[Path], restorer, max_side: int, quality: int):
    """One scan's section of the report; a page that does not fit in memory fails alone, in one line."""
    from manurestore.data.io import page_memory, read_image
    from manurestore.errors import ManurestoreError
    from manurestore.viz.report import build_page

    with page_memory(degraded_path):
        degraded = read_image(degraded_path, mode="RGB")
        clean = None if clean_path is None else read_image(clean_path, mode="RGB")
        if clean is not None and clean.shape != degraded.shape:
            raise ManurestoreError(f"{degraded_path}: size {degraded.shape[1]}×{degraded.shape[0]} differs from "
                                   f"{clean_path} ({clean.shape[1]}×{clean.shape[0]})")
        restored = restorer.restore(degraded)
        return build_page(number, name, degraded, restored, clean, max_side=max_side, quality=quality)
