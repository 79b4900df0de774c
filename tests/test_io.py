"""read_image / write_image against a bad-input corpus generated in tmp_path (no binary fixtures)."""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageFile, ImageOps

from manurestore.data import io as mio
from manurestore.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    MAX_PIXELS_ENV,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    OutputExistsError,
    PixelLimitSettingError,
    ProtectedPathError,
    protected_paths,
    read_image,
    write_image,
)
from manurestore.errors import ManurestoreError, UsageError

LOSSLESS = (".png", ".tif", ".tiff", ".bmp")


def noise(h: int = 24, w: int = 32, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def smooth(h: int = 32, w: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4, y * 6, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def png16(values: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""
    h, w = values.shape[:2]
    rows = b"".join(b"\0" + values[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def expect_read_error(path: Path, fragment: str, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError) as caught:
        read_image(path, **kwargs)
    message = str(caught.value)
    assert message.startswith(str(path) + ": "), message
    assert fragment in message, message
    assert "\n" not in message
    assert isinstance(caught.value, ManurestoreError) and caught.value.exit_code == 1
    return caught.value


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- formats and modes


@pytest.mark.parametrize("suffix", IMAGE_SUFFIXES)
def test_every_suffix_round_trips(tmp_path: Path, suffix: str) -> None:
    rgb, gray = smooth(), smooth()[:, :, 1]
    out = read_image(write_image(tmp_path / f"rgb{suffix}", rgb))
    out_gray = read_image(write_image(tmp_path / f"gray{suffix}", gray))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    if suffix == ".webp":  # WebP has no grayscale mode: gray comes back as three equal channels
        assert out_gray.shape == (*gray.shape, 3)
        out_gray = out_gray[:, :, :1]
    assert out_gray.shape == (*gray.shape, 1)
    if suffix in LOSSLESS:
        np.testing.assert_array_equal(out, rgb)
        np.testing.assert_array_equal(out_gray[:, :, 0], gray)
    else:
        assert np.abs(out.astype(int) - rgb).mean() < 3
        assert np.abs(out_gray[:, :, 0].astype(int) - gray).mean() < 3


def test_webp_quality_100_is_lossless_and_jpeg_quality_matters(tmp_path: Path) -> None:
    image = noise()
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.webp", image, quality=100)), image)
    small = write_image(tmp_path / "q10.jpg", image, quality=10).stat().st_size
    large = write_image(tmp_path / "q95.jpg", image, quality=95).stat().st_size
    assert small < large


@settings(max_examples=25, deadline=None)
@given(
    array=st.integers(1, 9).flatmap(
        lambda h: st.integers(1, 9).flatmap(
            lambda w: st.sampled_from([(h, w), (h, w, 1), (h, w, 3)]).flatmap(
                lambda shape: arrays(np.uint8, shape)
            )
        )
    ),
    suffix=st.sampled_from(LOSSLESS),
)
def test_lossless_round_trip_property(array: np.ndarray, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = read_image(write_image(Path(folder) / f"x{suffix}", array))
    expected = array if array.ndim == 3 else array[:, :, None]
    np.testing.assert_array_equal(out, expected)
    assert out.flags.writeable and out.flags.c_contiguous


def test_one_by_one_image(tmp_path: Path) -> None:
    for suffix in IMAGE_SUFFIXES:
        out = read_image(write_image(tmp_path / f"one{suffix}", np.full((1, 1, 3), 200, np.uint8)))
        assert out.shape == (1, 1, 3)


def test_grayscale_sources_give_one_channel(tmp_path: Path) -> None:
    gray = smooth()[:, :, 0]
    cases = {
        "l.png": Image.fromarray(gray),
        "bilevel.png": Image.fromarray(gray > 100),
        "la.png": Image.fromarray(np.stack([gray, np.full_like(gray, 255)], -1), "LA"),
    }
    palette = Image.fromarray(gray).convert("P")  # a gray palette
    cases["graypal.png"] = palette
    for name, image in cases.items():
        out = read_image(save(image, tmp_path / name))
        assert out.shape == (*gray.shape, 1), name
    bilevel = read_image(tmp_path / "bilevel.png")
    assert set(np.unique(bilevel)) <= {0, 255}
    colour_palette = Image.fromarray(smooth()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert read_image(save(colour_palette, tmp_path / "pal.png")).shape[2] == 3


def test_mode_forces_channels(tmp_path: Path) -> None:
    rgb = write_image(tmp_path / "rgb.png", smooth())
    gray = write_image(tmp_path / "gray.png", smooth()[:, :, 0])
    as_l = read_image(rgb, "L")
    assert as_l.shape[2] == 1
    np.testing.assert_array_equal(as_l[:, :, 0], np.asarray(Image.open(rgb).convert("L")))
    as_rgb = read_image(gray, "RGB")
    assert as_rgb.shape[2] == 3
    assert (as_rgb[:, :, 0] == as_rgb[:, :, 2]).all()
    with pytest.raises(ValueError):
        read_image(gray, "CMYK")


def test_rgba_transparent_is_white_not_black(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red, transparent
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[0, 1] = (0, 0, 0, 128)  # half-transparent black
    out = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    assert out.shape == (4, 4, 3)
    assert tuple(out[3, 3]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert all(abs(int(v) - 127) <= 1 for v in out[0, 1])
    assert (read_image(tmp_path / "rgba.png", "L")[3, 3] == 255).all()


def test_la_and_palette_transparency_composite_on_white(tmp_path: Path) -> None:
    la = np.zeros((3, 3, 2), np.uint8)
    la[0, 0] = (40, 255)
    out = read_image(save(Image.fromarray(la, "LA"), tmp_path / "la.png"))
    assert out.shape == (3, 3, 1) and out[0, 0, 0] == 40 and out[2, 2, 0] == 255

    pal = Image.new("P", (3, 3), 1)
    pal.putpalette([0, 0, 0, 250, 10, 10] + [0, 0, 0] * 254)
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0
    path = save(pal, tmp_path / "paltrans.png", transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_image(path)
    assert out.shape == (3, 3, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (250, 10, 10)


def test_sixteen_bit_png_and_tiff_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 1, 128, 129, 257, 32768, 65280, 65535]], np.uint16)
    expected = [0, 0, 0, 1, 1, 128, 254, 255]
    png = save(Image.fromarray(values), tmp_path / "g16.png")
    tiff = save(Image.fromarray(values), tmp_path / "g16.tif")
    tiff_be = save(Image.fromarray(values.astype(">u2")), tmp_path / "g16be.tif")
    for path in (png, tiff, tiff_be):
        out = read_image(path)
        assert out.shape == (1, 8, 1), path
        assert out[0, :, 0].tolist() == expected, path
    assert read_image(png, "RGB")[0, 5].tolist() == [128, 128, 128]


@settings(max_examples=20, deadline=None)
@given(arrays(np.uint16, st.tuples(st.integers(1, 6), st.integers(1, 6))))
def test_sixteen_bit_scaling_property(values: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = read_image(save(Image.fromarray(values), Path(folder) / "x.png"))
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[:, :, 0], expected)


def test_sixteen_bit_rgb_png(tmp_path: Path) -> None:
    values = np.array([[[0, 32768, 65535], [65535, 65535, 65535]]], np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png16(values, color_type=2))
    out = read_image(path)
    assert out.shape == (1, 2, 3)
    assert out[0, 0].tolist() == [0, 128, 255] and out[0, 1].tolist() == [255, 255, 255]


def test_thirty_two_bit_integer_tiff(tmp_path: Path) -> None:
    values = np.array([[-5, 0, 32768, 65535, 70000]], np.int32)
    path = save(Image.fromarray(values, "I"), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    assert read_image(path)[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_float_tiff_is_taken_as_0_to_255(tmp_path: Path) -> None:
    path = save(Image.fromarray(np.array([[-3.0, 0.4, 127.6, 300.0]], np.float32), "F"), tmp_path / "f.tif")
    assert read_image(path)[0, :, 0].tolist() == [0, 0, 128, 255]


def test_cmyk_jpeg_has_correct_colours(tmp_path: Path) -> None:
    colours = {(0, 0, 0, 0): (255, 255, 255), (0, 0, 0, 255): (0, 0, 0), (255, 0, 0, 0): (0, 255, 255),
               (128, 0, 0, 128): (63, 127, 127)}
    for cmyk, rgb in colours.items():
        path = save(Image.new("CMYK", (8, 8), cmyk), tmp_path / f"cmyk{cmyk[0]}_{cmyk[3]}.jpg", quality=100)
        out = read_image(path)
        assert out.shape == (8, 8, 3)
        assert np.abs(out.astype(int) - rgb).max() <= 3, (cmyk, out[0, 0])


def test_cmyk_fallback_for_old_pillow_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmyk = np.random.default_rng(1).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    path = save(Image.fromarray(cmyk, "CMYK"), tmp_path / "cmyk.tif")
    monkeypatch.setattr(mio, "_PILLOW_CMYK_OK", False)
    c, k = cmyk[:, :, :3].astype(int), cmyk[:, :, 3:].astype(int)
    expected = ((255 - c) * (255 - k) + 127) // 255
    np.testing.assert_array_equal(read_image(path), expected)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_exif_orientation_6_transposes_jpeg(tmp_path: Path) -> None:
    path = save(Image.fromarray(smooth(16, 40)), tmp_path / "rotated.jpg", exif=exif_bytes(6))
    out = read_image(path)
    assert out.shape == (40, 16, 3)
    assert out.flags.writeable and out.flags.c_contiguous


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_exif_orientations_match_pillow(tmp_path: Path, orientation: int) -> None:
    path = save(Image.fromarray(noise(5, 7)), tmp_path / f"o{orientation}.png", exif=exif_bytes(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = read_image(path)
    np.testing.assert_array_equal(out, expected)
    assert out.flags.writeable and out.flags.c_contiguous


def test_unicode_and_spaces_in_names(tmp_path: Path) -> None:
    folder = tmp_path / "हस्तलिखित पोथी"
    path = write_image(folder / "पाण्डुलिपि scan 01 ॐ.png", smooth())
    np.testing.assert_array_equal(read_image(path), smooth())
    assert path.name == "पाण्डुलिपि scan 01 ॐ.png"
    long_name = "पाण्डुलिपि" * 8 + ".png"  # 240 bytes: the temp file name must still fit in 255
    np.testing.assert_array_equal(read_image(write_image(folder / long_name, smooth())), smooth())
    assert no_temp_files(folder)


# --------------------------------------------------------------------------- bad input


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.jpg"
    path.touch()
    expect_read_error(path, "file is empty (0 bytes)")


def test_text_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("पत्र 12: these are my notes\nline two\n", encoding="utf-8")
    expect_read_error(path, "not an image file (looks like a text file)")


def test_binary_junk_and_unsupported_formats(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(bytes(range(256)) * 4)
    expect_read_error(junk, "not an image file (unrecognised format")
    gif = save(Image.new("L", (4, 4)), tmp_path / "anim.gif")
    expect_read_error(gif, "GIF is not supported")
    header_only = tmp_path / "header.png"
    header_only.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    expect_read_error(header_only, "corrupt or truncated PNG header")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".bmp"])
def test_truncated_files_raise(tmp_path: Path, suffix: str) -> None:
    whole = write_image(tmp_path / f"whole{suffix}", noise(64, 80))
    data = whole.read_bytes()
    cut = tmp_path / f"x{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    expect_read_error(cut, "truncated")


def test_truncated_jpeg_raises_even_if_pillow_is_told_to_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_image(tmp_path / "whole.jpg", noise(64, 80)).read_bytes()
    cut = tmp_path / "x.jpg"
    cut.write_bytes(data[:-40])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    expect_read_error(cut, "x.jpg: truncated image data")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as found


def test_truncated_webp_is_an_error(tmp_path: Path) -> None:
    data = write_image(tmp_path / "whole.webp", noise(64, 80)).read_bytes()
    cut = tmp_path / "x.webp"
    cut.write_bytes(data[: len(data) // 2])
    expect_read_error(cut, "x.webp: truncated image data")


def test_directory_and_missing_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    expect_read_error(folder, "is a folder")
    expect_read_error(tmp_path / "absent.jpg", "no such file")


def test_messages_stay_on_one_line_for_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert "\n" not in str(caught.value) and "bad\\nname.jpg" in str(caught.value)


# --------------------------------------------------------------------------- pixel limit


def test_pixel_limit_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", np.zeros((10, 12), np.uint8))
    loads = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1) or original(self))
    error = expect_read_error(path, "12×10 = 120 pixels, over the limit of 100 pixels", max_pixels=100)
    assert isinstance(error, ImageTooLargeError)
    assert MAX_PIXELS_ENV in str(error) and "limit" in str(error)
    assert loads == []  # refused before decoding
    assert read_image(path, max_pixels=120).shape == (10, 12, 1)  # the limit itself is allowed


def test_pixel_limit_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", np.zeros((10, 12), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    expect_read_error(path, "over the limit")
    assert read_image(path, max_pixels=1000).shape == (10, 12, 1)  # the argument wins
    monkeypatch.setenv(MAX_PIXELS_ENV, "1_000")
    assert read_image(path).shape == (10, 12, 1)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(PixelLimitSettingError) as caught:
        read_image(path)
    assert isinstance(caught.value, UsageError) and MAX_PIXELS_ENV in str(caught.value)
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert mio.max_pixels_limit() == DEFAULT_MAX_PIXELS == 250_000_000
    with pytest.raises(PixelLimitSettingError):
        read_image(path, max_pixels=0)


def test_pillow_bomb_check_does_not_interfere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", np.zeros((30, 40), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would raise at 200+, warn at 100+
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (30, 40, 1)
    error = expect_read_error(path, "40×30 = 1200 pixels", max_pixels=1000)
    assert "Decompression" not in str(error)
    assert Image.MAX_IMAGE_PIXELS == 100  # global setting left as found


def test_concurrent_reads_restore_pillow_settings(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = [write_image(tmp_path / f"{i}.png", noise(40, 40, seed=i)) for i in range(4)]
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read_image, paths * 10))
    assert all(r.shape == (40, 40, 3) for r in results)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


# --------------------------------------------------------------------------- writing


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_image(tmp_path / "out.png", smooth())
    before = path.read_bytes()
    with pytest.raises(OutputExistsError) as caught:
        write_image(path, noise())
    assert str(caught.value).startswith(str(path)) and "overwrite" in str(caught.value)
    assert path.read_bytes() == before
    write_image(path, noise(), overwrite=True)
    np.testing.assert_array_equal(read_image(path), noise())
    assert no_temp_files(tmp_path)


def test_write_never_replaces_protected_inputs(tmp_path: Path) -> None:
    source = write_image(tmp_path / "in" / "page.png", smooth())
    before = source.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(source)
    relative = os.path.relpath(source)
    for protected in ([source], (str(source),), {source.resolve()}, protected_paths([relative])):
        for target in (source, link, tmp_path / "in" / ".." / "in" / "page.png"):
            with pytest.raises(ProtectedPathError) as caught:
                write_image(target, noise(), overwrite=True, protected=protected)
            assert "input" in str(caught.value) and "\n" not in str(caught.value)
    assert source.read_bytes() == before
    assert write_image(tmp_path / "other.png", noise(), protected=protected_paths([source])).exists()


def test_write_failure_leaves_no_temp_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "out.png", smooth())
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial data")
        raise OSError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageWriteError) as caught:
        write_image(path, noise(), overwrite=True)
    assert str(caught.value).startswith(str(path))
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "new.png", noise())
    assert path.read_bytes() == before
    assert not (tmp_path / "new.png").exists()
    assert no_temp_files(tmp_path)

    def interrupted_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "new.png", noise())
    assert no_temp_files(tmp_path) and not (tmp_path / "new.png").exists()


def test_write_race_and_no_hard_link_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def someone_else_wrote_it(src, dst):
        raise FileExistsError(dst)

    monkeypatch.setattr(os, "link", someone_else_wrote_it)
    with pytest.raises(OutputExistsError):
        write_image(tmp_path / "a.png", smooth())
    assert no_temp_files(tmp_path) and not (tmp_path / "a.png").exists()

    def no_hard_links(src, dst):
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "b.png", smooth())), smooth())
    assert no_temp_files(tmp_path)


def test_write_under_a_file_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "notafolder"
    blocker.write_text("x")
    for target in (blocker / "out.png", blocker / "deeper" / "out.png"):
        with pytest.raises(ImageWriteError) as caught:
            write_image(target, smooth())
        message = str(caught.value)
        assert message.startswith(str(target.parent) + ":") and "\n" not in message
        assert str(blocker) in message
    assert blocker.read_text() == "x"


def test_write_into_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(ImageWriteError) as caught:
            write_image(folder / "out.png", smooth())
        assert str(caught.value).startswith(str(folder) + ":") and "permission denied" in str(caught.value)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_write_validates_array_suffix_and_quality(tmp_path: Path) -> None:
    cases = [
        (tmp_path / "f.png", smooth().astype(np.float32), "uint8"),
        (tmp_path / "four.png", np.zeros((4, 4, 4), np.uint8), "shape"),
        (tmp_path / "empty.png", np.zeros((0, 4, 3), np.uint8), "empty"),
        (tmp_path / "list.png", [[1, 2]], "numpy"),
        (tmp_path / "x.gif", smooth(), "unknown image format"),
        (tmp_path / "noext", smooth(), "no suffix"),
        (tmp_path / "wide.webp", np.zeros((1, 17000), np.uint8), "too large for WEBP"),
    ]
    for path, array, fragment in cases:
        with pytest.raises(ImageWriteError) as caught:
            write_image(path, array)
        assert str(caught.value).startswith(str(path)) and fragment in str(caught.value), str(caught.value)
        assert not path.exists()
    folder_target = tmp_path / "dir.png"
    folder_target.mkdir()
    with pytest.raises(ImageWriteError, match="is a folder"):
        write_image(folder_target, smooth(), overwrite=True)
    for quality in (0, 101, 9.5):
        with pytest.raises(UsageError):
            write_image(tmp_path / "q.jpg", smooth(), quality=quality)
    assert no_temp_files(tmp_path)


def test_write_accepts_views_and_follows_umask(tmp_path: Path) -> None:
    base = noise(6, 8)
    flipped = base[:, ::-1]
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "v.png", flipped)), flipped)
    single = base[:, :, :1]
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "s.png", single)), single)
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "mode.png", base)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert write_image(tmp_path / "new" / "deep" / "x.png", base).exists()  # folders are created


def test_errors_subclass_project_errors() -> None:
    assert issubclass(ImageReadError, ManurestoreError) and ImageReadError.exit_code == 1
    assert issubclass(ImageWriteError, ManurestoreError) and ImageWriteError.exit_code == 1
    assert issubclass(PixelLimitSettingError, UsageError) and PixelLimitSettingError.exit_code == 2
    assert IMAGE_SUFFIXES == tuple(s.lower() for s in IMAGE_SUFFIXES)
    assert all(s.startswith(".") for s in IMAGE_SUFFIXES)


def test_read_from_bytes_written_by_other_tools(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(smooth()).save(buffer, "BMP")
    path = tmp_path / "mislabelled.jpg"  # a BMP named .jpg: the content decides
    path.write_bytes(buffer.getvalue())
    np.testing.assert_array_equal(read_image(path), smooth())
