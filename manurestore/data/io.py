"""read_image / write_image: the only way manurestore touches image files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from manurestore.errors import ManurestoreError


class ImageReadError(ManurestoreError):
    """A file that is not a readable image; the message names it."""


class ImageWriteError(ManurestoreError):
    """An image that could not be written; the message names the destination."""


def read_image(path: str | os.PathLike, mode: str | None = None) -> np.ndarray:
    """Decode `path` to uint8 H×W×C (C=3 for RGB, 1 for L); mode None keeps grayscale grayscale."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except Exception as error:  # PIL raises many types for bad files
        raise ImageReadError(f"{path}: not a readable image ({error})") from None
    if mode is None:
        mode = "L" if image.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
    array = np.asarray(image.convert(mode), dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def write_image(path: str | os.PathLike, array: np.ndarray, *, quality: int = 95, overwrite: bool = False) -> Path:
    """Write uint8 H×W×C atomically (temp file, then rename); refuse to replace unless overwrite."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path}: already exists; pass --overwrite to replace it")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(f"{path}: unknown image suffix {path.suffix!r}; use .png, .jpg, .tif, .bmp or .webp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=fmt, quality=quality)
        os.replace(temp, path)
    except OSError as error:
        raise ImageWriteError(f"{path}: cannot write ({error.strerror or error})") from None
    return path
