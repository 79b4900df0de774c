"""The CLI's error contract: every mistake a user makes is ONE line on stderr, `manurestore: error: ...`,
naming the problem and the fix; usage errors exit 2, failures 1; help reads like a Unix tool's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, features
from typer.testing import CliRunner

from manurestore.cli.app import app

runner = CliRunner()
BOX = ("╭", "│", "╰")
NEEDS_RAQM = pytest.mark.skipif(not features.check("raqm"), reason="synth refuses to run without Pillow's raqm")


@pytest.fixture
def place(tmp_path, monkeypatch):
    """tmp_path as the working folder, with a tiny page, a text file and an empty folder in it."""
    monkeypatch.chdir(tmp_path)
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "page.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    return tmp_path


def error_line(stderr: str) -> str:
    """The one error line of a run, after checking there is exactly one and nothing else."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("manurestore: warning:")]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("manurestore: error: "), line
    assert "Traceback" not in stderr and not any(mark in stderr for mark in BOX), stderr
    return line


# (argv, env, exit code, what the line must say)
MISTAKES = [
    pytest.param(["restor", "x"], {}, 2, "no such command 'restor'; did you mean 'restore'?", id="mistyped-command"),
    pytest.param(["visualize", "nosuch"], {}, 2, "no such command 'nosuch'; see manurestore visualize -h", id="mistyped-visualize-command"),
    pytest.param(["degrade", "page.png", "--bogus"], {}, 2, "no such option: --bogus; see manurestore degrade -h", id="unknown-option"),
    pytest.param(["degrade", "page.png", "--batch"], {}, 2, "did you mean --batch-size?", id="option-prefix"),
    pytest.param(["degrade", "page.png", "--op"], {}, 2, "'--op' requires an argument; see manurestore degrade -h", id="option-without-value"),
    pytest.param(["plugins", "extra"], {}, 2, "unexpected extra argument", id="extra-argument"),
    pytest.param(["degrade", "page.png", "--seed", "abc"], {}, 2, "invalid value for '--seed'", id="seed-not-integer"),
    pytest.param(["degrade", "page.png", "--quality", "0"], {}, 2, "invalid value for '--quality'", id="quality-0"),
    pytest.param(["restore", "page.png", "--batch-size", "-1"], {}, 2, "invalid value for '--batch-size'", id="batch-size-negative"),
    pytest.param(["synth", "out", "--pages", "0"], {}, 2, "--pages must be at least 1", id="synth-pages-0", marks=NEEDS_RAQM),
    pytest.param(["synth", "out", "--kind", "vellum"], {}, 2, "'vellum' is not one of", id="synth-kind"),
    pytest.param(["degrade", "--seed", "3"], {}, 2, "missing argument 'INPUTS'; see manurestore degrade -h", id="missing-argument"),
    pytest.param(["visualize", "flow", "page.png"], {}, 2, "missing option '-o'", id="missing-option"),
    pytest.param(["degrade", "nope.png"], {}, 2, "nope.png: no such file or folder", id="degrade-no-input"),
    pytest.param(["restore", "nope.png"], {}, 2, "nope.png: no such file or folder", id="restore-no-input"),
    pytest.param(["evaluate", "nope"], {}, 2, "nope: no such file or folder", id="evaluate-no-input"),
    pytest.param(["degrade", "page.png", "--op", "nosuch"], {}, 2, "unknown op 'nosuch'; known ops: contrast", id="unknown-op"),
    pytest.param(["degrade", "page.png", "--preset", "nosuch"], {}, 2, "unknown preset 'nosuch'", id="unknown-preset"),
    pytest.param(["degrade", "page.png", "--device", "cuda:99"], {}, 2, "cuda:99", id="device-cuda-99"),
    pytest.param(["degrade", "page.png", "--device", "gpu"], {}, 2, "'gpu' is not a device name", id="device-gpu"),
    pytest.param(["restore", "page.png", "--precision", "fp8"], {}, 2, "--precision 'fp8'", id="precision"),
    pytest.param(["restore", "page.png", "--tile", "4"], {}, 2, "invalid value for '--tile'", id="tile-too-small"),
    pytest.param(["restore", "notes.txt"], {}, 1, "notes.txt: not an image file", id="restore-not-an-image"),
    pytest.param(
        ["train", "empty", "--run-dir", "run", "--device", "cpu"], {}, 2, "manurestore synth", id="train-empty-folder",
    ),
    pytest.param(
        ["degrade", "page.png", "-o", "out.png"], {"MANURESTORE_MAX_PIXELS": "abc"}, 2, "MANURESTORE_MAX_PIXELS",
        id="max-pixels-not-a-number",
    ),
]


@pytest.mark.parametrize(("argv", "env", "code", "says"), MISTAKES)
def test_a_mistake_is_one_line_and_its_exit_code(place, argv, env, code, says):
    result = runner.invoke(app, argv, env=env, prog_name="manurestore")
    line = error_line(result.stderr)
    assert says in line, line
    assert result.exit_code == code, f"exit {result.exit_code}: {line}"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_empty_folder_in_train_says_it_holds_no_images(place):
    result = runner.invoke(app, ["train", "empty", "--run-dir", "run", "--device", "cpu"], prog_name="manurestore")
    assert "holds no images" in error_line(result.stderr)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["restor", "x"], "did you mean 'restore'? (see "),
        (["visualize", "nosuch"], "no such command 'nosuch'; see "),
        (["degrade", "page.png", "--seed", "abc"], "invalid value for '--seed'"),
    ],
    ids=["mistyped-command", "mistyped-visualize-command", "seed-not-integer"],
)
def test_the_installed_entry_point_keeps_the_contract(place, argv, says):
    """The same through `python -m manurestore`, i.e. typer's real main and sys.exit, not CliRunner."""
    done = subprocess.run([sys.executable, "-m", "manurestore", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in error_line(done.stderr), done.stderr
    assert done.stdout == ""


def test_an_unknown_name_in_manurestore_plugins_is_one_warning_naming_the_installed_ones(monkeypatch):
    monkeypatch.setenv("MANURESTORE_PLUGINS", "does_not_exist")
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "does_not_exist" in line]
    assert len(warnings) == 1 and warnings[0].startswith("manurestore: warning: MANURESTORE_PLUGINS names 'does_not_exist'")
    assert "no installed plugin is called that; installed plugins: " in warnings[0]


def test_no_arguments_shows_the_help_and_h_exits_0():
    assert "Commands" in runner.invoke(app, []).stdout
    for argv in (["-h"], ["visualize", "-h"], ["degrade", "-h"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0 and "Usage:" in result.stdout, argv


COMMANDS = [
    ["synth"], ["degrade"], ["train"], ["evaluate"], ["restore"], ["plugins"], ["visualize"],
    ["visualize", "flow"], ["visualize", "presets"], ["visualize", "curves"], ["visualize", "report"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_reads_like_a_unix_tool(command):
    result = runner.invoke(app, [*command, "-h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for odd in ("<list[", "<bool>", "<int", "<str>", "<path>", "<float>", "{"):
        assert odd not in result.stdout, f"{' '.join(command)} -h shows {odd!r}"


def test_help_names_arguments_in_capitals_and_shows_defaults():
    degrade = runner.invoke(app, ["degrade", "-h"], env={"COLUMNS": "200"}).stdout
    assert "[OPTIONS] INPUTS..." in degrade and "INTEGER" in degrade and "PATH" in degrade
    train = runner.invoke(app, ["train", "-h"], env={"COLUMNS": "200"}).stdout
    assert "[OPTIONS] [DATA]..." in train
    epochs = next(line for line in train.splitlines() if line.lstrip("│ ").startswith("--epochs"))
    assert "INTEGER" in epochs and "[default: " in epochs, epochs
