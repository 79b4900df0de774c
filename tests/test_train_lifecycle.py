"""A run's life from the user's side: what it will cost, stop signals, resume messages, run folders
that --overwrite may and may not touch, and broken state files on --resume (one line, never a traceback)."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from manurestore.cli.app import app
from manurestore.errors import ManurestoreError, UsageError
from manurestore.models.checkpoint import CheckpointError
from manurestore.training import cost
from manurestore.training.run_folder import prepare_run_dir, write_run_config
from manurestore.training.state import load_state
from manurestore.training.trainer import TrainingInterrupted
from tests.test_training import config, make_pages, make_trainer

runner = CliRunner()


@pytest.fixture(autouse=True)
def working_dir_stays_empty(tmp_path_factory, monkeypatch):
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    yield
    assert not list(cwd.rglob("*")), "the test wrote into the working directory"


def train_args(tmp_path: Path, *extra: str) -> list[str]:
    data = tmp_path / "data"
    if not data.exists():
        make_pages(data, 6)
    return ["train", str(data), "--model", "vit-tiny", "--crop", "32", "--batch-size", "2", "--crops-per-image", "2",
            "--perceptual-weight", "0", "--val-fraction", "0.34", "--device", "cpu", "--log-every", "1",
            "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *extra]


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("manurestore: warning:")]
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    assert lines[0].startswith("manurestore: error: "), lines[0]
    return lines[0]


# ----- cost, progress and resume messages -----------------------------------------------------------


def test_the_cost_estimate_scales_with_model_crop_and_batch():
    from manurestore.models.registry import build_model

    with torch.device("meta"):
        tiny = build_model("vit-tiny").config
        base = build_model("vit-base").config
    device = torch.device("cpu")
    small = cost.estimate(tiny, 128, 8, False, 100, device, gflops=50.0)
    assert cost.estimate(tiny, 128, 16, False, 100, device, gflops=50.0).seconds == pytest.approx(2 * small.seconds)
    assert cost.estimate(tiny, 128, 8, False, 100, device, gflops=100.0).seconds == pytest.approx(small.seconds / 2)
    assert cost.estimate(base, 256, 16, True, 100, device, gflops=50.0).seconds > 50 * small.seconds
    assert cost.estimate(tiny, 128, 8, True, 100, device, gflops=50.0).seconds > small.seconds  # the VGG costs
    assert cost.device_gflops(device) > 0.1


def test_duration_reads_like_a_person_says_it():
    assert cost.duration(42) == "42 s"
    assert cost.duration(600) == "10 min"
    assert cost.duration(3 * 3600 + 20 * 60) == "3 h 20 min"
    assert cost.duration(5 * 86400) == "5.0 days"


def test_a_long_cpu_run_gets_a_smaller_model_suggested_without_being_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cost, "device_gflops", lambda device: 0.001)  # a very slow CPU
    trainer = make_trainer(config(tmp_path, model="vit-small", crop=32))
    plan = trainer.plan()
    assert plan["cost"].seconds > cost.LONG_CPU_RUN_SECONDS
    assert "--model vit-tiny would take about" in plan["suggestion"] and "GPU" in plan["suggestion"]
    monkeypatch.setattr(cost, "device_gflops", lambda device: 1e6)
    assert make_trainer(config(tmp_path / "fast")).plan()["suggestion"] is None


def test_training_prints_its_cost_first_an_eta_and_no_nan(tmp_path):
    result = runner.invoke(app, train_args(tmp_path, "--epochs", "2"))
    assert result.exit_code == 0, result.output
    assert "steps to go, about" in result.stderr and "GFLOP/s" in result.stderr
    assert result.stderr.index("steps to go") < result.stderr.index("epoch 1:")
    assert "ETA" in result.stderr
    assert "nan" not in result.output.lower()


def test_resume_says_where_it_resumed(tmp_path):
    assert runner.invoke(app, train_args(tmp_path, "--epochs", "1")).exit_code == 0
    steps = torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"]
    result = runner.invoke(app, train_args(tmp_path, "--epochs", "2", "--resume"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())  # rich wraps at 80 columns
    assert f"resumed {tmp_path / 'run'} at step {steps} of" in text


def test_ctrl_c_before_the_first_step_leaves_nothing_and_the_same_command_starts_again(tmp_path, monkeypatch):
    cfg = config(tmp_path)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    write_run_config(cfg)

    def interrupt(kind, payload):
        if kind == "plan":
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="before the first step.*same command"):
        make_trainer(cfg, on_event=interrupt).run()
    assert not (cfg.run_dir / "state.pt").exists() and not (cfg.run_dir / "config.json").exists()
    prepare_run_dir(cfg, resume=False, overwrite=False)  # the same command goes ahead


@pytest.mark.slow
def test_sigterm_saves_like_ctrl_c_and_the_run_resumes(tmp_path):
    """A real training process gets SIGTERM mid-run: it saves, exits 143 with one line, and resumes."""
    args = train_args(tmp_path, "--epochs", "400", "--val-every", "1000")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "manurestore", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and sum('"train"' in line for line in metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("manurestore: error:")]
    assert len(errors) == 1 and "stopped by SIGTERM at step" in errors[0] and "--resume" in errors[0], stderr
    assert "Traceback" not in stderr
    step = torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"]
    assert step >= 3
    resumed = runner.invoke(app, train_args(tmp_path, "--resume", "--max-steps", str(step + 2)))
    assert resumed.exit_code == 0, resumed.output
    assert f"at step {step} of" in " ".join(resumed.stderr.split())  # rich wraps at 80 columns
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"] == step + 2


# ----- run folders: --overwrite, --resume --------------------------------------------------------------


def test_overwrite_refuses_a_folder_that_holds_no_run_and_touches_nothing(tmp_path):
    cfg = config(tmp_path)
    cfg.run_dir.mkdir()
    (cfg.run_dir / "metrics.jsonl").write_text("my own notes\n")
    (cfg.run_dir / "samples").mkdir()
    (cfg.run_dir / "samples" / "holiday.png").write_bytes(b"mine")
    with pytest.raises(UsageError, match="not a run folder"):
        prepare_run_dir(cfg, resume=False, overwrite=True)
    with pytest.raises(UsageError, match="which a run would replace"):
        prepare_run_dir(cfg, resume=False, overwrite=False)
    assert (cfg.run_dir / "metrics.jsonl").read_text() == "my own notes\n"
    assert (cfg.run_dir / "samples" / "holiday.png").read_bytes() == b"mine"


def test_overwrite_of_a_run_removes_only_the_runs_files(tmp_path):
    cfg = config(tmp_path)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    make_trainer(cfg).run()
    write_run_config(cfg)
    (cfg.run_dir / "notes.txt").write_text("keep")
    (cfg.run_dir / "samples" / "my-figure.png").write_bytes(b"keep")
    prepare_run_dir(cfg, resume=False, overwrite=True)
    left = sorted(str(p.relative_to(cfg.run_dir)) for p in cfg.run_dir.rglob("*"))
    assert left == ["notes.txt", "samples", "samples/my-figure.png"]


def test_a_run_stopped_before_its_first_save_names_the_one_command_that_works(tmp_path):
    assert runner.invoke(app, train_args(tmp_path, "--epochs", "1")).exit_code == 0
    (tmp_path / "run" / "state.pt").unlink()  # as if killed with -9 before the first save
    for extra, fix in ((["--resume"], "--overwrite instead of --resume"), ([], "pass --overwrite to start it again")):
        result = runner.invoke(app, train_args(tmp_path, *extra))
        assert result.exit_code == 2
        assert fix in one_error_line(result)
    assert runner.invoke(app, train_args(tmp_path, "--epochs", "1", "--overwrite")).exit_code == 0


# ----- broken state files on --resume ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A finished one-epoch run whose state the tests below break in each way a user may meet."""
    root = tmp_path_factory.mktemp("saved")
    result = runner.invoke(app, train_args(root, "--epochs", "1"))
    assert result.exit_code == 0, result.output
    return root


def _copy_run(saved: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(saved / "data", tmp_path / "data")
    shutil.copytree(saved / "run", tmp_path / "run")
    settings = tmp_path / "run" / "config.json"  # the copy's own paths, so only the damage differs
    settings.write_text(settings.read_text().replace(str(saved), str(tmp_path)))
    return tmp_path / "run"


def _edit_state(run: Path, change) -> None:
    state = torch.load(run / "state.pt", weights_only=True)
    change(state)
    torch.save(state, run / "state.pt")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


BROKEN_STATES = {
    "missing keys": lambda run: _edit_state(run, lambda s: s.pop("optimizer")),
    "negative step": lambda run: _edit_state(run, lambda s: s.update(step=-3)),
    "absurd step": lambda run: _edit_state(run, lambda s: s.update(step=10**15)),
    "string best_psnr": lambda run: _edit_state(run, lambda s: s.update(best_psnr="high")),
    "rng of the wrong size": lambda run: _edit_state(run, lambda s: s.update(torch_rng=torch.zeros(7, dtype=torch.uint8))),
    "nan weights": lambda run: _edit_state(run, lambda s: next(iter(s["model"].values())).fill_(math.nan)),
    "another model's weights": lambda run: _edit_state(run, lambda s: s.update(model={"nonsense": torch.zeros(2)})),
    "zero bytes": lambda run: (run / "state.pt").write_bytes(b""),
    "not a state": lambda run: torch.save([1, 2, 3], run / "state.pt"),
    "garbage": lambda run: (run / "state.pt").write_bytes(os.urandom(300)),
    "code payload": lambda run: (run / "state.pt").write_bytes(pickle.dumps(Payload())),
    "a bad metrics line": lambda run: (run / "metrics.jsonl").write_text(
        (run / "metrics.jsonl").read_text() + "{not json\n"),
}


@pytest.mark.parametrize("damage", sorted(BROKEN_STATES))
def test_a_broken_run_folder_on_resume_is_one_line_naming_the_file(tmp_path, saved_run, damage, capfd):
    run = _copy_run(saved_run, tmp_path)
    BROKEN_STATES[damage](run)
    result = runner.invoke(app, train_args(tmp_path, "--epochs", "2", "--resume"))
    line = one_error_line(result)
    assert result.exit_code in (1, 2)
    assert "state.pt" in line or "metrics.jsonl" in line, line
    assert "weights_only" not in line and "this must never run" not in capfd.readouterr().out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["step", "model", "optimizer", "scaler", "ema", "best_psnr", "identity", "torch_rng", "extra"]),
    value=st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
        st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=4), st.floats(), max_size=3),
        st.builds(lambda n: torch.zeros(n, dtype=torch.uint8), st.integers(0, 6000)),
    ),
    drop=st.booleans(),
)
def test_any_state_file_resumes_or_is_refused_with_a_checkpoint_error(tmp_path_factory, saved_run, key, value, drop):
    """Fuzz: a state.pt with any field replaced or dropped either resumes or is a CheckpointError."""
    tmp = tmp_path_factory.mktemp("fuzz")
    run = _copy_run(saved_run, tmp)
    _edit_state(run, lambda s: s.pop(key, None) if drop else s.update({key: value}))
    before = (run / "state.pt").read_bytes()
    cfg = config(tmp, epochs=2, data=tmp / "data", run_dir=run, cache_dir=tmp / "cache")
    try:
        state = load_state(run / "state.pt")
        make_trainer(cfg).load_state_dict(state, source=str(run / "state.pt"))
    except ManurestoreError as error:
        assert isinstance(error, CheckpointError) and "state.pt" in str(error)
        assert "\n" not in str(error)
    assert (run / "state.pt").read_bytes() == before


def test_every_file_a_run_writes_gets_the_users_usual_permissions(tmp_path):
    """safetensors recreates its file with 0600; the user's umask decides, as for any file they make."""
    umask = os.umask(0o022)
    try:
        assert runner.invoke(app, train_args(tmp_path, "--max-steps", "1")).exit_code == 0
    finally:
        os.umask(umask)
    files = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"best.safetensors", "last.safetensors", "state.pt", "config.json"}
    assert {oct(path.stat().st_mode & 0o777) for path in files} == {oct(0o644)}


def test_init_weights_bundled_names_the_shipped_model_unless_a_file_has_that_name(tmp_path, monkeypatch):
    from manurestore.models.checkpoint import bundled_model_path
    from manurestore.training.config import TrainConfig

    assert TrainConfig(init_weights="bundled").init_weights == bundled_model_path()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundled").write_bytes(b"mine")
    assert TrainConfig(init_weights="bundled").init_weights == Path("bundled")
    (tmp_path / "bundled").unlink()


def test_a_state_pt_of_the_users_own_is_not_a_run_and_survives_overwrite(tmp_path):
    cfg = config(tmp_path)
    cfg.run_dir.mkdir()
    (cfg.run_dir / "state.pt").write_bytes(b"my own state")
    (cfg.run_dir / "config.json").write_text('{"lr": 1}')
    with pytest.raises(UsageError, match="not a run folder"):
        prepare_run_dir(cfg, resume=False, overwrite=True)
    with pytest.raises(UsageError, match="holds no run to resume"):
        prepare_run_dir(cfg, resume=True, overwrite=False)
    assert (cfg.run_dir / "state.pt").read_bytes() == b"my own state"


def test_overwrite_leaves_folders_and_linked_samples_alone(tmp_path):
    cfg = config(tmp_path)
    prepare_run_dir(cfg, resume=False, overwrite=False)
    write_run_config(cfg)
    (cfg.run_dir / "best.safetensors").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "epoch-001.png").write_bytes(b"not the run's")
    (cfg.run_dir / "samples").symlink_to(elsewhere)
    prepare_run_dir(cfg, resume=False, overwrite=True)
    assert (elsewhere / "epoch-001.png").exists() and (cfg.run_dir / "best.safetensors").is_dir()
    assert not (cfg.run_dir / "config.json").exists()


def test_a_run_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(app, train_args(tmp_path, "--epochs", "1", "--run-dir", str(tmp_path / "afile"), *extra))
        assert result.exit_code == 2 and "is a file, not a folder" in one_error_line(result)
