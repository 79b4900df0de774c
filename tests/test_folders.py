"""find_images, split_train_val and find_pairs on folder trees built in tmp_path (empty files suffice)."""

from __future__ import annotations

import os
import random
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manurestore.data.folders import (
    FolderError,
    FoundImages,
    MissingPathError,
    NoImagesError,
    NotEnoughImagesError,
    PairedImages,
    TrainValSplit,
    find_images,
    find_pairs,
    matches_selection,
    select_images,
    split_train_val,
)
from manurestore.errors import ManurestoreError, UsageError


def make(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        paths.append(path)
    return paths


def rel(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


# --------------------------------------------------------------------------- find_images


def test_find_images_sorts_filters_and_counts(tmp_path: Path) -> None:
    make(
        tmp_path,
        "b.png", "a.JPG", "c.Jpeg", "d.TIFF", "e.tif", "f.bmp", "g.WebP",
        "sub/z.png", "sub/deeper/y.jpg", "sub-a.png",
        "notes.txt", "Thumbs.db", "scan.gif", "noext",
        ".DS_Store", "._a.jpg", "sub/.hidden.png",
        ".thumbnails/t1.png", ".thumbnails/inner/t2.png",
    )
    found = find_images(tmp_path)
    assert isinstance(found, FoundImages)
    assert rel(found.paths, tmp_path) == [
        "a.JPG", "b.png", "c.Jpeg", "d.TIFF", "e.tif", "f.bmp", "g.WebP",
        "sub/deeper/y.jpg", "sub/z.png", "sub-a.png",
    ]
    assert found.skipped_hidden == 5  # .DS_Store, ._a.jpg, sub/.hidden.png and two inside .thumbnails
    assert found.skipped_other == 4
    assert all(p.is_absolute() == tmp_path.is_absolute() for p in found.paths)


def test_find_images_non_recursive(tmp_path: Path) -> None:
    make(tmp_path, "a.png", "sub/b.png", ".h.png", ".hid/c.png", "x.txt")
    found = find_images(tmp_path, recursive=False)
    assert rel(found.paths, tmp_path) == ["a.png"]
    assert (found.skipped_hidden, found.skipped_other) == (1, 1)


def test_find_images_single_file_and_missing_root(tmp_path: Path) -> None:
    (only,) = make(tmp_path, "page 1 ॐ.jpg")
    assert find_images(only) == FoundImages(paths=[only], skipped_hidden=0, skipped_other=0)
    with pytest.raises(MissingPathError) as caught:
        find_images(tmp_path / "nope")
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert str(caught.value).startswith(str(tmp_path / "nope"))


def test_find_images_follows_folder_links_without_looping(tmp_path: Path) -> None:
    make(tmp_path, "real/a.png")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    found = find_images(tmp_path)
    assert rel(found.paths, tmp_path) == ["real/a.png"]  # listed once, under its real path
    outside = tmp_path / "outside"
    make(outside, "b.png")
    (tmp_path / "real" / "linked").symlink_to(outside)
    assert rel(find_images(tmp_path / "real").paths, tmp_path / "real") == ["a.png", "linked/b.png"]


def test_find_images_is_independent_of_creation_order(tmp_path: Path) -> None:
    names = [f"d{i % 3}/p{i}.png" for i in range(20)]
    first, second = tmp_path / "one", tmp_path / "two"
    make(first, *names)
    shuffled = names[:]
    random.Random(4).shuffle(shuffled)
    make(second, *shuffled)
    assert rel(find_images(first).paths, first) == rel(find_images(second).paths, second)


# --------------------------------------------------------------------------- split_train_val


def test_train_val_folders(tmp_path: Path) -> None:
    make(tmp_path, "train/a.png", "train/b.png", "train/sub/c.png", "val/v.png", "stray.png")
    split = split_train_val(tmp_path, batch_size=3)
    assert isinstance(split, TrainValSplit)
    assert rel(split.train, tmp_path) == ["train/a.png", "train/b.png", "train/sub/c.png"]
    assert rel(split.val, tmp_path) == ["val/v.png"]
    assert "train" in split.layout and "val" in split.layout
    with pytest.raises(NotEnoughImagesError, match="found 3 images, need at least 4"):
        split_train_val(tmp_path, batch_size=4)


def test_train_without_val_is_split(tmp_path: Path) -> None:
    make(tmp_path, *[f"train/{i:02d}.png" for i in range(10)])
    split = split_train_val(tmp_path, val_fraction=0.2, seed=3)
    assert len(split.val) >= 1 and len(split.train) + len(split.val) == 10
    assert "no val folder" in split.layout and "seed 3" in split.layout
    assert not set(split.train) & set(split.val)


def test_empty_val_folder_and_val_without_train(tmp_path: Path) -> None:
    make(tmp_path, "train/a.png", "train/b.png")
    (tmp_path / "val").mkdir()
    with pytest.raises(NotEnoughImagesError, match="found 0 images"):
        split_train_val(tmp_path)
    other = tmp_path / "other"
    make(other, "val/a.png", "b.png")
    with pytest.raises(FolderError, match="no train folder"):
        split_train_val(other)


def test_single_folder_split_rules(tmp_path: Path) -> None:
    make(tmp_path, "a.png", "b.png")
    split = split_train_val(tmp_path, val_fraction=0.1)
    assert (len(split.train), len(split.val)) == (1, 1)  # at least one val image
    assert split_train_val(tmp_path, val_fraction=0).val == []
    with pytest.raises(NotEnoughImagesError) as caught:
        split_train_val(tmp_path, batch_size=2)
    message = str(caught.value)
    assert "found 2 images, need at least 3" in message and "batch size 2" in message
    assert isinstance(caught.value, ManurestoreError) and not isinstance(caught.value, UsageError)
    lonely = tmp_path / "lonely"
    make(lonely, "only.png")
    with pytest.raises(NotEnoughImagesError, match="found 1 image, need at least 2"):
        split_train_val(lonely)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NoImagesError, match="holds no images .*manurestore synth") as caught:
        split_train_val(empty, val_fraction=0)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


def test_split_argument_and_path_errors(tmp_path: Path) -> None:
    make(tmp_path, "a.png", "b.png", "c.png")
    for kwargs in ({"val_fraction": 1.0}, {"val_fraction": -0.1}, {"batch_size": 0}):
        with pytest.raises(UsageError):
            split_train_val(tmp_path, **kwargs)
    with pytest.raises(MissingPathError):
        split_train_val(tmp_path / "missing")
    with pytest.raises(MissingPathError, match="is a file"):
        split_train_val(tmp_path / "a.png")


def test_split_keeps_enough_training_images_for_a_batch(tmp_path: Path) -> None:
    make(tmp_path, *[f"{i}.png" for i in range(6)])
    split = split_train_val(tmp_path, val_fraction=0.9, batch_size=4)
    assert (len(split.train), len(split.val)) == (4, 2)


@settings(max_examples=15, deadline=None)
@given(
    names=st.lists(
        st.text(alphabet="abcxyzकखग _-0123", min_size=1, max_size=6), min_size=3, max_size=25, unique=True
    ),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_split_is_deterministic_and_stable(names: list[str], seed: int, data: st.DataObject) -> None:
    files = [f"{name}.png" for name in names]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        first, second = root / "first", root / "second"
        make(first, *files)
        make(second, *data.draw(st.permutations(files)))  # another creation order
        a = split_train_val(first, val_fraction=0.3, seed=seed)
        b = split_train_val(second, val_fraction=0.3, seed=seed)
        assert rel(a.val, first) == rel(b.val, second) and rel(a.train, first) == rel(b.train, second)
        assert sorted(rel(a.train + a.val, first)) == sorted(rel(find_images(first).paths, first))
        # Adding a file never moves the others (unless the at-least-one-val rule had to step in).
        make(first, "zz-added.png")
        c = split_train_val(first, val_fraction=0.3, seed=seed)
        if 1 < len(a.val) < len(names) - 1:  # neither clamp (>= 1 val, >= 1 train) stepped in
            added = first / "zz-added.png"
            assert [p for p in c.val if p != added] == a.val


def test_split_seed_changes_selection_and_fraction_is_roughly_kept(tmp_path: Path) -> None:
    make(tmp_path, *[f"f{i:03d}.png" for i in range(400)])
    splits = {seed: split_train_val(tmp_path, val_fraction=0.25, seed=seed) for seed in (0, 1)}
    assert splits[0].val != splits[1].val
    for split in splits.values():
        assert 60 <= len(split.val) <= 140
        assert split.train == sorted(split.train)


# --------------------------------------------------------------------------- find_pairs


def test_pairs_matched_by_relative_stem(tmp_path: Path) -> None:
    make(
        tmp_path,
        "degraded/b.jpg", "degraded/a/x.JPG", "degraded/a/y.png", "degraded/.hidden.jpg",
        "clean/a/x.png", "clean/a/y.tif", "clean/b.png", "clean/readme.txt",
    )
    pairs = find_pairs(tmp_path)
    assert isinstance(pairs, PairedImages) and isinstance(pairs, list)
    assert [(d.relative_to(tmp_path).as_posix(), c.relative_to(tmp_path).as_posix()) for d, c in pairs] == [
        ("degraded/a/x.JPG", "clean/a/x.png"),
        ("degraded/a/y.png", "clean/a/y.tif"),
        ("degraded/b.jpg", "clean/b.png"),
    ]
    assert pairs.degraded_dir == tmp_path / "degraded" and pairs.clean_dir == tmp_path / "clean"


def test_pairs_match_across_unicode_normalisation(tmp_path: Path) -> None:
    name = "क़लम"  # the nukta letter decomposes under NFD
    make(tmp_path, f"degraded/{unicodedata.normalize('NFD', name)}.jpg", f"clean/{unicodedata.normalize('NFC', name)}.png")
    assert len(find_pairs(tmp_path)) == 1


def test_unmatched_pairs_are_listed_on_one_line(tmp_path: Path) -> None:
    make(tmp_path, "degraded/a.jpg", "clean/a.png")
    make(tmp_path, *[f"degraded/only{i:02d}.jpg" for i in range(13)], "clean/sub/lonely.png")
    with pytest.raises(FolderError) as caught:
        find_pairs(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "13 in degraded/" in message and "only00.jpg" in message and "only09.jpg" in message
    assert "only10.jpg" not in message and "and 3 more" in message
    assert "1 in clean/" in message and "sub/lonely.png" in message


def test_missing_pair_folders(tmp_path: Path) -> None:
    make(tmp_path, "degraded/a.jpg")
    with pytest.raises(FolderError) as caught:
        find_pairs(tmp_path)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "clean")) and "degraded" in message and "clean" in message
    assert not isinstance(caught.value, UsageError)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FolderError, match="degraded and .*clean: no such folder"):
        find_pairs(empty)
    with pytest.raises(MissingPathError):
        find_pairs(tmp_path / "absent")


def test_pairs_reject_duplicate_stems_and_empty_folders(tmp_path: Path) -> None:
    make(tmp_path, "degraded/a.jpg", "degraded/a.png", "clean/a.png")
    with pytest.raises(FolderError, match="same name apart from the suffix"):
        find_pairs(tmp_path)
    bare = tmp_path / "bare"
    (bare / "degraded").mkdir(parents=True)
    (bare / "clean").mkdir()
    with pytest.raises(FolderError, match="no images found"):
        find_pairs(bare)


def test_paired_images_pickle(tmp_path: Path) -> None:
    import pickle

    make(tmp_path, "degraded/a.jpg", "clean/a.png")
    pairs = pickle.loads(pickle.dumps(find_pairs(tmp_path)))
    assert len(pairs) == 1 and pairs.clean_dir == tmp_path / "clean"
    assert os.fspath(pairs[0][0]).endswith("a.jpg")


# --------------------------------------------------------------------------- select_images


def test_select_images_by_collection_glob_and_path(tmp_path: Path) -> None:
    paths = make(tmp_path, "loose.png", "tamil-palmleaf/0001.jpg", "tamil-palmleaf/0002.jpg",
                 "cremma-mss18/a/0001.jpg", "cremma-latin/0001.jpg", "khmer/0001.jpg")
    pick = lambda include=(), exclude=(): rel(select_images(paths, tmp_path, include, exclude), tmp_path)  # noqa: E731
    assert pick() == rel(paths, tmp_path), "no pattern keeps everything, in order"
    assert pick(["tamil-palmleaf"]) == ["tamil-palmleaf/0001.jpg", "tamil-palmleaf/0002.jpg"]
    assert pick(["tamil-palmleaf/"]) == pick(["./tamil-palmleaf"]) == pick(["tamil-palmleaf"])
    assert pick(["cremma-*"]) == ["cremma-mss18/a/0001.jpg", "cremma-latin/0001.jpg"]
    assert pick(["cremma-mss18/a"]) == ["cremma-mss18/a/0001.jpg"], "a deeper folder counts too"
    assert pick(["*/0001.jpg"]) == ["tamil-palmleaf/0001.jpg", "cremma-mss18/a/0001.jpg", "cremma-latin/0001.jpg", "khmer/0001.jpg"]
    assert pick(["loose.png"]) == ["loose.png"]
    assert pick(exclude=["tamil-palmleaf", "cremma-*"]) == ["loose.png", "khmer/0001.jpg"]
    assert pick(["tamil-palmleaf", "khmer"], ["*/0002.jpg"]) == ["tamil-palmleaf/0001.jpg", "khmer/0001.jpg"]


def test_select_images_matching_is_exact_case_and_name(tmp_path: Path) -> None:
    assert matches_selection("khmer/0001.jpg", "khmer")
    assert not matches_selection("khmer/0001.jpg", "Khmer"), "case-sensitive on every platform"
    assert not matches_selection("khmer-extra/0001.jpg", "khmer"), "a name is a whole folder, not a prefix"
    assert not matches_selection("khmer/0001.jpg", "0001.jpg"), "a bare file name is relative to the root"
    assert not matches_selection("khmer/0001.jpg", "")
    nfd = unicodedata.normalize("NFD", "tāmil")
    assert matches_selection(f"{nfd}/x.png", "tāmil") and matches_selection("tāmil/x.png", nfd)


def test_select_images_rejects_a_pattern_that_matches_nothing(tmp_path: Path) -> None:
    paths = make(tmp_path, "tamil/a.jpg", "khmer/b.jpg")
    with pytest.raises(UsageError, match=r"--include 'tamill': matches no image under .*; first-level folders: khmer, tamil"):
        select_images(paths, tmp_path, include=["tamill"])
    with pytest.raises(UsageError, match="--exclude 'kmer'"):
        select_images(paths, tmp_path, exclude=["kmer"])
    # An exclude is checked against every image, not just the included ones.
    assert rel(select_images(paths, tmp_path, include=["tamil"], exclude=["khmer"]), tmp_path) == ["tamil/a.jpg"]
    assert select_images(paths, tmp_path, include=["tamil"], exclude=["tamil"]) == []


def test_select_images_with_a_single_file_root(tmp_path: Path) -> None:
    (image,) = make(tmp_path, "page.png")
    assert select_images([image], image, include=["page.png"]) == [image]
    assert select_images([image], image, include=["*.png"], exclude=[]) == [image]
