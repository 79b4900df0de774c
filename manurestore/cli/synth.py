"""`manurestore synth`: clean synthetic manuscript pages, so training runs with no data of one's own."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from manurestore.cli.common import err_console, out_console, reports_errors
from manurestore.data.synth import DEFAULT_PAGES, DEFAULT_VAL_FRACTION, parse_size, synth_dataset


class Kind(str, Enum):
    mixed = "mixed"
    palm_leaf = "palm-leaf"
    paper = "paper"


@reports_errors
def command(
    out: Path = typer.Argument(
        ..., metavar="OUT", show_default=False,
        help="Folder for train/, val/ and manifest.json (created if missing).",
    ),
    pages: int = typer.Option(DEFAULT_PAGES, "--pages", "-n", metavar="N", help="How many pages to make."),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Seed; the same seed and options give the same pages."),
    kind: Kind = typer.Option(
        Kind.mixed, "--kind", case_sensitive=False,
        help="palm-leaf leaves, paper folios, or mixed (half of each).",
    ),
    size: Optional[str] = typer.Option(
        None, "--size", metavar="WxH", show_default=False,
        help="Every page this many pixels, e.g. 1024x512. Default: per kind, palm-leaf 1536 wide "
        "by 256-384 high, paper 1024 wide by 464-560 high.",
    ),
    val_fraction: float = typer.Option(
        DEFAULT_VAL_FRACTION, "--val-fraction", metavar="F", help="Share of the pages that go to val/."
    ),
    workers: int = typer.Option(
        1, "--workers", "-j", metavar="N", help="Render pages in N processes (same pages, faster).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="Write into a non-empty folder that is not an earlier synth output, replacing files of the same name.",
    ),
) -> None:
    """Make synthetic CLEAN Sanskrit manuscript pages (palm-leaf and paper) to train on."""
    page_size = parse_size(size) if size is not None else None
    started = time.perf_counter()
    progress = Progress(
        TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
        TimeRemainingColumn(), console=err_console, transient=True,
    )
    task = progress.add_task("synth", total=pages)

    def advance(done: int, total: int) -> None:
        # Started at the first page, so settings synth refuses print their one error line and nothing else.
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done)

    try:
        manifest = synth_dataset(
            out, pages=pages, seed=seed, kind=kind.value, size=page_size, val_fraction=val_fraction,
            overwrite=overwrite, workers=workers, progress=advance,
        )
    finally:
        if progress.live.is_started:  # a Progress never started still prints a newline when stopped
            progress.stop()
    elapsed = time.perf_counter() - started
    kinds = {}
    for page in manifest["pages"]:
        kinds[page["kind"]] = kinds.get(page["kind"], 0) + 1
    kind_text = ", ".join(f"{n} {name}" for name, n in sorted(kinds.items()))
    out_console.print(
        f"wrote {len(manifest['pages'])} pages to {out} ({manifest['counts']['train']} train, "
        f"{manifest['counts']['val']} val; {kind_text}) in {elapsed:.1f} s",
        markup=False, soft_wrap=True,
    )
