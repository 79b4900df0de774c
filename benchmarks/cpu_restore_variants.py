#!/usr/bin/env python
"""The bundled model restoring on the CPU in each precision the ecosystem offers: speed and quality.

    python benchmarks/cpu_restore_variants.py --threads 2                    # synthetic page; fp32, bf16, int8
    python benchmarks/cpu_restore_variants.py --real ../shared/data/real-pages/images --per-collection 2
    python benchmarks/cpu_restore_variants.py --compile                      # also torch.compile (minutes)
    python benchmarks/cpu_restore_variants.py --smoke                        # a small page, one run

Each variant restores the same `aged`-degraded pages (seed 0) through the same tiler as `manurestore restore`:
fp32; bf16 autocast (what `--precision auto` picks on CPUs with AMX or AVX-512 BF16); the linear layers quantised to int8 on
the fly (torch.ao dynamic quantisation, deprecated upstream in favour of torchao); optionally each compiled.
A variant is kept only if it is faster at the same quality: its PSNR against the clean page may differ from
fp32's by at most 0.1 dB on every page. Pages: a 2048×1536 synthetic paper folio, plus --real pages (scaled
down to at most 2 MP so the run stays short), never used for training here.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import base_parser, finish, machine_info, mode, parse, print_header, start

from manurestore.batches import to_batch, to_images
from manurestore.data.io import read_image
from manurestore.data.synth import generate_page
from manurestore.degradations.pipeline import Pipeline
from manurestore.devices import cpu_has_fast_bf16
from manurestore.inference.restorer import load_restorer
from manurestore.metrics import psnr

CPU = torch.device("cpu")
MAX_CHANGE_DB = 0.1
TARGET_S_PER_MP = 1.0
REAL_MAX_PIXELS = 2_000_000


def pages(args) -> list[tuple[str, np.ndarray]]:
    """The synthetic folio and up to --per-collection real pages of each collection under --real."""
    found = [("synthetic paper", generate_page(4, "paper", size=args.page))]
    if args.real is not None:
        for collection in sorted(path for path in args.real.iterdir() if path.is_dir()):
            for path in sorted(collection.iterdir())[: args.per_collection]:
                found.append((f"{collection.name}/{path.name}", _at_most(read_image(path), REAL_MAX_PIXELS)))
    return found


def _at_most(page: np.ndarray, pixels: int) -> np.ndarray:
    from PIL import Image

    height, width = page.shape[:2]
    scale = min(1.0, (pixels / (height * width)) ** 0.5)
    if scale == 1.0:
        return page
    return np.asarray(Image.fromarray(page).resize((round(width * scale), round(height * scale)), Image.BOX))


def degrade(page: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_images(Pipeline.from_preset("aged")(to_batch([page], CPU), torch.tensor([0])))[0]


def page_psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    return float(psnr(to_batch([restored], CPU), to_batch([clean], CPU))[0])


def variants(args) -> dict[str, object]:
    """Name → a TiledRestorer restoring with the bundled model in that variant."""
    base = load_restorer(None, CPU, precision="fp32").restorer
    bf16 = copy.copy(base)
    bf16.dtype = torch.bfloat16
    int8 = copy.copy(base)
    with warnings.catch_warnings():  # torch.ao's deprecation notice: the figure is what we want here
        warnings.simplefilter("ignore")
        int8.model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base.model), {torch.nn.Linear}, dtype=torch.qint8)
    found = {"fp32": base, "bf16": bf16, "int8 dynamic": int8}
    if args.compile:
        for name in list(found):
            compiled = copy.copy(found[name])
            compiled.model = torch.compile(found[name].model)
            found[f"{name} + compile"] = compiled
    return found


def measure(restorer, cases, runs: int) -> tuple[float, list[float], float]:
    """Seconds per megapixel (median of `runs` passes over all pages), each page's PSNR, and the warm-up seconds."""
    began = time.perf_counter()
    restorer.restore(cases[0][1][:256, :256])  # warm-up (and compilation)
    warmup = time.perf_counter() - began
    megapixels = sum(degraded.shape[0] * degraded.shape[1] for _, degraded, _ in cases) / 1e6
    times, scores = [], []
    for _ in range(runs):
        began = time.perf_counter()
        outputs = [restorer.restore(degraded) for _, degraded, _ in cases]
        times.append(time.perf_counter() - began)
        scores = [page_psnr(out, clean) for out, (_, _, clean) in zip(outputs, cases)]
    return float(np.median(times)) / megapixels, scores, warmup


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__, quick="one timed pass instead of three", device=None)
    parser.add_argument("--real", type=Path, default=None, help="a folder of collections (folders) of real scans")
    parser.add_argument("--per-collection", type=int, default=2, help="real pages per collection (default 2)")
    parser.add_argument("--page", type=lambda text: tuple(int(v) for v in text.split("x")), default=(2048, 1536),
                        help="WIDTHxHEIGHT of the synthetic page (default 2048x1536)")
    parser.add_argument("--compile", action="store_true", help="also each variant under torch.compile")
    parser.add_argument("--runs", type=int, default=None, help="timed passes (default 3; 1 with --quick)")
    return parse(parser, argv, smoke={"page": (512, 384), "runs": 1})


def main(argv=None) -> int:
    args = parse_args(argv)
    began = start(args)
    runs = args.runs or (1 if args.quick else 3)
    info = machine_info()
    print_header(info, "CPU restore variants: the bundled model, fp32 / bf16 / int8 (and compiled)", [
        f"setup : `aged`-degraded pages (seed 0) through the tiler of `manurestore restore`; bf16 in hardware (AMX or AVX-512 BF16): "
        f"{'yes' if cpu_has_fast_bf16() else 'no'}",
        f"timing: {mode(args)} — median of {runs} pass(es) over every page; quality: PSNR against the clean page"])
    cases = [(name, degrade(page), page) for name, page in pages(args)]
    identity = [page_psnr(degraded, clean) for _, degraded, clean in cases]
    rows = []
    for name, restorer in variants(args).items():
        seconds, scores, warmup = measure(restorer, cases, runs)
        rows.append({"variant": name, "s_per_mp": seconds, "psnr": scores, "warmup_s": warmup})
    reference = rows[0]
    print(f"{'variant':<22} {'s/MP':>6} {'× fp32':>7} {'mean PSNR':>10} {'worst change':>13} {'warm-up':>8}  kept?")
    for row in rows:
        changes = [a - b for a, b in zip(row["psnr"], reference["psnr"])]
        row["worst_change_db"] = max(changes, key=abs)
        row["kept"] = row["s_per_mp"] < reference["s_per_mp"] and abs(row["worst_change_db"]) <= MAX_CHANGE_DB
        print(f"{row['variant']:<22} {row['s_per_mp']:>6.2f} {reference['s_per_mp'] / row['s_per_mp']:>6.2f}× "
              f"{np.mean(row['psnr']):>9.2f}  {row['worst_change_db']:>+12.3f} {row['warmup_s']:>7.1f}s  "
              f"{'yes' if row['kept'] else 'no' if row is not reference else 'reference'}")
    print(f"identity (the degraded input): mean PSNR {np.mean(identity):.2f} dB over {len(cases)} page(s): "
          + ", ".join(name for name, _, _ in cases))
    print(f"kept = faster than fp32 and within {MAX_CHANGE_DB} dB of it on every page")
    print()
    fastest = min((row for row in rows if row["kept"] or row is reference), key=lambda row: row["s_per_mp"])
    passed = fastest["s_per_mp"] <= TARGET_S_PER_MP
    print("targets:")
    print(f"  the bundled model on this CPU ≤ {TARGET_S_PER_MP:g} s/MP at the same quality: {fastest['s_per_mp']:.2f} s/MP "
          f"({fastest['variant']}) — {'PASS' if passed else 'FAIL'}")
    print()
    finish(began, args.json, {"machine": info, "pages": [name for name, _, _ in cases], "identity_psnr": identity,
                              "variants": rows, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
