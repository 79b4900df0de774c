"""read_image / write_image: the only way manurestore touches image files; write_text for the
reports and records beside them; the rules every output obeys.

Reading always returns a C-contiguous, writable uint8 array of shape H×W×C with
C=3 (RGB) or C=1 (gray); writing is atomic and never replaces a command's inputs
(`check_output` before the work, `protected=` at each write). Every failure is a
one-line error that starts with the path it concerns.
"""

from __future__ import annotations

import errno
import os
import threading
import unicodedata
from collections.abc import Collection, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from manurestore.atomic import atomic_write_text, open_temp, publish
from manurestore.errors import ManurestoreError, UsageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "OutOfMemoryPageError",
    "OutputError",
    "OutputExistsError",
    "PixelLimitSettingError",
    "ProtectedPathError",
    "ProtectedPaths",
    "check_environment",
    "check_not_input",
    "check_output",
    "display_path",
    "is_input",
    "is_out_of_memory",
    "max_pixels_limit",
    "out_of_memory_error",
    "page_memory",
    "protected_paths",
    "read_image",
    "write_image",
    "write_text",
]

#: Suffixes (lowercase, with the dot) that manurestore reads and writes.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")

#: Images with more pixels than this are refused before decoding (250 megapixels).
DEFAULT_MAX_PIXELS = 250_000_000
#: Environment variable that raises (or lowers) the pixel limit.
MAX_PIXELS_ENV = "MANURESTORE_MAX_PIXELS"

# Pillow plugins tried when opening (camera JPEGs that Pillow calls MPO open through "JPEG").
_READ_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
_WRITE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
# Largest side each encoder accepts.
_MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}


class ImageReadError(ManurestoreError):
    """A file that is not a readable image; the message names it."""


class ImageTooLargeError(ImageReadError):
    """An image over the pixel limit, refused before decoding."""


class OutputError(ManurestoreError):
    """An output file (image, report, record) that could not be written; the message names it."""


class ImageWriteError(OutputError):
    """An image that could not be written; the message names the destination."""


class OutputExistsError(OutputError):
    """The destination exists and overwrite was not asked for."""


class ProtectedPathError(OutputError):
    """The destination is one of the command's inputs."""


class PixelLimitSettingError(UsageError):
    """MANURESTORE_MAX_PIXELS (or the max_pixels argument) is not a positive whole number."""


class OutOfMemoryPageError(ManurestoreError):
    """A page that did not fit in memory; the message names it, the pixel limit and what to change."""


# --------------------------------------------------------------------------- helpers

_UNSAFE_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


def display_path(path: str | os.PathLike) -> str:
    """`path` as one printable line: control characters and undecodable bytes are escaped."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.isprintable():
        return text
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) in _UNSAFE_CATEGORIES else char for char in text
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _parse_limit(value: object, source: str) -> int:
    if isinstance(value, bool):
        raise PixelLimitSettingError(f"{source}: {value!r} is not a number of pixels")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = float("nan")
            if not as_float.is_integer():
                raise PixelLimitSettingError(
                    f"{source}: {text!r} is not a whole number of pixels (example: 400000000)"
                ) from None
            number = int(as_float)
    if number <= 0:
        raise PixelLimitSettingError(f"{source}: the pixel limit must be positive, got {number}")
    return number


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 1_000_000 else f"{pixels} pixels"


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else $MANURESTORE_MAX_PIXELS, else 250 megapixels."""
    if max_pixels is not None:
        return _parse_limit(max_pixels, "max_pixels")
    env = os.environ.get(MAX_PIXELS_ENV)
    if env is not None and env.strip():
        return _parse_limit(env, MAX_PIXELS_ENV)
    return DEFAULT_MAX_PIXELS


def check_environment() -> None:
    """Refuse a bad setting in the environment (PixelLimitSettingError, a UsageError) before any
    work, so a typo is one line at the start rather than one failure per image after the model
    has loaded. Every command that reads images calls it first."""
    max_pixels_limit()


# --------------------------------------------------------------------------- running out of memory

# What allocators say when they run out: torch's CPU allocator, CUDA, and the C library.
_OUT_OF_MEMORY_TEXT = ("out of memory", "can't allocate memory", "defaultcpuallocator")


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError, or a RuntimeError from an allocator that ran out."""
    if isinstance(error, MemoryError):
        return True
    if not isinstance(error, RuntimeError):
        return False
    return type(error).__name__ == "OutOfMemoryError" or any(text in str(error).lower() for text in _OUT_OF_MEMORY_TEXT)


_FREE_MEMORY = "free some memory"


def out_of_memory_error(page: str | os.PathLike, hint: str = _FREE_MEMORY, limit: int | None = None) -> OutOfMemoryPageError:
    """The one line for a page that did not fit in memory: the page, the limit, what to change."""
    limit = max_pixels_limit() if limit is None else limit
    return OutOfMemoryPageError(
        f"{display_path(page)}: out of memory on this page (pixel limit {_amount(limit)}); "
        f"lower {MAX_PIXELS_ENV} so pages this large are refused, or {hint}"
    )


@contextmanager
def page_memory(page: str | os.PathLike, hint: str = _FREE_MEMORY) -> Iterator[None]:
    """Turn running out of memory while working on `page` into an OutOfMemoryPageError, so the
    page is reported on one line and the others go on; `hint` says what the command can change
    (e.g. "use a smaller --tile or --device cpu")."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        raise out_of_memory_error(page, hint) from None


# Pillow keeps two process-wide switches that would interfere with our own checks:
# MAX_IMAGE_PIXELS (its decompression-bomb limit, which would warn or fail before ours)
# and LOAD_TRUNCATED_IMAGES (which, if some other code set it, would make truncated
# files decode silently). While any read_image call is running they are set to
# "off"/False, and the caller's values come back when the last concurrent read ends.
_pillow_lock = threading.Lock()
_pillow_users = 0
_pillow_saved: tuple[int | None, bool] = (None, False)


@contextmanager
def _strict_pillow() -> Iterator[None]:
    global _pillow_users, _pillow_saved
    with _pillow_lock:
        if _pillow_users == 0:
            _pillow_saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
            Image.MAX_IMAGE_PIXELS = None
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _pillow_users += 1
    try:
        yield
    finally:
        with _pillow_lock:
            _pillow_users -= 1
            if _pillow_users == 0:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = _pillow_saved


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)


def _sniff(head: bytes) -> str | None:
    """Format a supported file claims to be from its first bytes, or None."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe_unknown(head: bytes) -> str:
    """Why a file Pillow cannot identify is not an image, for the error message."""
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF is not supported; convert it to PNG"
    if head.startswith(b"%PDF"):
        return "it is a PDF document; export its pages as PNG or TIFF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
        return "HEIC/AVIF is not supported; convert it to JPEG or PNG"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000 is not supported; convert it to PNG or TIFF"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(char.isprintable() or char in "\t\r\n" for char in text.lstrip("\ufeff")):
            return "looks like a text file"
        break
    supported = ", ".join(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
    return f"unrecognised format; supported: {supported}"


_TRUNCATION_HINTS = ("truncated", "premature end", "unexpected end")


def _riff_truncated(head: bytes, size: int) -> bool:
    """A WebP file shorter than the length its RIFF header declares."""
    return head[:4] == b"RIFF" and len(head) >= 8 and size < int.from_bytes(head[4:8], "little") + 8


def _decode_error(shown: str, error: Exception, *, truncated: bool = False) -> ImageReadError:
    detail = _one_line(error)
    if truncated or any(hint in detail.lower() for hint in _TRUNCATION_HINTS):
        return ImageReadError(f"{shown}: truncated image data (the file ends early; copy or scan it again)")
    return ImageReadError(f"{shown}: corrupt or truncated image data ({detail})")


# Exact 16-bit → 8-bit rounding, value * 255 / 65535, as a lookup table (64 KiB).
_LUT16 = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})


def _is_gray(image: Image.Image) -> bool:
    mode = image.mode
    if mode in _GRAY_MODES or mode.startswith("I;"):
        return True
    if mode in ("P", "PA"):
        palette = image.getpalette("RGB")
        if palette:
            rgb = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
            return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())
    return False


def _cmyk_is_multiplicative() -> bool:
    pixel = Image.new("CMYK", (1, 1), (128, 0, 0, 128)).convert("RGB").getpixel((0, 0))
    return pixel == (63, 127, 127)


# Older Pillow releases convert CMYK with R = 255 - C - K (far too dark); recent ones
# use R = (255 - C)(255 - K)/255, which is what every other viewer shows.
_PILLOW_CMYK_OK = _cmyk_is_multiplicative()


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    if _PILLOW_CMYK_OK:
        return image.convert("RGB")
    cmyk = np.asarray(image).astype(np.uint32)
    white = 255 - cmyk[:, :, 3:4]
    rgb = ((255 - cmyk[:, :, :3]) * white + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8))


def _high_depth_to_gray(image: Image.Image) -> np.ndarray:
    """I;16*, I (treated as 16-bit, the range Pillow uses for 16-bit PNGs) and F → uint8 H×W."""
    values = np.asarray(image)
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        return _LUT16[values]
    if values.dtype.kind in "iu":
        return _LUT16[np.clip(values, 0, 65535)]
    # F: values are taken as 0-255, as Pillow's own conversion does.
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _flatten_alpha(image: Image.Image, target: str) -> Image.Image:
    """Composite an image with alpha (or a transparent palette entry) on white."""
    if image.mode not in ("RGBA", "LA"):
        image = image.convert("LA" if image.mode in ("La", "L") else "RGBA")
    background = Image.new(target, image.size, 255 if target == "L" else (255, 255, 255))
    background.paste(image.convert(target), mask=image.getchannel("A"))
    return background


def _convert(image: Image.Image, target: str, shown: str) -> np.ndarray:
    """Pillow image (any mode) → uint8 array in `target` ("L" → H×W, "RGB" → H×W×3)."""
    mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if mode == "I" or mode == "F" or mode.startswith("I;"):
        gray = _high_depth_to_gray(image)
        if has_alpha:  # a tRNS colour key on 16-bit gray: that value becomes white
            gray[np.asarray(image) == image.info["transparency"]] = 255
        return gray if target == "L" else np.repeat(gray[:, :, None], 3, axis=2)
    if has_alpha:
        image = _flatten_alpha(image, target)
    elif mode == "CMYK":
        image = _cmyk_to_rgb(image)
    if image.mode != target:
        try:
            image = image.convert(target)
        except ValueError:
            raise ImageReadError(f"{shown}: unsupported colour mode {mode}; save it as RGB or grayscale") from None
    return np.asarray(image)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block must not make the pixels unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an H×W×C array; views, copied once by the caller."""
    if orientation in (5, 6, 7, 8):
        array = array.transpose(1, 0, 2)
    if orientation in (2, 6):
        return array[:, ::-1]
    if orientation in (3, 7):
        return array[::-1, ::-1]
    if orientation in (4, 8):
        return array[::-1]
    return array


# --------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike, mode: str | None = None, *, max_pixels: int | None = None
) -> np.ndarray:
    """Decode `path` to a writable, C-contiguous uint8 array H×W×C.

    mode None keeps grayscale sources gray (C=1) and gives RGB (C=3) for the rest;
    "RGB" or "L" forces. EXIF orientation is applied, alpha is composited on white,
    16-bit data is scaled to 8 bits. Files over the pixel limit (`max_pixels`, else
    $MANURESTORE_MAX_PIXELS, else 250 megapixels) are refused before decoding.
    Every failure is an ImageReadError whose one-line message starts with the path.
    """
    if mode not in (None, "RGB", "L"):
        raise ValueError(f"mode must be None, 'RGB' or 'L', got {mode!r}")
    limit = max_pixels_limit(max_pixels)
    shown = display_path(path)
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise ImageReadError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{shown}: is a folder, not an image file") from None
    except PermissionError:
        raise ImageReadError(f"{shown}: permission denied") from None
    except OSError as error:
        raise ImageReadError(f"{shown}: cannot open ({error.strerror or _one_line(error)})") from None
    with stream:
        try:
            info = os.fstat(stream.fileno())
            head = stream.read(64)
            stream.seek(0)
        except IsADirectoryError:
            raise ImageReadError(f"{shown}: is a folder, not an image file") from None
        except OSError as error:
            raise ImageReadError(f"{shown}: cannot read ({error.strerror or _one_line(error)})") from None
        if info.st_size == 0 and not head:
            raise ImageReadError(f"{shown}: file is empty (0 bytes)")
        with _strict_pillow():
            try:
                image = Image.open(stream, formats=_READ_FORMATS)
            except UnidentifiedImageError:
                claimed = _sniff(head)
                if claimed:
                    raise ImageReadError(
                        f"{shown}: corrupt or truncated {claimed} header (the file is damaged)"
                    ) from None
                raise ImageReadError(f"{shown}: not an image file ({_describe_unknown(head)})") from None
            except Exception as error:
                raise _decode_error(shown, error, truncated=_riff_truncated(head, info.st_size)) from None
            with image:
                width, height = image.size
                if width * height > limit:
                    raise ImageTooLargeError(
                        f"{shown}: {width}×{height} = {_amount(width * height)}, over the limit of "
                        f"{_amount(limit)}; if you trust this file, raise the limit with "
                        f"{MAX_PIXELS_ENV}={width * height} (or more)"
                    )
                try:
                    image.load()
                    orientation = _orientation(image)
                    target = mode or ("L" if _is_gray(image) else "RGB")
                    array = _convert(image, target, shown)
                except ImageReadError:
                    raise
                except Exception as error:
                    if is_out_of_memory(error):
                        raise out_of_memory_error(path, limit=limit) from None
                    raise _decode_error(shown, error, truncated=_riff_truncated(head, info.st_size)) from None
    if array.ndim == 2:
        array = array[:, :, None]
    if orientation != 1:
        array = _orient(array, orientation)
    if not (array.flags.writeable and array.flags.c_contiguous):
        # np.asarray(PIL image) is a read-only view of a bytes object; one copy fixes that.
        array = np.ascontiguousarray(array) if array.flags.writeable else np.array(array, order="C")
    return array


# --------------------------------------------------------------------------- writing


class ProtectedPaths(frozenset):
    """A command's inputs, resolved once (see protected_paths), with the (device, inode) of each
    that exists, so another name for an input (a link, a bind mount) is recognised too."""

    inodes: frozenset = frozenset()


def _inode(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def protected_paths(paths: Iterable[str | os.PathLike]) -> ProtectedPaths:
    """Resolve a command's input paths once, for is_input / write_image(protected=...) in a loop."""
    protected = ProtectedPaths(Path(path).resolve() for path in paths)
    protected.inodes = frozenset(inode for inode in map(_inode, protected) if inode is not None)
    return protected


def is_input(path: str | os.PathLike, protected: Collection[str | os.PathLike]) -> bool:
    """Whether writing `path` would replace one of `protected` (a command's inputs: any collection
    of paths, or the protected_paths(...) result, which is resolved only once)."""
    if not protected:
        return False
    if not isinstance(protected, ProtectedPaths):
        protected = protected_paths(protected)
    if Path(path).resolve() in protected:
        return True
    inode = _inode(path)
    return inode is not None and inode in protected.inodes


def _replaces_input(shown: str) -> str:
    return f"{shown}: would replace an input of this command (never done, even with --overwrite); choose another output name"


def check_not_input(path: str | os.PathLike, protected: Collection[str | os.PathLike]) -> None:
    """Before any work: a UsageError when writing `path` would replace one of the command's inputs
    (`protected`). --overwrite never permits that."""
    if is_input(path, protected):
        raise UsageError(_replaces_input(display_path(path)))


def check_output(path: str | os.PathLike, protected: Collection[str | os.PathLike], overwrite: bool) -> None:
    """Before any work: a UsageError when the output file `path` is one of the command's inputs
    (`protected`), is a folder, or exists and `overwrite` is off. Every command calls it for every
    output file it was given (images, --json, --params-out, reports) with all of its inputs."""
    check_not_input(path, protected)
    shown = display_path(path)
    if os.path.isdir(path):
        raise UsageError(f"{shown}: is a folder; give a file name")
    if not overwrite and os.path.lexists(path):
        raise UsageError(f"{shown}: already exists; pass --overwrite to replace it")


def write_text(
    path: str | os.PathLike, text: str, *, overwrite: bool = False, protected: Collection[str | os.PathLike] = ()
) -> Path:
    """Write a report or record (JSON, JSONL, HTML) atomically, by the rules write_image follows:
    never over an input in `protected`, over an existing file only with overwrite (also when
    another process wrote it meanwhile). Failures are one-line OutputErrors."""
    path = Path(path)
    shown = display_path(path)
    if is_input(path, protected):
        raise ProtectedPathError(_replaces_input(shown))
    _prepare_folder(path.parent)
    try:
        atomic_write_text(path, text, overwrite=overwrite)
    except FileExistsError:
        raise OutputExistsError(f"{shown}: already exists; pass --overwrite to replace it") from None
    except OSError as error:
        raise OutputError(f"{shown}: cannot write ({error.strerror or _one_line(error)})") from None
    return path


def _array_to_image(shown: str, array: object) -> Image.Image:
    if not isinstance(array, np.ndarray):
        raise ImageWriteError(f"{shown}: expected a numpy uint8 array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise ImageWriteError(
            f"{shown}: expected a uint8 array, got {array.dtype}; scale and convert it first "
            "(e.g. np.clip(x * 255, 0, 255).round().astype(np.uint8))"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ImageWriteError(f"{shown}: expected an H×W, H×W×1 or H×W×3 array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageWriteError(f"{shown}: cannot write an empty image (shape {array.shape})")
    return Image.fromarray(array)


def _blocking_file(folder: Path) -> Path | None:
    """The nearest ancestor of `folder` (itself included) that exists and is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _prepare_folder(folder: Path) -> None:
    shown = display_path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = _blocking_file(folder)
        what = f" ({display_path(blocker)} is a file)" if blocker is not None else ""
        raise ImageWriteError(f"{shown}: cannot create output folder, a file is in the way{what}") from None
    except PermissionError:
        raise ImageWriteError(f"{shown}: cannot create output folder (permission denied)") from None
    except OSError as error:
        raise ImageWriteError(f"{shown}: cannot create output folder ({error.strerror or _one_line(error)})") from None


def _open_temp(path: Path) -> tuple[int, Path]:
    """A new hidden temp file next to the destination; created with the usual 0666 & ~umask."""
    folder = display_path(path.parent)
    try:
        return open_temp(path)
    except PermissionError:
        raise ImageWriteError(f"{folder}: cannot write into this folder (permission denied)") from None
    except FileExistsError:
        raise ImageWriteError(f"{folder}: cannot create a temporary file") from None
    except OSError as error:
        detail = error.strerror or _one_line(error)
        if error.errno == errno.EROFS:
            detail = "read-only file system"
        raise ImageWriteError(f"{folder}: cannot write into this folder ({detail})") from None


def _save_options(fmt: str, quality: int) -> dict[str, object]:
    if fmt == "JPEG":
        # 4:4:4 chroma keeps thin red rubrics and coloured ink sharp.
        return {"quality": quality, "subsampling": 0}
    if fmt == "WEBP":
        return {"lossless": True} if quality == 100 else {"quality": quality}
    if fmt == "PNG":
        # Level 1 is ~5x faster than Pillow's default 6 for files ~5-10% larger.
        return {"compress_level": 1}
    return {}


def write_image(
    path: str | os.PathLike,
    array: np.ndarray,
    *,
    quality: int = 95,
    overwrite: bool = False,
    protected: Collection[str | os.PathLike] = (),
) -> Path:
    """Write a uint8 H×W×C (C 1 or 3) or H×W array to `path`; the format follows the suffix.

    The image is encoded into a hidden temp file in the destination folder and moved
    into place with one rename, so `path` is either untouched or complete; the temp
    file is removed on any failure. An existing file is only replaced with
    overwrite=True (OutputExistsError otherwise, also when another process wrote it
    meanwhile), and a path in `protected` (the command's inputs; pass one
    protected_paths(...) result for every write so it is resolved once) never is
    (ProtectedPathError). `quality` (1-100) applies to JPEG and WebP; WebP at 100 is lossless.
    """
    path = Path(path)
    shown = display_path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        suffix = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ImageWriteError(f"{shown}: unknown image format ({suffix}); use .png, .jpg, .tif, .bmp or .webp")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise UsageError(f"image quality must be a whole number from 1 to 100, got {quality!r}")
    image = _array_to_image(shown, array)
    if fmt in _MAX_SIDE and max(image.size) > _MAX_SIDE[fmt]:
        raise ImageWriteError(
            f"{shown}: {image.width}×{image.height} is too large for {fmt} (at most {_MAX_SIDE[fmt]} "
            "pixels a side); use .png or .tif"
        )
    if is_input(path, protected):
        raise ProtectedPathError(_replaces_input(shown))
    if os.path.isdir(path):
        raise ImageWriteError(f"{shown}: is a folder; give a file name ending in {path.suffix}")
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(f"{shown}: already exists; pass --overwrite to replace it")
    folder = path.parent
    _prepare_folder(folder)
    handle, temp = _open_temp(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=fmt, **_save_options(fmt, quality))
        publish(temp, path, overwrite)
    except BaseException as error:
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(error, ManurestoreError) or not isinstance(error, Exception):
            raise
        if isinstance(error, FileExistsError):
            raise OutputExistsError(f"{shown}: already exists; pass --overwrite to replace it") from None
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise ImageWriteError(f"{shown}: cannot write, the disk is full") from None
        if isinstance(error, PermissionError):
            raise ImageWriteError(f"{shown}: cannot write (permission denied)") from None
        if isinstance(error, OSError) and error.strerror:
            raise ImageWriteError(f"{shown}: cannot write ({error.strerror})") from None
        raise ImageWriteError(f"{shown}: cannot encode as {fmt} ({_one_line(error)})") from None
    return path
