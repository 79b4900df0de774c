"""Do a model's tiles agree? Restore each page with two tile sizes and compare the outputs' low
frequencies (both blurred with a Gaussian of σ = 8 px): where tiles made their own colour
decisions the two outputs differ at a scale no blur hides. Optionally writes, for each page, the
restored page and a 1:1 detail across tile borders to look at.

    python docs/check_tile_consistency.py ../shared/data/real-pages/images --include tamil-palmleaf \
        -m runs/real/best.safetensors --pictures /tmp/tiles

Real scans are for research use: write pictures of them outside the repository.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import kornia
import numpy as np
import torch

from manurestore.data.folders import find_images, select_images
from manurestore.data.io import read_image, write_image
from manurestore.devices import resolve_device
from manurestore.inference.restorer import load_restorer

SIGMA = 8.0


def low_frequency_psnr(a: np.ndarray, b: np.ndarray, sigma: float = SIGMA) -> float:
    """PSNR between two uint8 pages after both are blurred with a Gaussian of `sigma` pixels."""

    def blurred(page: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(page).permute(2, 0, 1)[None].double() / 255
        size = int(6 * sigma) | 1
        return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")

    mse = float((blurred(a) - blurred(b)).pow(2).mean())
    return 100.0 if mse == 0 else 10 * math.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("-m", "--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--include", action="append", default=[])
    parser.add_argument("--tiles", type=int, nargs=2, default=(256, 192), metavar=("A", "B"))
    parser.add_argument("--colour", default="correct", choices=("correct", "keep"))
    parser.add_argument("--pictures", type=Path, default=None, help="folder for the restored pages and 1:1 details")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = resolve_device("auto")
    restorers = [load_restorer(args.model, device, tile=tile, colour=args.colour).restorer for tile in args.tiles]
    paths = select_images(find_images(args.data).paths, args.data, args.include)
    scores = []
    for path in paths:
        page = read_image(path, mode="RGB")
        first, second = (restorer.restore(page) for restorer in restorers)
        score = low_frequency_psnr(first, second)
        scores.append(score)
        name = path.relative_to(args.data).as_posix() if args.data.is_dir() else path.name
        print(f"{name:50s} {page.shape[1]:5d}×{page.shape[0]:<5d} low-frequency PSNR {score:6.2f} dB", flush=True)
        if args.pictures is not None:
            stem = name.replace("/", "_").rsplit(".", 1)[0]
            write_image(args.pictures / f"{stem}.restored.png", first, overwrite=True)
            top = max(0, page.shape[0] // 2 - 128)
            left = max(0, page.shape[1] // 2 - 256)
            detail = np.concatenate([page[top : top + 256, left : left + 512], first[top : top + 256, left : left + 512]], axis=0)
            write_image(args.pictures / f"{stem}.detail.png", detail, overwrite=True)
    if scores:
        print(f"{len(scores)} pages: mean {np.mean(scores):.2f} dB, lowest {min(scores):.2f} dB "
              f"(tiles {args.tiles[0]} vs {args.tiles[1]}, σ = {SIGMA:g} px, colour {args.colour})")


if __name__ == "__main__":
    main()
