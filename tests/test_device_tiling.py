"""Device-side tiling: the page is padded where it lies, exactly as the host's mirror_pad pads it."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manurestore.inference.tiling import TiledRestorer, mirror_pad, mirror_pad_tensor


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 9), width=st.integers(1, 9), pads=st.tuples(*[st.integers(0, 20)] * 4),
       seed=st.integers(0, 2**16))
def test_mirror_pad_on_the_device_equals_the_host_version(height, width, pads, seed):
    page = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = mirror_pad(page, *pads)
    got = mirror_pad_tensor(torch.from_numpy(page), *pads)
    assert got.dtype == torch.uint8 and np.array_equal(got.numpy(), expected)


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def test_the_tiler_gives_an_identity_model_its_page_back_from_the_device():
    page = np.random.default_rng(1).integers(0, 256, (70, 133, 3), dtype=np.uint8)
    assert np.array_equal(TiledRestorer(Identity(), tile=32).restore(page), page)
    grey = page[..., :1]
    assert np.array_equal(TiledRestorer(Identity(), tile=32).restore(grey), grey)
