"""Per-image seeds: every random choice about an image derives from (job seed, image identity).

Used by the data loaders and the degradations alike, so it sits below both.
"""

from __future__ import annotations

import hashlib


def image_seed(seed: int, identity: str) -> int:
    """A 63-bit seed for one image from the job's seed and the image's identity (its relative path).

    An image's result then depends on nothing else: not the batch size, the order or its neighbours.
    """
    digest = hashlib.blake2b(f"{seed}\0{identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)
