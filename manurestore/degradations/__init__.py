"""Degradations: damage as batched tensor ops, each image with its own seeded draws.

- `base`: the contract (`Degradation`, its validated `Params`, `Range`, `Step`);
- `functional`: each op's pure tensor function and the helpers plugins build on, defined there or
  in the one-job modules it re-exports (`filters`: blurs, `staining`: stain masks, `colour`: paper
  and ink colour, `fields`: smooth random fields);
- one module per built-in op (`noise`, `blur`, `contrast`, `salt_pepper`, `yellowing`, `stains`);
- `random`: counter-based per-image random numbers; `pipeline` and `presets`: ordered steps;
- `files`: degrading image files as `manurestore degrade` does.

Nothing is imported here: importing one module never drags in (or breaks on) the others.
"""
