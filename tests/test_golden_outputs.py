"""Golden outputs: `synth`, `degrade`, `restore` and `evaluate` write the same bytes on a fixed seed.

The digests were taken before the code was reorganised; a refactor that changes any pixel, any
recorded draw or any metric fails here. A deliberate change of behaviour updates them
(`MANURESTORE_PRINT_GOLDEN=1 pytest tests/test_golden_outputs.py -s` prints the new digests).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
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
    "aged/val/page-0001.png": "853668ff46631dd2",
    "aged.jsonl": "6fb538f3fd0207ed",
    "heavy/train/page-0002.png": "84cb342bf8e6649b",
    "heavy/train/page-0003.png": "3932d508d72c466a",
    "heavy/val/page-0001.png": "6708a48ee2150a5d",
    "ops/train/page-0002.png": "f7f3a5b5d189476b",
    "ops/train/page-0003.png": "f00f1103029d6b8a",
    "ops/val/page-0001.png": "4082dcbbb3e78c69",
    "ops.jsonl": "b60a3cecccab4697",
    "restored/train/page-0002.png": "3cf05265730574eb",
    "restored/train/page-0003.png": "057fe657d752b14c",
    "restored/val/page-0001.png": "c8439e02bf88017f",
    "evaluation": "3b0fb0c6dec26ba1",
}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _jsonl_digest(path: Path, root: Path) -> str:
    """The record file without the temporary folder's name in its paths."""
    return _digest(path.read_text(encoding="utf-8").replace(str(root), "ROOT").encode())


def _significant(value):
    """Numbers to 10 significant digits: the order of a float sum may change its last bit, a
    change of behaviour changes far more."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {key: _significant(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_significant(item) for item in value]
    return value


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
    assert found == GOLDEN


def _run_every_command(tmp_path: Path) -> dict[str, str]:
    _invoke("synth", "synth", "--pages", "3", "--seed", "5", "--size", "192x96", "--val-fraction", "0.34")
    _invoke("degrade", "synth", "-o", "aged", "--preset", "aged", "--seed", "3", "--params-out", "aged.jsonl", "--format", "png")
    _invoke("degrade", "synth", "-o", "heavy", "--preset", "heavy", "--seed", "4", "--format", "png")
    ops = [arg for name in EVERY_BUILTIN_OP for arg in ("--op", name)]
    _invoke("degrade", "synth", "-o", "ops", *ops, "--seed", "5", "--params-out", "ops.jsonl", "--format", "png")
    _invoke("restore", "aged", "-o", "restored")
    _invoke("evaluate", "synth", "--preset", "aged", "--seed", "1", "--json", "evaluation.json")

    found = {}
    for name in GOLDEN:
        path = tmp_path / name
        if name.endswith(".jsonl"):
            found[name] = _jsonl_digest(path, tmp_path)
        elif name == "evaluation":
            report = json.loads((tmp_path / "evaluation.json").read_text(encoding="utf-8"))
            measured = {key: report[key] for key in ("mean", "images", "tile", "seed", "preset")}
            found[name] = _digest(json.dumps(_significant(measured), sort_keys=True).encode())
        else:
            found[name] = _digest(path.read_bytes())
    return found
