"""Restore under a launcher: torchrun's ranks and SLURM array tasks each take their own stable shard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from manurestore.data.jobs import FileTask, launcher_shard, select_shard
from manurestore.errors import UsageError
from manurestore.models.checkpoint import save_weights
from manurestore.models.registry import build_model


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"RANK": "0", "WORLD_SIZE": "1"}, None),
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, (2, 2)),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "4"}, (2, 3)),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}, (1, 2)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "RANK": "1", "WORLD_SIZE": "2"}, (4, 4)),
])
def test_the_launcher_names_the_shard(env, expected):
    assert launcher_shard(env) == expected


@pytest.mark.parametrize("env", [
    {"RANK": "2", "WORLD_SIZE": "2"},
    {"RANK": "x", "WORLD_SIZE": "2"},
    {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3"},
])
def test_a_broken_launcher_environment_is_a_usage_error(env):
    with pytest.raises(UsageError):
        launcher_shard(env)


def test_every_rank_layout_covers_every_file_exactly_once():
    tasks = [FileTask(Path(f"p{i}.png"), Path(f"o{i}.png"), f"box-{i % 3}/p{i}.png") for i in range(40)]
    for world in (2, 3, 4):
        shards = [select_shard(tasks, launcher_shard({"RANK": str(r), "WORLD_SIZE": str(world)})) for r in range(world)]
        names = sorted(task.identity for shard in shards for task in shard)
        assert names == sorted(task.identity for task in tasks)


@pytest.mark.slow
def test_torchrun_with_two_processes_restores_each_page_once_as_one_process_does(tmp_path):
    """Two CPU processes under the standard launcher: each takes its shard, together every page,
    and the pages are byte for byte what a single process writes."""
    torch.manual_seed(0)
    model = tmp_path / "tiny.safetensors"
    save_weights(model, build_model("vit-tiny", img_size=32).eval(), {"model_name": "vit-tiny", "train_crop": 32})
    pages = tmp_path / "pages"
    pages.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(pages / f"p{i}.png")
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    common = ["restore", str(pages), "-m", str(model), "--device", "cpu", "--precision", "fp32"]
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               "-m", "manurestore", *common, "-o", str(tmp_path / "two")],
                              capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr[-3000:]
    said = " ".join(launched.stderr.split())
    assert "shard 1/2 from the launcher" in said and "shard 2/2 from the launcher" in said, said
    single = subprocess.run([sys.executable, "-m", "manurestore", *common, "-o", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    for i in range(6):
        assert (tmp_path / "two" / f"p{i}.png").read_bytes() == (tmp_path / "one" / f"p{i}.png").read_bytes()
