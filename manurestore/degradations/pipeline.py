"""Pipeline: ordered degradation steps, each firing per image with its own probability.

>>> pipeline = Pipeline.from_preset("aged")
>>> degraded = pipeline(clean_batch, seeds=[11, 12, 13])              # doctest: +SKIP
>>> degraded, record = pipeline(clean_batch, seeds, record=True)      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from manurestore.degradations.base import Degradation, Step
from manurestore.degradations.presets import read_preset
from manurestore.degradations.random import ImageRandom
from manurestore.devices import to_device
from manurestore.memory import new_batch
from manurestore.plugins import get_op


class Pipeline:
    """Applies its steps in order; clamps to [0, 1] once at the end.

    `undamaged` is the share of images left exactly as they came (a seeded draw per image): a
    restorer trained only on damaged images learns to "repair" clean ones too.
    """

    def __init__(self, steps: Sequence[Step], name: str = "custom", description: str = "", undamaged: float = 0.0):
        if not 0.0 <= undamaged < 1.0:
            raise ValueError(f"undamaged must be a share in [0, 1), got {undamaged}")
        self.steps = list(steps)
        self.name = name
        self.description = description
        self.undamaged = undamaged

    @classmethod
    def from_preset(cls, name_or_path: str | Path) -> "Pipeline":
        """A shipped preset by name (`aged`) or a user's TOML file by path."""
        preset = read_preset(name_or_path)
        return cls(preset.steps, name=preset.name, description=preset.description, undamaged=preset.undamaged)

    @classmethod
    def from_ops(cls, names: Sequence[str]) -> "Pipeline":
        """Single ops at their default ranges, each always firing, in the given order."""
        return cls([Step(get_op(name)(), 1.0) for name in names], name="+".join(names))

    def __call__(self, x: Tensor, seeds: Tensor | Sequence[int], *, record: bool = False, overwrite_input: bool = False):
        """Degrade a (B, C, H, W) float batch in [0, 1]; `seeds` holds one integer per image.

        Returns the batch, or (batch, record) where record[i] lists the ops that fired on
        image i with their drawn values. `x` is left untouched unless `overwrite_input` says the
        caller no longer needs it (a batch made just for this call), which saves a copy.
        """
        if x.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        rand = ImageRandom(seeds, device=x.device)
        if len(rand) != x.shape[0]:
            raise ValueError(f"{len(rand)} seeds for a batch of {x.shape[0]} images")
        history: list[list[dict]] = [[] for _ in range(x.shape[0])]
        # Drawn apart from the steps' streams, so a preset without the share degrades as before.
        spared = _chance(rand.fork("undamaged"), self.undamaged) if self.undamaged > 0 else None
        # `owned`: x is a tensor the pipeline made (never the caller's), so ops may write into it.
        owned = overwrite_input and x.is_contiguous()
        if not x.is_contiguous():
            x, owned = new_batch(x.shape, x.dtype, x.device).copy_(x), True
        for position, step in enumerate(self.steps):
            step_rand = rand.fork(position, step.op.name)
            if 0.0 < step.p < 1.0:
                fires = _chance(step_rand.fork("fires"), step.p)
            else:  # uniform() lies in [0, 1): the draw would decide nothing
                fires = np.full(x.shape[0], step.p >= 1.0)
            if isinstance(spared, Tensor):  # seeds given on an accelerator: decided there
                fires = torch.as_tensor(fires, device=x.device) & ~spared
            elif spared is not None:
                fires = fires & ~spared
            op_rand = step_rand.fork("op")
            draws = step.op.sample(x.shape[0], op_rand, x.device)
            x, owned = self._apply_where(x, owned, step.op, draws, op_rand, fires)
            if record:
                _record(history, step.op.name, draws, fires)
        x = x.clamp_(0.0, 1.0) if owned else torch.clamp(x, 0.0, 1.0, out=new_batch(x.shape, x.dtype, x.device))
        return (x, history) if record else x

    @staticmethod
    def _apply_where(x: Tensor, owned: bool, op: Degradation, draws, rand: ImageRandom, fires: np.ndarray | Tensor):
        """(the batch with `op` applied to the images that fire, whether the pipeline owns it).

        An op that takes `out=` writes into batches the pipeline owns, and what it returns with
        `out=None` is a new tensor, so owned too; an op without `out` may return `x` itself or
        a view of it, so its result is never written into. `fires` on the host (the usual case)
        chooses the images without reading anything back from the device.
        """
        chosen = np.flatnonzero(fires) if isinstance(fires, np.ndarray) else fires.nonzero().view(-1)
        if len(chosen) == x.shape[0]:  # every image
            if owned and op.accepts_out:
                return op.apply(x, draws, rand, out=x), True
            return op.apply(x, draws, rand), op.accepts_out
        if len(chosen) == 0:
            return x, owned
        sub_rand = rand.subset(chosen)
        on_host = torch.from_numpy(chosen) if isinstance(chosen, np.ndarray) else None
        if on_host is not None:
            chosen = to_device(on_host, x.device)
        part = x[chosen]  # a copy, so always ours
        # Draws an op keeps on the host are chosen there (on_host exists whenever they can be).
        sub_draws = {k: v[on_host] if on_host is not None and v.device.type == "cpu" else v[chosen] for k, v in draws.items()}
        part = op.apply(part, sub_draws, sub_rand, out=part) if op.accepts_out else op.apply(part, sub_draws, sub_rand)
        if owned:
            return x.index_copy_(0, chosen, part), True
        return new_batch(x.shape, x.dtype, x.device).copy_(x).index_copy_(0, chosen, part), True

    def only(self, scope: str) -> "Pipeline":
        """The steps whose op has this `scope` ("page" or "local"), in order: what a restorer's
        tiles are trained on when page-level damage is left to its page-context branch."""
        steps = [step for step in self.steps if step.op.scope == scope]
        return Pipeline(steps, name=f"{self.name}[{scope}]", description=self.description, undamaged=self.undamaged)

    def describe(self) -> list[dict]:
        """The steps as plain values (the `undamaged` share is the pipeline's, not a step's)."""
        return [{"op": s.op.name, "p": s.p, **s.op.params.model_dump(mode="json")} for s in self.steps]


def _chance(rand: ImageRandom, probability: float) -> np.ndarray | Tensor:
    """(B,) bool: which images a per-image draw puts below `probability`; on the host where the
    seeds are (always, but for seeds given on an accelerator)."""
    on_host = rand.host_uniform()
    return on_host < probability if on_host is not None else rand.uniform() < probability


def _record(history: list[list[dict]], name: str, draws, fires: np.ndarray | Tensor) -> None:
    fired = fires.tolist()
    values = {key: value.tolist() for key, value in draws.items()}
    for index, did_fire in enumerate(fired):
        if did_fire:
            history[index].append({"op": name, **{key: rows[index] for key, rows in values.items()}})
