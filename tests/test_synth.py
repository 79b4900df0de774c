"""Synthetic clean pages: determinism, geometry, valid Devanagari, and the `synth` command."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFont, features
from typer.testing import CliRunner

from manurestore.cli import synth as synth_cli
from manurestore.data import synth
from manurestore.data.synth.fonts import FontChoice, font_bytes
from manurestore.errors import ManurestoreError, UsageError

SMALL = (192, 96)  # most tests render small pages: same code paths, a fraction of the time


# ------------------------------------------------------------------------------------------
# pages
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", synth.KINDS)
def test_same_seed_gives_the_same_bytes(kind):
    a = synth.generate_page(11, kind, SMALL)
    b = synth.generate_page(11, kind, SMALL)
    assert a.dtype == np.uint8 and a.shape == (96, 192, 3)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", synth.KINDS)
def test_different_seeds_differ(kind):
    assert not np.array_equal(synth.generate_page(1, kind, SMALL), synth.generate_page(2, kind, SMALL))


@pytest.mark.parametrize("kind", synth.KINDS)
@pytest.mark.parametrize("size", [(64, 64), (256, 80), (100, 300)])
def test_size_and_kind_are_honoured(kind, size):
    page, info = synth.render_page(5, kind, size)
    assert page.shape == (size[1], size[0], 3)
    assert info["kind"] == kind and info["size"] == list(size)


def test_mixed_resolves_from_the_seed_alone():
    kinds = {synth.resolve_kind(seed, "mixed") for seed in range(20)}
    assert kinds == set(synth.KINDS)
    seed = 3
    resolved = synth.resolve_kind(seed, "mixed")
    assert np.array_equal(synth.generate_page(seed, "mixed", SMALL), synth.generate_page(seed, resolved, SMALL))


def test_default_sizes_per_kind():
    for seed in range(30):
        w, h = synth.default_size(seed, "palm-leaf")
        assert w == 1536 and 4 <= w / h <= 6 and h % 16 == 0
        w, h = synth.default_size(seed, "paper")
        assert w == 1024 and 464 <= h <= 560 and h % 16 == 0


_LUMA = np.float32([0.299, 0.587, 0.114])


def _surface_colour(page: np.ndarray) -> np.ndarray:
    """The leaf's or paper's colour as painted, light included: the middle of the page, ink and holes left out."""
    h, w, _ = page.shape
    band = page[int(h * 0.35):int(h * 0.65), int(w * 0.2):int(w * 0.8)].reshape(-1, 3).astype(np.float32)
    lum = band @ _LUMA
    low, high = np.percentile(lum, [40, 90])
    return np.median(band[(lum >= low) & (lum <= high)], axis=0)


@pytest.fixture(scope="module")
def full_pages():
    """One default-size page of each kind (the only full-size renders in this file)."""
    return {kind: synth.render_page(4, kind) for kind in synth.KINDS}


def test_palm_leaf_is_a_long_narrow_leaf_on_its_backdrop(full_pages):
    page, info = full_pages["palm-leaf"]
    h, w, _ = page.shape
    assert w / h >= 4
    rgb = page.astype(np.float32)
    corners = np.concatenate([rgb[:8, :8].reshape(-1, 3), rgb[-8:, -8:].reshape(-1, 3)])
    ground = np.median(corners, axis=0)
    leaf = np.asarray(info["colour"], np.float32)
    # the backdrop stands apart from the leaf (the painter keeps them 45 grey levels apart, before texture and light)
    assert abs(float((ground - leaf) @ _LUMA)) > 35, (ground, leaf, info["backdrop"])
    # the middle of the page is the leaf, in its own colour (ink and string holes aside)
    assert np.abs(_surface_colour(page) - leaf).max() < 20
    # the leaf spans most of the width but not the whole height
    leafy = np.abs(rgb - ground).max(axis=2) > 30
    cols = np.flatnonzero(leafy.mean(axis=0) > 0.2)
    rows = np.flatnonzero(leafy.mean(axis=1) > 0.2)
    assert cols[-1] - cols[0] > 0.85 * w
    assert rows[-1] - rows[0] < 0.9 * h
    assert 4 <= len(info["lines"]) <= 8 and info["holes"] in (1, 2)


def test_paper_folio_is_pale_with_red_rules_and_ink(full_pages):
    page, info = full_pages["paper"]
    rgb = page.astype(np.int32)
    lum = rgb.mean(axis=2)
    assert np.median(lum) > 150  # white, cream, buff or grey paper, or parchment: all paler than the ink
    reddish = (rgb[..., 0] - rgb[..., 2] > 70) & (rgb[..., 0] > 120) & (rgb[..., 1] < rgb[..., 0] * 0.6)
    assert reddish.sum() > 500  # the double margin lines at least
    assert (lum < 90).mean() > 0.02  # a good deal of dark ink
    assert len(info["lines"]) >= 3


# ------------------------------------------------------------------------------------------
# materials: the colour range of real leaves and paper
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def surfaces():
    """(measured colour, page info) of 40 small pages of each kind."""
    sizes = {"palm-leaf": (384, 96), "paper": (256, 128)}
    pages = {kind: [synth.render_page(seed, kind, size) for seed in range(40)] for kind, size in sizes.items()}
    return {kind: [(_surface_colour(page), info) for page, info in rendered] for kind, rendered in pages.items()}


def test_surface_colour_is_the_recorded_colour(surfaces):
    for kind, pages in surfaces.items():
        for measured, info in pages:
            assert len(info["colour"]) == 3 and info["material"] and info["backdrop"] in ("dark", "grey", "white")
            # texture, edges and the gentle uneven light move it a little, never far
            assert np.abs(measured - np.asarray(info["colour"])).max() < 20, (kind, info["seed"], measured, info)


def test_palm_leaves_span_pale_straw_to_dark_brown_and_grey(surfaces):
    colours = np.asarray([measured for measured, _ in surfaces["palm-leaf"]])
    lum = colours @ _LUMA
    r, g, b = colours.T
    span = f"leaf luminance {lum.min():.0f}..{lum.max():.0f}"
    assert lum.max() >= 195, span  # pale straw
    assert lum.min() <= 85, span  # dark brown
    assert ((lum > 110) & (lum < 170) & (r - b > 90)).any(), span  # ochre to mid brown (Tamil leaves)
    assert ((lum > 120) & (r - b < 40)).any(), span  # the grey-brown of old ola leaves
    assert np.histogram(lum, bins=[0, 110, 160, 256])[0].min() >= 5, span  # dark, middle and pale all common
    materials = {info["material"] for _, info in surfaces["palm-leaf"]}
    assert materials == {"straw", "ochre", "tan", "brown", "dark-brown", "grey-brown"}
    assert {info["backdrop"] for _, info in surfaces["palm-leaf"]} == {"dark", "grey", "white"}
    assert {info["ink"] for _, info in surfaces["palm-leaf"]} == {"black", "brown-black"}


def test_paper_is_white_cream_grey_or_parchment(surfaces):
    found = set()
    for measured, info in surfaces["paper"]:
        r, g, b = measured
        lum = float(measured @ _LUMA)
        if lum >= 228 and r - b <= 16:
            found.add("white")
        if lum >= 210 and 20 <= r - b <= 60:
            found.add("cream")
        if measured.max() - measured.min() <= 12 and lum < 220:
            found.add("grey")
        if info["material"] == "parchment" and 150 <= lum < 215 and r - b >= 30:
            found.add("parchment")
    assert found == {"white", "cream", "grey", "parchment"}
    lum = np.asarray([measured for measured, _ in surfaces["paper"]]) @ _LUMA
    assert lum.min() < 185 < 235 < lum.max(), f"paper luminance {lum.min():.0f}..{lum.max():.0f}"
    assert {info["material"] for _, info in surfaces["paper"]} == {"white", "cream", "buff", "grey", "parchment"}
    assert {info["ink"] for _, info in surfaces["paper"]} == {"black", "brown", "faded"}


def test_missing_raqm_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(features, "check", lambda name: False if name == "raqm" else True)
    with pytest.raises(ManurestoreError, match="raqm"):
        synth.generate_page(0, "paper", SMALL)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_seed_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        synth.generate_page(bad, "paper", SMALL)


def test_bad_kind_is_a_usage_error():
    with pytest.raises(UsageError, match="palm-leaf"):
        synth.generate_page(0, "birch-bark", SMALL)


# ------------------------------------------------------------------------------------------
# text: grammar
# ------------------------------------------------------------------------------------------


def test_every_listed_conjunct_is_a_valid_syllable():
    for onset in synth.CONJUNCTS:
        assert synth.is_valid_devanagari_syllable(onset), onset
        assert synth.is_valid_devanagari_syllable(onset + "ा"), onset


@pytest.mark.parametrize("text", ["क", "क्ष", "त्रि", "ज्ञा", "स्तं", "अ", "आः", "म्", "र्ध्व", "कृ", "श्रीः"])
def test_grammar_accepts_valid_aksharas(text):
    assert synth.is_valid_devanagari_syllable(text)


@pytest.mark.parametrize("text", ["ि", "ाक", "कंि", "अि", "क्ि", "कािं", "रृ", "ंक", "x", ""])
def test_grammar_rejects_broken_sequences(text):
    assert not synth.is_valid_devanagari_syllable(text)
    assert not synth.is_valid_devanagari_text(text)


def test_text_grammar_places_vowels_and_halanta():
    assert synth.is_valid_devanagari_text("अहम् रामः । इति ॥ १२ ॥")
    assert synth.is_valid_devanagari_text("॥१२॥ ॐ")
    assert not synth.is_valid_devanagari_text("रामअ")  # an independent vowel inside a word
    assert synth.is_valid_devanagari_text("रामअ", continuous=True)  # scriptio continua: a new word
    assert not synth.is_valid_devanagari_text("अहम्अ")  # a halanta ends its word
    assert synth.is_valid_devanagari_text("अहम्अपि", continuous=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), number=st.integers(min_value=1, max_value=999))
def test_generated_text_keeps_the_grammar(seed, number):
    rng = np.random.default_rng(seed)
    syllables = synth.make_syllables(rng, int(rng.integers(1, 7)))
    assert all(synth.is_valid_devanagari_syllable(s) for s in syllables), syllables
    word = "".join(syllables)
    assert synth.is_valid_devanagari_text(word), word
    verse = synth.make_verse(rng, number)
    assert synth.is_valid_devanagari_text(verse), verse
    assert verse.endswith(f"॥ {synth.to_devanagari_digits(number)} ॥")
    assert verse.count("।") == 1
    # independent vowels only open words
    for w in verse.split():
        assert not any(ch in synth.INDEPENDENT_VOWELS for ch in w[1:]), w


# ------------------------------------------------------------------------------------------
# text: shaping. No generated text may make HarfBuzz insert a dotted circle (U+25CC).
#
# How: HarfBuzz marks a broken cluster (a matra with no consonant, say) by inserting the
# font's glyph for U+25CC, which it finds through the font's cmap. We make a copy of each
# font whose cmap lacks U+25CC (fontTools; everything else is byte-for-byte the same), so
# HarfBuzz cannot insert it there. A text shapes identically in both fonts unless a dotted
# circle was inserted, and then the original is wider by the dotted circle's advance.
# The positive control below proves the check catches broken text.
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shaping_pairs():
    ttlib = pytest.importorskip("fontTools.ttLib")
    pairs = []
    for family in synth.font_families().values():
        for face in family["faces"]:
            data = font_bytes(face.source)
            tt = ttlib.TTFont(io.BytesIO(data), lazy=True)
            assert 0x25CC in tt.getBestCmap(), "the check needs fonts that have a dotted circle"
            cmap = set(tt.getBestCmap())
            for table in tt["cmap"].tables:
                table.cmap.pop(0x25CC, None)
            buffer = io.BytesIO()
            tt.save(buffer)
            choice = FontChoice(face, 500.0 if face.variable else None, 90.0 if face.variable else None)
            original = choice.at(32)
            patched = ImageFont.truetype(io.BytesIO(buffer.getvalue()), 32, layout_engine=ImageFont.Layout.RAQM)
            if face.variable:
                patched.set_variation_by_axes([500.0, 90.0])
            pairs.append((face.file, original, patched, cmap))
    return pairs


def _dotted_circle(original, patched, text: str) -> bool:
    return abs(original.getlength(text, language="sa") - patched.getlength(text, language="sa")) > 0.5


def test_dotted_circle_check_catches_broken_text(shaping_pairs):
    for name, original, patched, _ in shaping_pairs:
        for broken in ["ि", "कंि", "क्ि", "ाक", "ः"]:
            assert _dotted_circle(original, patched, broken), (name, broken)
        for fine in ["क्षत्रज्ञ", "र्ध्व", "श्रीगणेशाय नमः ॥ १२ ॥"]:
            assert not _dotted_circle(original, patched, fine), (name, fine)


@pytest.fixture(scope="module")
def page_infos():
    """Small pages of both kinds; their text is what the shaping and grammar tests check."""
    return [synth.render_page(seed, kind, (320, 112))[1] for seed in range(4) for kind in synth.KINDS]


def test_generated_text_never_shapes_a_dotted_circle(shaping_pairs, page_infos):
    rng = np.random.default_rng(2024)
    verses = [synth.make_verse(rng, int(rng.integers(1, 200))) for _ in range(60)]
    words = [synth.make_word(rng) for _ in range(300)]
    # page text: scriptio continua with halanta joins, marks, invocations, folio numbers
    page_lines = [line for info in page_infos for line in info["lines"] + info["margin_text"] if line]
    for name, original, patched, cmap in shaping_pairs:
        texts = verses + page_lines if "Noto" in name else verses + words + page_lines
        for text in texts:
            assert all(ord(ch) in cmap for ch in text if ch != " "), (name, text)  # no tofu either
            assert not _dotted_circle(original, patched, text), (name, text)


def test_page_lines_keep_the_grammar(page_infos):
    assert any(info["continuous"] for info in page_infos) and not all(info["continuous"] for info in page_infos)
    for info in page_infos:
        assert any(info["lines"])
        for line in info["lines"]:
            if line:
                assert synth.is_valid_devanagari_text(line, continuous=info["continuous"]), line


# ------------------------------------------------------------------------------------------
# data sets
# ------------------------------------------------------------------------------------------


def test_dataset_writes_train_val_and_manifest(tmp_path):
    out = tmp_path / "synth"
    seen = []
    manifest = synth.synth_dataset(out, pages=7, seed=3, size=(128, 64), val_fraction=0.3,
                                   progress=lambda done, total: seen.append((done, total)))
    train, val = sorted((out / "train").glob("*.png")), sorted((out / "val").glob("*.png"))
    assert len(train) == 5 and len(val) == 2
    assert seen[-1] == (7, 7) and len(seen) == 7
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest and on_disk["complete"] is True
    assert on_disk["settings"] == {"pages": 7, "seed": 3, "kind": "mixed", "size": [128, 64], "val_fraction": 0.3}
    assert on_disk["counts"] == {"train": 5, "val": 2}
    assert on_disk["manurestore_version"]
    for entry in on_disk["pages"]:  # what each page is made of, for evaluating by material
        assert entry["material"] and entry["backdrop"] in ("dark", "grey", "white") and len(entry["colour"]) == 3
    families = {f["family"]: f for f in on_disk["fonts"]}
    assert set(families) == {"Kalam", "Noto Sans Devanagari"}
    assert all(f["version"] and f["package_version"] for f in families.values())
    assert {p["kind"] for p in on_disk["pages"]} == set(synth.KINDS)
    assert sorted(out / p["file"] for p in on_disk["pages"]) == sorted(train + val)
    # every page can be regenerated from its manifest entry
    entry = on_disk["pages"][0]
    again = synth.generate_page(entry["seed"], entry["kind"], tuple(entry["size"]))
    assert np.array_equal(np.asarray(Image.open(out / entry["file"]).convert("RGB")), again)


def test_dataset_is_reproducible(tmp_path):
    a = synth.synth_dataset(tmp_path / "a", pages=3, seed=9, kind="paper", size=(96, 64))
    b = synth.synth_dataset(tmp_path / "b", pages=3, seed=9, kind="paper", size=(96, 64))
    assert a["pages"] == b["pages"]
    for p in a["pages"]:
        assert (tmp_path / "a" / p["file"]).read_bytes() == (tmp_path / "b" / p["file"]).read_bytes()


def test_workers_write_the_same_pages_and_manifest(tmp_path):
    one = synth.synth_dataset(tmp_path / "one", pages=4, seed=5, size=(96, 64))
    done = []
    many = synth.synth_dataset(tmp_path / "many", pages=4, seed=5, size=(96, 64), workers=3,
                               progress=lambda n, total: done.append((n, total)))
    assert many["pages"] == one["pages"]
    assert done == [(n, 4) for n in range(1, 5)]
    for p in one["pages"]:
        assert (tmp_path / "one" / p["file"]).read_bytes() == (tmp_path / "many" / p["file"]).read_bytes()


def test_rewriting_an_earlier_output_replaces_only_its_own_pages(tmp_path):
    out = tmp_path / "synth"
    synth.synth_dataset(out, pages=5, seed=1, size=(96, 64), val_fraction=0.2)
    notes = out / "train" / "my-notes.txt"
    notes.write_text("mine")
    manifest = synth.synth_dataset(out, pages=2, seed=2, size=(96, 64), val_fraction=0.5)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert files == {p["file"] for p in manifest["pages"]}
    assert notes.read_text() == "mine"


def test_manifest_is_written_like_any_file_of_the_user(tmp_path):
    synth.synth_dataset(tmp_path, pages=1, size=(64, 64))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert not list(tmp_path.glob(".manifest.json.*"))  # no temporary file left behind


def test_an_earlier_output_does_not_make_foreign_files_ours(tmp_path):
    synth.synth_dataset(tmp_path, pages=1, size=(64, 64))
    stranger = tmp_path / "train" / "page-0002.png"  # a name synth would use, not written by it
    stranger.write_bytes(b"a scan")
    with pytest.raises(ManurestoreError, match="--overwrite"):
        synth.synth_dataset(tmp_path, pages=3, size=(64, 64), val_fraction=0)
    assert stranger.read_bytes() == b"a scan"


def test_refuses_a_non_empty_foreign_folder(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(ManurestoreError, match="--overwrite"):
        synth.synth_dataset(tmp_path, pages=1, size=(64, 64))
    assert not (tmp_path / "train").exists()
    synth.synth_dataset(tmp_path, pages=1, size=(64, 64), overwrite=True)
    assert (tmp_path / "holiday.jpg").read_bytes() == b"not ours"
    assert len(list((tmp_path / "train").glob("*.png"))) == 1


@pytest.mark.parametrize("kwargs", [{"pages": 0}, {"val_fraction": 1.0}, {"val_fraction": -0.1}, {"kind": "vellum"},
                                    {"size": (10, 10)}, {"workers": 0}])
def test_bad_dataset_settings_are_usage_errors(tmp_path, kwargs):
    with pytest.raises(UsageError):
        synth.synth_dataset(tmp_path / "x", **{"pages": 1, **kwargs})


@pytest.mark.parametrize("text, size", [("1024x512", (1024, 512)), ("1536X320", (1536, 320)), (" 64 x 64 ", (64, 64))])
def test_parse_size(text, size):
    assert synth.parse_size(text) == size


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------


@pytest.fixture()
def cli():
    app = typer.Typer(context_settings={"help_option_names": ["-h", "--help"]})
    app.command("synth", no_args_is_help=True)(synth_cli.command)

    @app.command("other")  # a second command keeps "synth" a subcommand, as in the real app
    def other() -> None:
        pass

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["synth", *map(str, args)])


def test_cli_writes_a_dataset_and_a_one_line_summary(cli, tmp_path):
    result = cli(tmp_path / "out", "--pages", 4, "--seed", 5, "--size", "128x64", "--kind", "palm-leaf")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().count("\n") == 0
    assert "wrote 4 pages" in result.stdout and "palm-leaf" in result.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["kind"] == "palm-leaf" and len(manifest["pages"]) == 4


@pytest.mark.parametrize("size", ["12x", "0x10", "x", "1024*512", "-5x10", "64x99999"])
def test_cli_bad_size_is_a_usage_error(cli, tmp_path, size):
    result = cli(tmp_path / "out", "--size", size)
    assert result.exit_code == 2
    assert result.stderr.startswith("manurestore: error: --size")
    assert "1024x512" in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_foreign_folder(cli, tmp_path):
    (tmp_path / "scan.tif").write_bytes(b"x")
    result = cli(tmp_path, "--pages", 1, "--size", "64x64")
    assert result.exit_code == 1
    assert "not empty" in result.stderr and "--overwrite" in result.stderr


def test_cli_help(cli):
    result = cli("-h")
    assert result.exit_code == 0
    for option in ("--pages", "--seed", "--kind", "--size", "--val-fraction", "--overwrite"):
        assert option in result.output
