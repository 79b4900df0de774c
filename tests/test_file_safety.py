"""File safety: no command replaces an input or loses a file, one bad page never stops the others,
and every problem reaches the user as one line. Each test is a fault found by probing the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from manurestore.atomic import STALE_AFTER_S, open_temp, remove_stale_temps
from manurestore.cli.app import app
from manurestore.data.folders import OUTPUT_MARKER, NoImagesError, find_images, split_train_val
from manurestore.data.io import (
    MAX_PIXELS_ENV,
    OutputExistsError,
    ProtectedPathError,
    check_output,
    write_text,
)
from manurestore.errors import UsageError
from manurestore.inference.tiling import TiledRestorer
from manurestore.models.checkpoint import save_weights
from manurestore.models.registry import build_model

runner = CliRunner()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("vit-tiny", img_size=64).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_weights(path, model, {"model_name": "vit-tiny", "train_crop": 64, "metrics": {}})
    return path


def save(path: Path, size=(40, 30), seed=0) -> Path:
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def said(result) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("manurestore: error:")]


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output, result.stderr
    return errors(result)[0]


def hidden_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".*"))


# --------------------------------------------------------------------------- 1. inputs are never replaced


def test_evaluate_json_never_replaces_a_data_image(tmp_path, model_file):
    page = save(tmp_path / "data" / "page.png")
    before = page.read_bytes()
    result = invoke("evaluate", tmp_path / "data", "-m", model_file, "--json", page, "--overwrite")
    assert "replace an input" in one_line_error(result, 2)
    assert page.read_bytes() == before
    result = invoke("evaluate", tmp_path / "data", "-m", model_file, "--json", model_file, "--overwrite")
    assert "replace an input" in one_line_error(result, 2)


def test_degrade_params_out_never_replaces_an_input(tmp_path):
    source = save(tmp_path / "in.png")
    preset = tmp_path / "mine.toml"
    preset.write_text('[[step]]\nop = "gaussian_noise"\np = 1.0\n')
    for target in (source, preset):
        before = target.read_bytes()
        result = invoke("degrade", source, "-o", tmp_path / "out", "--preset", preset, "--params-out", target, "--overwrite")
        assert "replace an input" in one_line_error(result, 2)
        assert target.read_bytes() == before
    assert not (tmp_path / "out").exists(), "refused before any work"


def test_one_output_rule_for_text_files(tmp_path):
    source = save(tmp_path / "in" / "page.png")
    link = tmp_path / "hard.png"
    os.link(source, link)
    for target in (source, link, tmp_path / "in" / ".." / "in" / "page.png"):
        with pytest.raises(UsageError, match="replace an input"):
            check_output(target, [source], overwrite=True)
        with pytest.raises(ProtectedPathError):
            write_text(target, "{}", overwrite=True, protected=[source])
    report = write_text(tmp_path / "r.json", "{}", protected=[source])
    with pytest.raises(UsageError, match="already exists"):
        check_output(report, [source], overwrite=False)
    with pytest.raises(OutputExistsError):
        write_text(report, "[]", protected=[source])
    assert report.read_text() == "{}"
    with pytest.raises(UsageError, match="is a folder"):
        check_output(tmp_path / "in", [source], overwrite=True)


# --------------------------------------------------------------------------- 2. `.` and `..`, -o inside the input


def test_restore_dot_and_dotdot_write_a_named_sibling(tmp_path, model_file, monkeypatch):
    scans = tmp_path / "tree" / "scans"
    save(scans / "a.png")
    monkeypatch.chdir(scans)
    result = invoke("restore", ".", "-m", model_file)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tree" / "scans.restored" / "a.png").exists()
    result = invoke("restore", "..", "-m", model_file)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tree.restored" / "scans" / "a.png").exists()
    assert not (tmp_path / "tree.restored" / "scans.restored").exists(), "an earlier output is not an input"
    assert [name for name in hidden_files(tmp_path / "tree") if name != OUTPUT_MARKER] == []


def test_output_inside_the_input_is_never_collected_again(tmp_path, model_file):
    scans = tmp_path / "scans"
    save(scans / "a.png")
    first = invoke("restore", scans, "-o", scans / "restored", "-m", model_file)
    assert first.exit_code == 0, first.output
    assert (scans / "restored" / OUTPUT_MARKER).exists()
    again = invoke("restore", scans, "-o", tmp_path / "elsewhere", "-m", model_file)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "elsewhere").rglob("*.png")) == ["a.png"]
    assert find_images(scans).paths == [scans / "a.png"]
    assert find_images(scans / "restored").paths == [scans / "restored" / "a.png"], "given itself, it is listed"


def test_restore_into_the_input_folder_is_a_usage_error(tmp_path, model_file):
    save(tmp_path / "in" / "a.png")
    result = invoke("restore", tmp_path / "in", "-o", tmp_path / "in", "-m", model_file)
    message = one_line_error(result, 2)
    assert "is the input folder" in message and "-o" in message


# --------------------------------------------------------------------------- 3. run folders and outputs are not data


def test_run_folders_and_output_folders_are_not_collected(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        save(data / f"p{i}.png", seed=i)
    run = data / "runs" / "first"
    (run / "config.json").parent.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text("")
    save(run / "samples" / "epoch-001.png")
    resumable = data / "runs" / "second"
    save(resumable / "samples" / "epoch-001.png")
    (resumable / "state.pt").write_bytes(b"")
    half = data / "notes"
    save(half / "n.png")
    (half / "config.json").write_text("{}")  # a config alone is the user's: kept
    found = find_images(data)
    assert [p.relative_to(data).as_posix() for p in found.paths] == ["notes/n.png", "p0.png", "p1.png", "p2.png"]
    split = split_train_val(data, val_fraction=0.3)
    assert not [p for p in split.train + split.val if "samples" in p.parts]


def test_a_default_degrade_output_is_not_collected_from_above(tmp_path):
    save(tmp_path / "data" / "pages" / "a.png")
    result = invoke("degrade", tmp_path / "data" / "pages")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "pages.aged" / "a.png").exists()
    assert find_images(tmp_path / "data").paths == [tmp_path / "data" / "pages" / "a.png"]
    rerun = invoke("degrade", tmp_path / "data" / "pages.aged", "-o", tmp_path / "again")
    assert rerun.exit_code == 0 and "skipped" not in rerun.output, "its own marker is not counted as a skipped file"


# --------------------------------------------------------------------------- 4. out of memory on one page


def _oom_on_width(monkeypatch, width: int) -> None:
    real = TiledRestorer.restore

    def restore(self, page):
        if page.shape[1] == width:
            raise MemoryError
        return real(self, page)

    monkeypatch.setattr(TiledRestorer, "restore", restore)


def test_restore_reports_a_page_out_of_memory_and_goes_on(tmp_path, model_file, monkeypatch):
    save(tmp_path / "in" / "big.png", size=(50, 20))
    save(tmp_path / "in" / "small.png", size=(30, 20))
    _oom_on_width(monkeypatch, 50)
    result = invoke("restore", tmp_path / "in", "-o", tmp_path / "out", "-m", model_file)
    assert result.exit_code == 1
    (message,) = errors(result)
    assert "big.png" in message and "out of memory" in message and MAX_PIXELS_ENV in message
    assert "250.0 megapixels" in message and "--tile" in message
    assert (tmp_path / "out" / "small.png").exists() and not (tmp_path / "out" / "big.png").exists()


def test_evaluate_reports_a_page_out_of_memory_and_the_bar_counts_it(tmp_path, model_file, monkeypatch):
    save(tmp_path / "data" / "big.png", size=(50, 20))
    save(tmp_path / "data" / "small.png", size=(30, 20))
    _oom_on_width(monkeypatch, 50)
    result = invoke("evaluate", tmp_path / "data", "-m", model_file, "--json", tmp_path / "r.json")
    assert result.exit_code == 1
    (message,) = errors(result)
    assert message.startswith("manurestore: error: big.png: out of memory") and MAX_PIXELS_ENV in message
    assert "2/2" in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [row["image"] for row in report["images"]] == ["small.png"] and len(report["failures"]) == 1


def test_degrade_splits_a_batch_that_runs_out_of_memory(tmp_path, monkeypatch):
    from manurestore.degradations import files

    for name in ("a.png", "b.png"):
        save(tmp_path / "in" / name, size=(40, 30), seed=len(name))
    save(tmp_path / "in" / "huge.png", size=(23, 17))
    real = files.to_batch

    def to_batch(images, device):
        if len(images) > 1 or images[0].shape[:2] == (17, 23):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real(images, device)

    monkeypatch.setattr(files, "to_batch", to_batch)
    result = invoke("degrade", tmp_path / "in", "-o", tmp_path / "out", "--batch-size", "4")
    assert result.exit_code == 1
    (message,) = errors(result)
    assert "huge.png" in message and "out of memory" in message and MAX_PIXELS_ENV in message
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]


# --------------------------------------------------------------------------- 5. a bad setting, before any work


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
@pytest.mark.parametrize("command", ["degrade", "restore", "evaluate"])
def test_a_bad_pixel_limit_is_one_usage_error_before_any_work(tmp_path, value, command):
    save(tmp_path / "in" / "a.png")
    save(tmp_path / "in" / "b.png")
    model = [] if command == "degrade" else ["-m", tmp_path / "missing.safetensors"]  # never reached
    result = invoke(command, tmp_path / "in", *model, env={MAX_PIXELS_ENV: value})
    message = one_line_error(result, 2)
    assert MAX_PIXELS_ENV in message and "missing.safetensors" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"], "nothing written"


# --------------------------------------------------------------------------- 6. two identical jobs at once


def _another_process_publishes_first(monkeypatch) -> list[Path]:
    """Make every publish find its target just written by someone else; returns those targets."""
    from manurestore.data import io

    real, beaten = io.publish, []

    def publish(temp, path, overwrite):
        if not overwrite and not beaten:
            Path(path).write_bytes(b"the other job's output")
            beaten.append(Path(path))
        return real(temp, path, overwrite)

    monkeypatch.setattr(io, "publish", publish)
    return beaten


def test_degrade_leaves_an_output_another_process_wrote_and_says_so(tmp_path, monkeypatch):
    save(tmp_path / "in" / "a.png")
    save(tmp_path / "in" / "b.png", seed=1)
    beaten = _another_process_publishes_first(monkeypatch)
    result = invoke("degrade", tmp_path / "in", "-o", tmp_path / "out", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert not errors(result) and "another process" in said(result)
    assert beaten[0].read_bytes() == b"the other job's output"
    assert len(list((tmp_path / "out").glob("*.png"))) == 2 and not hidden_files(tmp_path / "out")


def test_restore_counts_an_output_another_process_finished_as_done(tmp_path, model_file, monkeypatch):
    save(tmp_path / "in" / "a.png")
    save(tmp_path / "in" / "b.png", seed=1)
    beaten = _another_process_publishes_first(monkeypatch)
    result = invoke("restore", tmp_path / "in", "-o", tmp_path / "out", "-m", model_file)
    assert result.exit_code == 0, result.output
    assert not errors(result) and "restored 1 page(s)" in said(result) and "1 existing output(s) skipped" in said(result)
    assert beaten[0].read_bytes() == b"the other job's output"


# --------------------------------------------------------------------------- 7. temp files of killed runs


def _killed_writer(target: Path) -> Path:
    """A real process that starts writing `target` and is killed (SIGKILL) before it finishes."""
    code = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom manurestore.atomic import open_temp\n"
        "handle, temp = open_temp(Path(sys.argv[1]))\nos.write(handle, b'half a page')\nprint(temp, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return Path(done.stdout.strip())


def test_a_later_run_removes_temp_files_of_killed_runs_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = _killed_writer(out / "a.png")
    assert dead.exists() and dead.name.startswith(".a.png.")
    live_handle, live = open_temp(out / "b.png")  # this process is alive and may still finish it
    os.close(live_handle)
    old_handle, old = open_temp(out / "c.png")
    os.close(old_handle)
    an_hour_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old, (an_hour_ago, an_hour_ago))
    others = [out / ".a.png.1234abcd.tmp", out / "notes.tmp", out / ".x.png.ab12-1-0123abcd.tmp.bak"]
    for path in others:
        path.write_text("the user's")
    folder_like = out / dead.name.replace(".a.png.", ".d.png.", 1)  # the pattern, but a folder
    folder_like.mkdir()
    save(tmp_path / "in" / "a.png")
    result = invoke("degrade", tmp_path / "in", "-o", out)
    assert result.exit_code == 0, result.output
    assert not dead.exists() and not old.exists()
    assert live.exists() and folder_like.is_dir() and all(path.read_text() == "the user's" for path in others)
    live.unlink()
    assert remove_stale_temps(out) == 0


# --------------------------------------------------------------------------- 8. reruns


def test_rerunning_a_list_of_files_skips_the_finished_ones(tmp_path, model_file):
    pages = [save(tmp_path / "g" / f"p{i}.png", seed=i) for i in range(2)]
    first = invoke("restore", *pages, "-m", model_file)
    assert first.exit_code == 0, first.output
    done = tmp_path / "g" / "p0.restored.png"
    before = done.stat().st_mtime_ns
    listed = sorted((tmp_path / "g").glob("*.png"))  # what `g/*.png` gives the second time
    assert done in listed
    again = invoke("restore", *listed, "-m", model_file)
    assert again.exit_code == 0, again.output
    assert "2 existing output(s) skipped" in said(again)
    assert done.stat().st_mtime_ns == before and not list((tmp_path / "g").glob("*.restored.restored.*"))
    with_outputs = invoke("degrade", *pages)
    assert with_outputs.exit_code == 0
    rerun = invoke("degrade", *sorted((tmp_path / "g").glob("*.png")))
    assert "--overwrite" in one_line_error(rerun, 2)


# --------------------------------------------------------------------------- 9. an empty data folder


@pytest.mark.parametrize("layout", ["single folder", "train folder"])
def test_an_empty_folder_says_it_holds_no_images(tmp_path, layout):
    empty = tmp_path / "train" if layout == "train folder" else tmp_path
    empty.mkdir(exist_ok=True)
    (empty / "readme.txt").write_text("pages go here")
    with pytest.raises(NoImagesError) as caught:
        split_train_val(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{empty}: holds no images (") and ".png" in message and ".jpg" in message
    assert message.endswith(f"manurestore synth {tmp_path}") and caught.value.exit_code == 2


def test_two_inputs_with_one_output_name_are_refused_before_any_work(tmp_path):
    save(tmp_path / "a" / "p.png")
    save(tmp_path / "b" / "p.png", seed=1)
    for inputs in ([tmp_path / "a" / "p.png", tmp_path / "b" / "p.png"], [tmp_path / "a", tmp_path / "b"]):
        result = invoke("degrade", *inputs, "-o", tmp_path / "out", "--op", "contrast")
        assert "would both be written to" in one_line_error(result, 2)
    assert not (tmp_path / "out").exists()


def test_params_out_may_not_be_one_of_the_images_outputs(tmp_path):
    save(tmp_path / "imgs" / "p0.png")
    target = tmp_path / "imgs.contrast" / "p0.png"
    assert invoke("degrade", tmp_path / "imgs", "--op", "contrast").exit_code == 0
    before = target.read_bytes()
    result = invoke("degrade", tmp_path / "imgs", "--op", "contrast", "--overwrite", "--params-out", target)
    assert "is also one of the degraded images' outputs" in one_line_error(result, 2)
    assert target.read_bytes() == before


def test_an_output_folder_holding_the_users_images_is_never_marked(tmp_path):
    save(tmp_path / "d" / "a.png")
    save(tmp_path / "d" / "mine" / "b.png", seed=1)
    assert invoke("degrade", tmp_path / "d", "-o", tmp_path / "d" / "mine", "--op", "contrast").exit_code == 0
    assert not (tmp_path / "d" / "mine" / OUTPUT_MARKER).exists()
    assert tmp_path / "d" / "mine" / "b.png" in find_images(tmp_path / "d").paths
