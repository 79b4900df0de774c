"""docs/gpu_kit/train_bundled.sh, the prepared run for a GPU lent for minutes, checked on the CPU:
every stage runs, the weights come back in parts that join into a model, and a second call resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from manurestore.data.synth import generate_page
from manurestore.models.checkpoint import load_model

KIT = Path(__file__).resolve().parents[1] / "docs" / "gpu_kit"


def kit_env(tmp_path: Path, data: Path) -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MANURESTORE_KIT_STATE": str(tmp_path / "state"), "MANURESTORE_KIT_DEVICE": "cpu",
            "MANURESTORE_KIT_SMALL": "1", "MANURESTORE_KIT_DATA": str(data)}


def train_bundled(tmp_path: Path, data: Path, seconds: str = "6") -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(KIT / "train_bundled.sh"), str(tmp_path / "out"), seconds],
                          env=kit_env(tmp_path, data), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_bundled_runs_every_stage_on_a_cpu_and_resumes(tmp_path):
    data = tmp_path / "collections"
    for name, kind in (("leaves", "palm-leaf"), ("folios", "paper")):
        (data / name).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(generate_page(index, kind=kind, size=(320, 256))).save(data / name / f"{index}.png")
    first = train_bundled(tmp_path, data)
    assert first.returncode == 0, first.stdout + first.stderr
    parts = sorted((tmp_path / "out").glob("best.safetensors.part-*"))
    assert len(parts) == 2 and all(part.stat().st_size <= 16 * 1024 * 1024 for part in parts)
    joined = tmp_path / "joined.safetensors"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    model, metadata = load_model(joined)
    assert metadata["model_name"] == "vit-small" and model.page_context is not None
    assert (tmp_path / "out" / "metrics.jsonl").exists() and (tmp_path / "state" / "synth" / "manifest.json").exists()
    again = train_bundled(tmp_path, data)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout and "== synth" not in again.stdout


def test_train_bundled_refuses_a_held_out_collection(tmp_path):
    data = tmp_path / "collections"
    (data / "tamil-palmleaf").mkdir(parents=True)
    result = train_bundled(tmp_path, data)
    assert result.returncode == 2
    assert "tamil-palmleaf: held out for evaluation" in result.stdout
