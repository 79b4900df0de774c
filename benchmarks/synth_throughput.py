#!/usr/bin/env python
"""Pages/s of `manurestore synth --workers 1`, palm-leaf and paper at their default sizes.

    python benchmarks/synth_throughput.py                   # 12 pages per kind, median of 3 runs
    python benchmarks/synth_throughput.py --quick           # 4 pages per kind, one run (~5 s on 2 cores)
    python benchmarks/synth_throughput.py --smoke           # one page per kind: checks the script works
    python benchmarks/synth_throughput.py --pages 48 --runs 1 --json synth.json

A run is `synth_dataset` (what the command calls) writing that many pages of one kind into a fresh temporary
folder, one worker: rendering, PNG writing and the manifest. One untimed page per kind loads the fonts first;
the cold first page is printed apart. Below the table, the figure the unit tests used to assert on:
`generate_page(4, "paper")` with fonts and caches warm, against its limit of 3 s (PASS/FAIL).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import Spread, base_parser, finish, machine_info, mode, parse, print_header, repeat_wall, start, wall_seconds

from manurestore.data.synth import KINDS, generate_page, synth_dataset

ONE_PAGE = (4, "paper")  # the page the old test timed: seed, kind
ONE_PAGE_LIMIT_S = 3.0  # its limit ("~0.2-0.4 s here; generous for shared CI machines")
CPU = torch.device("cpu")


def bench_kind(kind: str, pages: int, runs: int, tmp: Path) -> tuple[Spread, list[list[int]]]:
    """Seconds per page of `runs` synth runs of `pages` pages of `kind`, and the sizes the pages came out."""
    manifests = []

    def run() -> None:
        out = tmp / f"{kind}-{len(manifests)}"
        manifests.append(synth_dataset(out, pages=pages, seed=0, kind=kind, workers=1))

    per_page = [wall_seconds(run, CPU) / pages for _ in range(runs)]
    return Spread.of(per_page), [page["size"] for page in manifests[0]["pages"]]


def size_range(sizes: list[list[int]]) -> str:
    low, high = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
    return f"{low[0]}×{low[1]}" + (f"–{high[0]}×{high[1]}" if high != low else "")


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__, quick="4 pages per kind, one run", device=None)
    parser.add_argument("--pages", type=int, default=None, help="pages per kind in each run (default 12; 4 with --quick)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per kind (default 3; 1 with --quick)")
    return parse(parser, argv, smoke={"pages": 1, "runs": 1})


def main(argv=None) -> int:
    args = parse_args(argv)
    began = start(args)
    pages = args.pages or (4 if args.quick else 12)
    runs = args.runs or (1 if args.quick else 3)
    repeats = 1 if args.smoke else 3 if args.quick else 5

    info = machine_info()
    print_header(info, "synth throughput: `manurestore synth --workers 1`, default page sizes", [
        f"setup : synth_dataset(kind=…, workers=1) into a fresh temporary folder per run: render + PNG + manifest; "
        f"{pages} page(s) per kind per run",
        f"timing: {mode(args)} — median of {runs} run(s) per kind after one warm-up page (fastest–slowest in brackets)"])

    cold = {kind: wall_seconds(lambda: generate_page(0, kind), CPU) for kind in KINDS}  # fonts load here
    rows = []
    with tempfile.TemporaryDirectory(prefix="manurestore-synth-bench-") as tmp:
        for kind in KINDS:
            spread, sizes = bench_kind(kind, pages, runs, Path(tmp))
            rows.append({"kind": kind, "pages": pages, "sizes": size_range(sizes), "spread": spread})
    print(f"{'kind':<10} {'pages':>5} {'sizes (W×H)':<20} {'pages/s':>8} {'ms/page':>8} {'spread ms/page':>15} {'first page':>11}")
    for row in rows:
        s = row["spread"]
        print(f"{row['kind']:<10} {row['pages']:>5} {row['sizes']:<20} {1 / s.median:>8.2f} {1e3 * s.median:>8.0f} "
              f"{f'{1e3 * s.fastest:.0f}–{1e3 * s.slowest:.0f}':>15} {1e3 * cold[row['kind']]:>9.0f} ms")
    print("first page = the process's first page of that kind, cold (fonts loaded, caches filled); not in the runs")
    print()

    one = repeat_wall(lambda: generate_page(*ONE_PAGE), CPU, repeats, 0)
    passed = one.median < ONE_PAGE_LIMIT_S
    print("targets:")
    print(f"  one {ONE_PAGE[1]} page, generate_page({ONE_PAGE[0]}, \"{ONE_PAGE[1]}\"), fonts and caches warm, "
          f"< {ONE_PAGE_LIMIT_S:g} s: "
          f"{one.median:.3f} s (median of {one.count}) — {'PASS' if passed else 'FAIL'}")
    print()
    finish(began, args.json, {
        "machine": info, "settings": {"pages_per_kind": pages, "runs": runs, "workers": 1, "quick": args.quick},
        "results": [{**row, "spread": vars(row["spread"]), "pages_per_s": 1 / row["spread"].median,
                     "ms_per_page": 1e3 * row["spread"].median, "first_page_s": cold[row["kind"]]} for row in rows],
        "one_page": {"seed": ONE_PAGE[0], "kind": ONE_PAGE[1], "seconds": vars(one), "limit_s": ONE_PAGE_LIMIT_S,
                     "passed": passed},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
