"""Every benchmark's --smoke run: nothing in the package imports the scripts, so only this keeps them working."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# script, extra arguments, a line of figures its report must hold
CASES = [
    ("degrade_throughput.py", ["--device", "cpu"], r"manurestore +cpu +\+ uint8↔float on cpu +[\d,.]+ +[\d,.]+ +[\d.]+"),
    ("restore_throughput.py", ["--device", "cpu"], r"^vit-tiny +cpu +float32 +[\d.]+M +[\d.]+ +\d+ +[\d.]+ +[\d.]+ "),
    ("train_throughput.py", ["--device", "cpu"], r"^  full step +: [\d,.]+ ms .* [\d,.]+ img/s"),
    ("synth_throughput.py", [], r"^paper +1 +\d+×\d+ +[\d.]+ +\d+ "),
    ("cpu_restore_variants.py", [], r"^bf16 +[\d.]+ +[\d.]+× +[\d.]+ +[+-][\d.]+ "),
]


@pytest.mark.slow
@pytest.mark.parametrize("script, extra, figures", CASES, ids=[case[0] for case in CASES])
def test_benchmark_smoke_run(script, extra, figures, tmp_path):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", "--threads", "1", *extra,
                           "--json", str(report)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(figures, done.stdout, re.MULTILINE), done.stdout
    assert "targets:" in done.stdout and "benchmark wall time:" in done.stdout
    assert json.loads(report.read_text(encoding="utf-8"))["machine"]["versions"]["manurestore"]
