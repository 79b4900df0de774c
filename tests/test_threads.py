"""Thread counts for shared machines: auto takes the free cores, an explicit count is kept, and a
command restores the count it found."""

from __future__ import annotations

import os

import pytest
import torch
from typer.testing import CliRunner

from manurestore import threads
from manurestore.cli.app import app
from manurestore.errors import UsageError


def test_auto_takes_the_cores_the_load_leaves_free(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    for busy, expected in ((0.0, 8), (2.6, 5), (7.9, 1), (30.0, 1)):
        monkeypatch.setattr(threads, "busy_cpus_now", lambda busy=busy: busy)
        assert threads.choose_threads("auto") == expected
    monkeypatch.setattr(threads, "busy_cpus_now", lambda: None)  # no /proc/stat: the load average
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 1.0, 1.0))
    assert threads.choose_threads("auto") == 5


def test_busy_cores_are_read_from_the_kernel_when_it_says():
    busy = threads.busy_cpus_now(0.05)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1) + 1e-6


def test_a_count_from_the_environment_or_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads("auto") is None
    assert threads.choose_threads("3") == 3
    for bad in ("0", "many", "-2"):
        with pytest.raises(UsageError, match="--threads"):
            threads.choose_threads(bad)


def test_a_command_runs_with_its_threads_and_gives_the_count_back(tmp_path, monkeypatch):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 180, 150)).save(tmp_path / "p.png")
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    before = torch.get_num_threads()
    result = CliRunner().invoke(app, ["degrade", str(tmp_path / "p.png"), "--op", "contrast", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert seen[0] == 1 and torch.get_num_threads() == before
    bad = CliRunner().invoke(app, ["degrade", str(tmp_path / "p.png"), "--op", "contrast", "--threads", "0"])
    assert bad.exit_code == 2 and "--threads 0" in bad.stderr
