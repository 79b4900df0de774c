"""Golden outputs: `synth`, `degrade`, `restore` and `evaluate` write the same bytes on a fixed seed.

The digests were taken before the code was reorganised; a refactor that changes any pixel, any
recorded draw or any metric fails here. A deliberate change of behaviour updates them
(`MANURESTORE_PRINT_GOLDEN=1 pytest tests/test_golden_outputs.py -s` prints the new digests and
writes the model's references under tests/golden/).

What the model computes is the exception: its float sums run through the CPU's own kernels (AVX2
on one machine, AVX-512 on another), so a restored pixel may round to a neighbouring value. The
restored pages are compared with reference images in tests/golden/ to within one level, on no more
than 1% of the pixels, and the evaluation's metrics with the reference numbers to within 1e-3 dB
(PSNR) or 1e-5 (the rest): a change of behaviour moves far more than that.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from manurestore.cli.app import app

runner = CliRunner()

EVERY_BUILTIN_OP = ["gaussian_noise", "gaussian_blur", "contrast", "salt_pepper", "yellowing", "stains"]

GOLDEN = {
    "synth/train/page-0002.png": "85cb55ba5fb9be31",
    "synth/train/page-0003.png": "071bcc09999e8694",
    "synth/val/page-0001.png": "1006006d5db84e6f",
    "aged/train/page-0002.png": "c30d3d883f85f5e1",
    "aged/train/page-0003.png": "b4a5ed0e325b59ab",
    "aged/val/page-0001.png": "3f1dd79ec3a35ac4",
    "aged.jsonl": "6fb538f3fd0207ed",
    "heavy/train/page-0002.png": "84cb342bf8e6649b",
    "heavy/train/page-0003.png": "3932d508d72c466a",
    "heavy/val/page-0001.png": "6708a48ee2150a5d",
    "ops/train/page-0002.png": "aee906c7e68b887a",
    "ops/train/page-0003.png": "66268c7295e646b4",
    "ops/val/page-0001.png": "add02e4124dbceff",
    "ops.jsonl": "b60a3cecccab4697",
}
REFERENCES = Path(__file__).parent / "golden"
RESTORED = ["restored/train/page-0002.png", "restored/train/page-0003.png", "restored/val/page-0001.png"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _jsonl_digest(path: Path, root: Path) -> str:
    """The record file without the temporary folder's name in its paths."""
    return _digest(path.read_text(encoding="utf-8").replace(str(root), "ROOT").encode())


@pytest.mark.slow
def test_commands_write_the_golden_bytes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The model's float sums are split across threads: pin one, so the restored bytes do not
    # depend on how many cores the machine has.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        found = _run_every_command(tmp_path)
    finally:
        torch.set_num_threads(threads)
    if os.environ.get("MANURESTORE_PRINT_GOLDEN"):
        print(json.dumps(found, indent=4))
        _write_references(tmp_path)
    assert found == GOLDEN
    for name in RESTORED:
        _assert_close_image(tmp_path / name, REFERENCES / name)
    expected = json.loads((REFERENCES / "evaluation.json").read_text(encoding="utf-8"))
    _assert_close_numbers(_evaluation_measures(tmp_path), expected, "evaluation")


def _evaluation_measures(tmp_path: Path) -> dict:
    report = json.loads((tmp_path / "evaluation.json").read_text(encoding="utf-8"))
    return {key: report[key] for key in ("mean", "images", "tile", "seed", "preset")}


def _write_references(tmp_path: Path) -> None:
    for name in RESTORED:
        (REFERENCES / name).parent.mkdir(parents=True, exist_ok=True)
        (REFERENCES / name).write_bytes((tmp_path / name).read_bytes())
    (REFERENCES / "evaluation.json").write_text(json.dumps(_evaluation_measures(tmp_path), indent=1, sort_keys=True) + "\n")


def _assert_close_image(path: Path, reference: Path) -> None:
    got = np.asarray(Image.open(path)).astype(np.int16)
    want = np.asarray(Image.open(reference)).astype(np.int16)
    assert got.shape == want.shape, path
    differ = np.abs(got - want)
    assert differ.max() <= 1 and (differ > 0).mean() <= 0.01, (
        f"{path.name}: {int(differ.max())} levels off at most, {(differ > 0).mean():.2%} of values differ")


def _assert_close_numbers(got, want, where: str) -> None:
    """Equal structure and text; numbers within 1e-3 for PSNR, 1e-5 for the rest."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _assert_close_numbers(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        tolerance = 1e-3 if "psnr" in where else 1e-5
        assert abs(got - want) <= tolerance, f"{where}: {got} vs {want}"
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


def _run_every_command(tmp_path: Path) -> dict[str, str]:
    _invoke("synth", "synth", "--pages", "3", "--seed", "5", "--size", "192x96", "--val-fraction", "0.34")
    # One thread, as pinned above: the commands' `--threads auto` would otherwise take the free cores.
    _invoke("degrade", "synth", "-o", "aged", "--preset", "aged", "--seed", "3", "--params-out", "aged.jsonl", "--format", "png", "--threads", "1")
    _invoke("degrade", "synth", "-o", "heavy", "--preset", "heavy", "--seed", "4", "--format", "png", "--threads", "1")
    ops = [arg for name in EVERY_BUILTIN_OP for arg in ("--op", name)]
    _invoke("degrade", "synth", "-o", "ops", *ops, "--seed", "5", "--params-out", "ops.jsonl", "--format", "png", "--threads", "1")
    # fp32: `auto` is bf16 on CPUs with bf16 arithmetic, fp32 elsewhere; the references must not depend on the CPU.
    _invoke("restore", "aged", "-o", "restored", "--precision", "fp32", "--threads", "1")
    _invoke("evaluate", "synth", "--preset", "aged", "--seed", "1", "--json", "evaluation.json", "--precision", "fp32", "--threads", "1")

    found = {}
    for name in GOLDEN:
        path = tmp_path / name
        if name.endswith(".jsonl"):
            found[name] = _jsonl_digest(path, tmp_path)
        else:
            found[name] = _digest(path.read_bytes())
    return found
