"""Make the pictures in docs/visualize.md: `python docs/make_visualize_pictures.py` from the repository root.

Writes docs/images/visualize-flow.png, visualize-presets.png, visualize-curves.png and
visualize-report.png by running the four `manurestore visualize` subcommands on synthetic pages.
It trains nothing: without `--model` the restorer is vit-tiny with a small random output head (an
untrained stand-in, so "restored" is close to the input); pass `--model best.safetensors` to use a
trained one. Without `--run RUN_DIR` the curves come from an illustrative metrics.jsonl written here
(the trainer's real learning-rate schedule, made-up loss and PSNR). Only built-in ops appear in the
gallery (MANURESTORE_PLUGINS is set empty), so the picture does not depend on what is installed.
The report picture is a headless-Chromium screenshot and is skipped when Chromium is missing.
Each PNG stays under 200 KB (fewer colours, then a smaller size, if needed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["MANURESTORE_PLUGINS"] = ""

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import typer  # noqa: E402
from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from manurestore.cli import visualize  # noqa: E402
from manurestore.data.io import read_image, write_image  # noqa: E402
from manurestore.data.synth import generate_page  # noqa: E402

OUT = ROOT / "docs" / "images"
LIMIT = 200 * 1024


def _cli(*args) -> None:
    app = typer.Typer()
    app.add_typer(visualize.app, name="visualize")
    result = CliRunner().invoke(app, ["visualize", *map(str, args)])
    if result.exit_code != 0:
        raise SystemExit(f"visualize {' '.join(map(str, args))} failed:\n{result.output}")


def _stand_in_model(path: Path) -> Path:
    from manurestore.models.registry import build_model
    from manurestore.models.checkpoint import save_weights

    torch.manual_seed(0)
    model = build_model("vit-tiny", img_size=64).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("head"):
                parameter.normal_(0, 0.02)
    save_weights(path, model, {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


def _illustrative_run(folder: Path) -> Path:
    """A metrics.jsonl in the trainer's format: 12 epochs of 100 steps, logged every 10 steps."""
    from manurestore.training.trainer import lr_at

    rng = np.random.default_rng(0)
    total, per_epoch = 1200, 100
    lines = [{"kind": "identity", "step": 0, "psnr": 20.39, "ssim": 0.763, "mse": 0.0125}]
    for step in range(10, total + 1, 10):
        base = 0.045 + 0.09 * math.exp(-step / 250)
        loss = base * (1 + 0.08 * rng.standard_normal())
        lines.append({"kind": "train", "step": step, "epoch": step / per_epoch, "l1": loss * 0.8, "perceptual": 0.0,
                      "ssim": loss * 1.5, "total": loss, "grad_norm": 0.3, "lr": lr_at(step, total, 3e-4, 60),
                      "images_per_s": 30.0})
        if step % per_epoch == 0:
            gain = 1 - math.exp(-step / 400)
            lines.append({"kind": "val", "step": step, "epoch": step // per_epoch, "loss": base * 1.05,
                          "psnr": 20.6 + 6 * gain, "ssim": 0.764 + 0.12 * gain, "mse": 0.01, "seconds": 50.0})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return folder


def _save_small(image: Image.Image, path: Path, width: int) -> int:
    """PNG at most `width` wide; fewer colours (octree), then smaller, until it is under the limit."""
    image = image.convert("RGB")
    while True:
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        for colours in (256, 128, 64):
            image.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
            if path.stat().st_size <= LIMIT:
                return path.stat().st_size
        width = int(image.width * 0.9)


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained .safetensors (default: an untrained stand-in)")
    parser.add_argument("--run", type=Path, help="a run folder for the curves (default: an illustrative log)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp_name:
        temp = Path(temp_name)
        model = args.model or _stand_in_model(temp / "stand-in.safetensors")
        leaf = temp / "leaf.png"
        write_image(leaf, generate_page(11, "palm-leaf"))
        folio = temp / "folio.png"
        write_image(folio, generate_page(1, "paper", (448, 256)))

        _cli("flow", leaf, "-m", model, "-o", temp / "flow", "--preset", "aged", "--seed", "0")
        flow = Image.fromarray(read_image(temp / "flow" / "training_flow_comparison.jpg"))
        pictures = [("visualize-flow.png", flow, 1100)]

        _cli("presets", folio, "-o", temp / "gallery.png", "--seed", "0")
        pictures.append(("visualize-presets.png", Image.open(temp / "gallery.png"), 1100))

        run = args.run or _illustrative_run(temp / "run")
        _cli("curves", run, "-o", temp / "curves.png")
        pictures.append(("visualize-curves.png", Image.open(temp / "curves.png"), 900))

        browser = _chromium()
        if browser:
            pairs = temp / "pairs"
            from manurestore.degradations.pipeline import Pipeline
            from manurestore.degradations.files import degrade_page

            clean = generate_page(5, "paper", (640, 352))
            write_image(pairs / "clean" / "folio-5.png", clean)
            write_image(pairs / "degraded" / "folio-5.png",
                        degrade_page(clean, Pipeline.from_preset("heavy"), 0, "folio-5", torch.device("cpu"))[0])
            _cli("report", "--pairs", pairs, "-m", model, "-o", temp / "report.html")
            shot = temp / "report.png"
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={temp / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
                            f"{(temp / 'report.html').as_uri()}#slider=45&left=clean"],
                           capture_output=True, timeout=60, check=False)
            if shot.exists():
                pictures.append(("visualize-report.png", Image.open(shot), 900))
        else:
            print("Chromium not found: docs/images/visualize-report.png left as it is", file=sys.stderr)

        for name, image, width in pictures:
            size = _save_small(image, OUT / name, width)
            final = Image.open(OUT / name)
            print(f"{OUT / name}: {final.width}x{final.height}, {size // 1024} KB")


if __name__ == "__main__":
    main()
