#!/usr/bin/env python
"""Seconds per megapixel of full-page restoration through TiledRestorer, per model size; peak RSS of a big page.

    python benchmarks/restore_throughput.py                 # CPU (and CUDA when torch sees it), every model; big page
    python benchmarks/restore_throughput.py --quick         # a smoke run, no big page (~1 min on 2 busy cores)
    python benchmarks/restore_throughput.py --device cuda --json restore.json
    python benchmarks/restore_throughput.py --models vit-tiny --big            # only the CPU model, with the 6000×4000 page
    python benchmarks/restore_throughput.py --smoke         # vit-tiny on a 512×384 page, "big" page 768×512

The page is a synthetic paper folio, 2048×1536 (3.1 MP), restored with tiles of 256 px, the tiler's default
overlap (1/8 of the tile: 32 px) and batches of 8 tiles; fp32 on the CPU, bf16 on CUDA (--precision auto).
Models have fresh weights (the cost does not depend on them), built with img_size = the tile.

Every figure is the median of timed restorations of the whole page after a warm-up, except where a page would take
too long: there (always for vit-base on the CPU) the model is timed on a probe batch of real tiles and the page time
is extrapolated: (tiles on the page) × (seconds per tile) + the tiler's own cost on the page, which is measured with
an identity model (cutting tiles, uint8 → float, blending, normalising, rounding). Extrapolated rows say so.

--big restores one 6000×4000 page (the synthetic page upscaled) with the recommended CPU model in a fresh
process and reports its peak RSS (resource.getrusage), the RSS just before the restore and the rise.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch
from common import (Spread, base_parser, devices, finish, machine_info, mode, model_names, parse, print_header,
                    repeat_wall, start)

from manurestore.batches import to_batch
from manurestore.devices import resolve_precision
from manurestore.inference.tiling import TiledRestorer, mirror_pad, tile_starts
from manurestore.models.registry import build_model, count_flops, count_parameters

PAGE = (2048, 1536)  # (width, height) of the synthetic paper page
BIG = (6000, 4000)  # (width, height) of the big page, for peak RSS
SMOKE_BIG = (768, 512)  # --smoke: the same fresh process, on a small page
TILE = 256
BATCH = 8
CPU_MODEL = "vit-tiny"  # recommended for CPUs
CPU_TARGET_S_PER_MP = 1.0  # the CPU model on this 2-core CPU
CUDA_TARGET_S_PER_MP = 0.010  # vit-base on one H100
CUDA_TARGET_MODEL = "vit-base"


class Identity(torch.nn.Module):
    """A model that returns its input: what is left is the tiler's own work."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# --------------------------------------------------------------------------------------------
# Pages and tiles


@cache
def _rendered(seed: int) -> np.ndarray:
    """The 2048×1536 page, rendered once: the timed page and the big page both start from it."""
    from manurestore.data.synth import generate_page

    return generate_page(seed, "paper", PAGE)


def make_page(width: int, height: int, seed: int = 3) -> tuple[np.ndarray, str]:
    """A synthetic paper page, uint8 H×W×3: rendered at 2048×1536 and resized when another size is asked for."""
    from PIL import Image

    page = _rendered(seed)
    if (width, height) == PAGE:
        return page, f"synthetic paper page {PAGE[0]}×{PAGE[1]} (seed {seed})"
    resized = np.asarray(Image.fromarray(page).resize((width, height), Image.BICUBIC))
    return resized, f"synthetic paper page {PAGE[0]}×{PAGE[1]} (seed {seed}) resized (bicubic) to {width}×{height}"


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles TiledRestorer cuts from an H×W page (its padding and start rules)."""
    margin = overlap // 2
    padded_h = height + 2 * margin + max(0, tile - height - 2 * margin)
    padded_w = width + 2 * margin + max(0, tile - width - 2 * margin)
    stride = tile - overlap
    return len(tile_starts(padded_h, tile, stride)) * len(tile_starts(padded_w, tile, stride))


def probe_tiles(page: np.ndarray, tile: int, overlap: int, count: int) -> torch.Tensor:
    """`count` real tiles of the page, uint8 (N, tile, tile, 3), from the middle of the padded page."""
    margin = overlap // 2
    padded = mirror_pad(page, margin, margin, margin, margin)
    stride = tile - overlap
    ys, xs = tile_starts(padded.shape[0], tile, stride), tile_starts(padded.shape[1], tile, stride)
    positions = [(y, x) for y in ys for x in xs]
    middle = len(positions) // 2
    chosen = [positions[(middle + i) % len(positions)] for i in range(count)]
    return torch.from_numpy(np.stack([padded[y : y + tile, x : x + tile] for y, x in chosen]))


# --------------------------------------------------------------------------------------------
# Timing


def time_page(restorer: TiledRestorer, page: np.ndarray, device: torch.device, runs: int, warmup: int) -> Spread:
    def restore() -> None:
        out = restorer.restore(page)  # returns a host array: the work is done when it returns
        if out.shape != page.shape or out.dtype != np.uint8:
            raise SystemExit(f"restore returned {out.shape} {out.dtype} for a {page.shape} page")

    return repeat_wall(restore, device, runs, warmup)


def time_tiles(model: torch.nn.Module, tiles_u8: torch.Tensor, device: torch.device, dtype: torch.dtype,
               runs: int, warmup: int) -> Spread:
    """Seconds for the model on one batch of tiles, as TiledRestorer feeds it (inference mode, autocast)."""
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else None

    def once() -> None:
        with torch.inference_mode():
            batch = to_batch(tiles_u8, device)
            if autocast is not None:
                with autocast:
                    out = model(batch)
            else:
                out = model(batch)
            out.float().clamp_(0.0, 1.0)

    return repeat_wall(once, device, runs, warmup)


@dataclass
class Row:
    model: str
    device: str
    precision: str
    params: int
    gflops_per_tile: float
    page: str
    megapixels: float
    tiles: int
    seconds_per_page: float
    fastest: float
    slowest: float
    runs: int
    extrapolated: bool
    probe_tiles: int = 0
    seconds_per_tile: float | None = None  # the model alone, from the probe batch
    tiler_seconds: float | None = None  # identity model on the same page
    notes: list[str] = field(default_factory=list)

    @property
    def s_per_mp(self) -> float:
        return self.seconds_per_page / self.megapixels

    @property
    def mp_per_s(self) -> float:
        return self.megapixels / self.seconds_per_page

    def as_dict(self) -> dict:
        return {**asdict(self), "s_per_mp": self.s_per_mp, "ms_per_mp": 1e3 * self.s_per_mp, "mp_per_s": self.mp_per_s}


def bench_device(args, device: torch.device, page: np.ndarray, page_label: str, models: list[str], tiler: Spread,
                 overlap: int) -> list[Row]:
    dtype = resolve_precision(args.precision, device)
    precision = str(dtype).removeprefix("torch.")
    height, width = page.shape[:2]
    megapixels = height * width / 1e6
    tiles = tile_count(height, width, args.tile, overlap)
    rows = []
    for name in models:
        torch.manual_seed(0)
        model = build_model(name, img_size=args.tile).eval().to(device)
        gflops = count_flops(model.config, args.tile) / 1e9
        forced = device.type == "cpu" and name == "vit-base" and not args.no_extrapolate
        target_model = device.type == "cpu" and name == args.cpu_model  # the CPU target's model: always a real page
        probe = args.probe_tiles if forced else args.batch_size
        probe_runs, probe_warmup = (1, 1) if args.quick else (2, 1)
        per_batch = time_tiles(model, probe_tiles(page, args.tile, overlap, probe), device, dtype, probe_runs, probe_warmup)
        per_tile = per_batch.median / probe
        estimate = tiles * per_tile + tiler.median
        limit = args.max_page_s if args.max_page_s is not None else (10.0 if args.quick else 60.0)
        extrapolate = forced or (estimate > limit and not args.no_extrapolate and not target_model)
        if extrapolate:
            why = ("vit-base on the CPU" if forced else f"a page would take ~{estimate:.0f} s (over {limit:g} s)")
            row = Row(name, device.type, precision, count_parameters(model), gflops, page_label, megapixels, tiles,
                      estimate, tiles * per_batch.fastest / probe + tiler.fastest,
                      tiles * per_batch.slowest / probe + tiler.slowest, per_batch.count, True, probe, per_tile,
                      tiler.median, [f"extrapolated ({why}): {tiles} tiles × {per_tile:.3f} s/tile timed on a batch of "
                                     f"{probe} real tiles + {tiler.median:.2f} s of tiler work (identity model)"])
        else:
            restorer = TiledRestorer(model, tile=args.tile, overlap=overlap, batch_size=args.batch_size,
                                     device=device, dtype=dtype)
            runs = 2 if args.quick else 5
            if estimate * runs > 3 * limit:
                runs = max(1 if args.quick else 2, int(3 * limit // max(estimate, 1e-9)))
            warmup = 0 if (args.quick and device.type == "cpu") else 1  # the probe batch warmed the model up
            spread = time_page(restorer, page, device, runs, warmup)
            row = Row(name, device.type, precision, count_parameters(model), gflops, page_label, megapixels, tiles,
                      spread.median, spread.fastest, spread.slowest, spread.count, False, probe, per_tile, tiler.median)
        rows.append(row)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def tiler_alone(args, device: torch.device, page: np.ndarray, overlap: int) -> Spread:
    restorer = TiledRestorer(Identity(), tile=args.tile, overlap=overlap, batch_size=args.batch_size, device=device)
    out = restorer.restore(page)
    if not np.array_equal(out, page):  # the tiler's own promise: an identity model gives the page back
        print("warning: an identity model did not give back the exact page", file=sys.stderr)
    return time_page(restorer, page, device, 3 if args.quick else 7, 1)


# --------------------------------------------------------------------------------------------
# Peak RSS of a big page, in a fresh process


def _rss_mb() -> float:
    """The current resident set size (VmRSS), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def rss_child(args) -> int:
    """Run in a fresh process: restore the page in args.rss_child (.npy) and print one JSON line."""
    device = torch.device("cpu")
    dtype = resolve_precision(args.precision, device)
    model = build_model(args.cpu_model, img_size=args.tile).eval()
    restorer = TiledRestorer(model, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size, device=device, dtype=dtype)
    page = np.load(args.rss_child)
    restorer.restore(np.ascontiguousarray(page[: 2 * args.tile, : 2 * args.tile]))  # warm-up on a corner
    before, peak_before = _rss_mb(), _maxrss_mb()
    begin = time.perf_counter()
    out = restorer.restore(page)
    seconds = time.perf_counter() - begin
    after = _rss_mb()
    peak = _maxrss_mb()
    print(json.dumps({"model": args.cpu_model, "height": page.shape[0], "width": page.shape[1],
                      "seconds": seconds, "rss_before_mb": before, "peak_before_mb": peak_before,
                      "peak_rss_mb": peak, "rss_after_mb": after, "out_shape": list(out.shape)}))
    return 0


def expected_memory_mb(height: int, width: int, tile: int, overlap: int, batch: int) -> dict[str, float]:
    """What TiledRestorer holds at once for an H×W×3 page, from its code: MiB per buffer."""
    margin = overlap // 2
    ph = height + 2 * margin + max(0, tile - height - 2 * margin)
    pw = width + 2 * margin + max(0, tile - width - 2 * margin)
    mib = 2**20
    return {
        "page uint8 (the input)": height * width * 3 / mib,
        "mirror-padded page uint8": ph * pw * 3 / mib,
        "float accumulator (H×W×3)": ph * pw * 3 * 4 / mib,
        "float weights (H×W×1)": ph * pw * 4 / mib,
        "output uint8": height * width * 3 / mib,
        "one batch of tiles, uint8 + float in + float out": batch * tile * tile * 3 * (1 + 4 + 4) / mib,
    }


def bench_big(args, overlap: int) -> dict:
    width, height = SMOKE_BIG if args.smoke else BIG
    page, label = make_page(width, height)
    with tempfile.TemporaryDirectory(prefix="manurestore-restore-bench-") as tmp:
        path = Path(tmp) / "big.npy"
        np.save(path, page)
        del page
        command = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(path), "--cpu-model", args.cpu_model,
                   "--tile", str(args.tile), "--overlap", str(overlap), "--batch-size", str(args.batch_size),
                   "--precision", args.precision]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the big-page process failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["page"] = label
    result["megapixels"] = width * height / 1e6
    result["s_per_mp"] = result["seconds"] / result["megapixels"]
    result["expected_mb"] = expected_memory_mb(height, width, args.tile, overlap, args.batch_size)
    return result


# --------------------------------------------------------------------------------------------
# Report


def print_rows(rows: list[Row], tilers: dict[str, tuple[Spread, float, int]]) -> None:
    print(f"{'model':<10} {'dev':<5} {'prec':<9} {'params':>7} {'GFLOP/tile':>10} {'tiles':>6} {'s/page':>8} "
          f"{'s/MP':>8} {'ms/MP':>9} {'MP/s':>7} {'s/tile':>8} {'spread s/page':>17}")
    for device, (spread, megapixels, tiles) in tilers.items():
        print(f"{'(tiler)':<10} {device:<5} {'—':<9} {'—':>7} {'—':>10} {tiles:>6} {spread.median:>8.3f} "
              f"{spread.median / megapixels:>8.4f} {1e3 * spread.median / megapixels:>9.1f} {megapixels / spread.median:>7.1f} "
              f"{'—':>8} {spread.fastest:>8.3f}–{spread.slowest:.3f}")
    for r in rows:
        mark = "*" if r.extrapolated else ""
        print(f"{r.model + mark:<10} {r.device:<5} {r.precision:<9} {r.params / 1e6:>6.1f}M {r.gflops_per_tile:>10.2f} "
              f"{r.tiles:>6} {r.seconds_per_page:>8.2f} {r.s_per_mp:>8.3f} {1e3 * r.s_per_mp:>9.1f} {r.mp_per_s:>7.2f} "
              f"{r.seconds_per_tile:>8.4f} {r.fastest:>8.2f}–{r.slowest:.2f}")
    print("(tiler) = an identity model through the same TiledRestorer: cutting tiles, uint8 → float, blending, "
          "normalising, rounding")
    print("s/tile = the model alone on one batch of tiles, divided by the tiles in it")
    for r in rows:
        for note in r.notes:
            print(f"* {r.model} ({r.device}): {note}")
    print()


def targets(rows: list[Row], cpu_model: str) -> list[dict]:
    out = []
    for r in sorted(rows, key=lambda r: r.device != "cpu"):
        if r.device == "cpu" and r.model == cpu_model:
            out.append({"target": f"≤ {CPU_TARGET_S_PER_MP:g} s/MP for {cpu_model} (the CPU model) on this CPU",
                        "value": r.s_per_mp, "unit": "s/MP", "met": r.s_per_mp <= CPU_TARGET_S_PER_MP,
                        "extrapolated": r.extrapolated})
        if r.device == "cuda" and r.model == CUDA_TARGET_MODEL:
            out.append({"target": f"≤ {1e3 * CUDA_TARGET_S_PER_MP:g} ms/MP for {CUDA_TARGET_MODEL} on one H100",
                        "value": 1e3 * r.s_per_mp, "unit": "ms/MP", "met": r.s_per_mp <= CUDA_TARGET_S_PER_MP,
                        "extrapolated": r.extrapolated})
    return out


def print_targets(found: list[dict], rows: list[Row], gpu: str | None, cpu_model: str) -> None:
    print("targets:")
    for unit, missing in (("s/MP", f"≤ {CPU_TARGET_S_PER_MP:g} s/MP for {cpu_model} on the CPU: not measured"),
                          ("ms/MP", f"≤ {1e3 * CUDA_TARGET_S_PER_MP:g} ms/MP for {CUDA_TARGET_MODEL} on one H100: "
                                    "not measured (no CUDA device used)")):
        mine = [t for t in found if t["unit"] == unit]
        if not mine:
            print(f"  {missing}")
        for t in mine:
            value = f"{t['value']:.3f} s/MP" if unit == "s/MP" else f"{t['value']:.1f} ms/MP"
            extra = " (extrapolated)" if t["extrapolated"] else ""
            gpu_note = f" [measured on {gpu}, not an H100]" if unit == "ms/MP" and gpu and "H100" not in gpu else ""
            print(f"  {t['target']}: {value}{extra}{gpu_note} — {'MET' if t['met'] else 'NOT MET'}")
    fast_enough = [r.model for r in rows if r.device == "cpu" and r.s_per_mp <= CPU_TARGET_S_PER_MP]
    if any(r.device == "cpu" for r in rows):
        print(f"  models within {CPU_TARGET_S_PER_MP:g} s/MP on this CPU: {', '.join(fast_enough) or 'none'}")
    print()


def print_big(big: dict) -> None:
    print(f"big page: {big['page']} ({big['megapixels']:.0f} MP), {big['model']} on the CPU, in a fresh process:")
    print(f"  {big['seconds']:.1f} s ({big['s_per_mp']:.3f} s/MP); peak RSS {big['peak_rss_mb']:,.0f} MiB "
          f"(getrusage ru_maxrss); RSS just before the restore {big['rss_before_mb']:,.0f} MiB (page and model loaded, "
          f"warmed up) → rise {big['peak_rss_mb'] - big['rss_before_mb']:,.0f} MiB")
    expected = big["expected_mb"]
    during = sum(v for k, v in expected.items() if not k.startswith("page uint8"))
    print(f"  expected from the tiler's buffers: {during:,.0f} MiB above the page (" +
          ", ".join(f"{k} {v:,.0f}" for k, v in expected.items() if not k.startswith("page uint8")) + ")")
    print()


# --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__, quick="fewer runs, extrapolate pages over 10 s, no big page")
    parser.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: fp32 on the CPU, bf16 on GPUs that support it")
    parser.add_argument("--tile", type=int, default=TILE)
    parser.add_argument("--overlap", type=int, default=None, help="default: the tiler's (1/8 of the tile)")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--page", default=f"{PAGE[0]}x{PAGE[1]}", help="WIDTHxHEIGHT of the timed page (default %(default)s)")
    parser.add_argument("--cpu-model", default=CPU_MODEL, help="the model recommended for CPUs (the CPU target, --big)")
    parser.add_argument("--big", action=argparse.BooleanOptionalAction, default=None,
                        help="restore a 6000×4000 page (768×512 with --smoke) with --cpu-model for peak RSS "
                             "(default: on, off with --quick)")
    parser.add_argument("--probe-tiles", type=int, default=2, help="tiles timed for vit-base on the CPU (default 2)")
    parser.add_argument("--max-page-s", type=float, default=None,
                        help="extrapolate any model whose page would take longer (default 60 s; 10 s with --quick)")
    parser.add_argument("--no-extrapolate", action="store_true", help="restore every page in full, vit-base on the CPU too")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    return parse(parser, argv, smoke={"models": CPU_MODEL, "page": "512x384", "big": True})


def main(argv=None) -> int:
    args = parse_args(argv)
    began = start(args)
    if args.rss_child:
        return rss_child(args)
    measured = devices(args)
    models = model_names(args.models, args.cpu_model)
    try:
        width, height = (int(v) for v in args.page.lower().replace("×", "x").split("x"))
    except ValueError:
        print(f"error: --page {args.page!r}: expected WIDTHxHEIGHT", file=sys.stderr)
        return 2
    overlap = args.overlap if args.overlap is not None else -(-args.tile // 8)  # TiledRestorer's default
    big = args.big if args.big is not None else not args.quick

    info = machine_info()
    page, page_label = make_page(width, height)
    precisions = ", ".join(f"{d.type} {str(resolve_precision(args.precision, d)).removeprefix('torch.')}" for d in measured)
    print_header(info, "restoration throughput through TiledRestorer", [
        f"setup : {page_label}; tile {args.tile}, overlap {overlap}, batch {args.batch_size} tiles; "
        f"precision {args.precision} → {precisions}; fresh weights",
        f"timing: {mode(args)} — medians of whole-page restorations after a warm-up (fastest–slowest in brackets); "
        "rows marked * are extrapolated from a probe batch of tiles"])

    rows: list[Row] = []
    tilers: dict[str, tuple[Spread, float, int]] = {}
    megapixels = height * width / 1e6
    for device in measured:
        tiler = tiler_alone(args, device, page, overlap)
        tilers[device.type] = (tiler, megapixels, tile_count(height, width, args.tile, overlap))
        rows += bench_device(args, device, page, page_label, models, tiler, overlap)
    print_rows(rows, tilers)
    found = targets(rows, args.cpu_model)
    print_targets(found, rows, info["gpu"], args.cpu_model)

    big_result = None
    if big:
        big_result = bench_big(args, overlap)
        print_big(big_result)
    finish(began, args.json, {
        "machine": info, "page": page_label, "megapixels": megapixels,
        "settings": {"tile": args.tile, "overlap": overlap, "batch_size": args.batch_size,
                     "precision": args.precision, "quick": args.quick, "cpu_model": args.cpu_model},
        "tiler_alone": {d: {**asdict(s), "s_per_mp": s.median / mp, "tiles": n} for d, (s, mp, n) in tilers.items()},
        "results": [r.as_dict() for r in rows], "targets": found, "big_page": big_result,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
