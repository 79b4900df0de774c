"""Degradations: damage as batched tensor ops, each image with its own seeded draws.

- `base`: the contract (`Degradation`, its validated `Params`, `Range`, `Step`);
- `functional`: each op's pure tensor function, what the op classes and plugins build on;
- one module per built-in op (`noise`, `blur`, `contrast`, `salt_pepper`, `yellowing`, `stains`);
- `random`: counter-based per-image random numbers; `pipeline` and `presets`: ordered steps;
- `files`: degrading image files as `manurestore degrade` does.

Nothing is imported here: importing one module never drags in (or breaks on) the others.
"""
