"""Shared fixtures: devices to test on, a clean plugin state per test."""

from __future__ import annotations

import os

import pytest
import torch

# Tests see only the built-ins and plugins they register themselves, unless a test opts in.
os.environ.setdefault("MANURESTORE_PLUGINS", "")
torch.set_num_threads(min(2, torch.get_num_threads()))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def fresh_plugins():
    from manurestore.plugins import reset_plugins

    reset_plugins()
    yield
    reset_plugins()
