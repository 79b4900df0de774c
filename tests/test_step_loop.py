"""The training loop reads tensors on the host only on the steps that log: on a GPU every such read
waits for the device, so a read per step would keep the host from running ahead of it."""

from __future__ import annotations

import collections
import copy
import sys
from pathlib import Path

import pytest
import torch

from manurestore.training.run_folder import prepare_run_dir
from tests.test_device_crops import config, make_trainer, train_losses

READS = ("__float__", "__int__", "__bool__", "item", "tolist", "numpy", "cpu")
OURS = tuple(str(Path("manurestore") / part) for part in ("training", "models", "cli", "batches.py"))  # not the degradations


@pytest.mark.parametrize("on_device", [False, True])
def test_only_the_steps_that_log_read_tensors_on_the_host(tmp_path, monkeypatch, on_device):
    reads = collections.Counter()

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if any(part in caller for part in OURS):
                reads[f"{name} in {Path(caller).name}:{sys._getframe(1).f_lineno}"] += 1
            return original(self, *args, **kwargs)

        return read

    cfg = config(tmp_path, "run", log_every=3, epochs=1, crops_on_device=on_device)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    steps = []

    def on_event(kind, payload):
        if kind == "step":
            steps.append((payload["step"], payload["loss"] is not None, dict(reads)))
        reads.clear()  # what validation, the plan and the baseline read does not count

    trainer = make_trainer(cfg, on_event=on_event)
    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    trainer.run()
    monkeypatch.undo()
    assert any(logged for _, logged, _ in steps) and not all(logged for _, logged, _ in steps)
    for step, logged, seen in steps:
        assert logged == (step % 3 == 0 or step == trainer.total_steps)
        if not logged:
            assert not seen, f"step {step} read tensors on the host: {seen}"
    assert set(train_losses(cfg.run_dir)) == {step for step, logged, _ in steps if logged}


def test_ema_follows_the_weights(tmp_path):
    cfg = config(tmp_path, "run", ema=0.9, max_steps=2)
    trainer = make_trainer(cfg)
    before = copy.deepcopy(trainer.ema.state_dict())
    trainer.train_step(next(iter(trainer._loader(0, 0))))
    for name, weight in trainer.model.named_parameters():
        expected = before[name].lerp(weight.detach(), 1.0 - 0.9)
        assert torch.equal(trainer.ema.state_dict()[name], expected), name
