"""Presets: TOML files of pipeline steps, validated against each op's `Params`.

A shipped preset is named (`aged`); a user's preset is a path to a `.toml` file. Every error
names the file, the step and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from manurestore.degradations.base import Step
from manurestore.errors import ManurestoreError, UsageError
from manurestore.plugins import registry
from manurestore.validation import shown

STEP_KEYS = {"op", "p", "provided_by"}
TOP_KEYS = {"description", "base", "undamaged", "step"}


class PresetError(ManurestoreError):
    """A preset that cannot be used; the message names the file, step and key."""


@dataclass(frozen=True)
class Preset:
    """A validated preset: `Pipeline.from_preset` runs its steps."""

    name: str
    description: str
    steps: tuple[Step, ...]
    undamaged: float = 0.0  # share of images left clean, so a restorer learns to leave them alone


def list_presets() -> list[str]:
    """Names of the presets shipped with manurestore."""
    folder = resources.files("manurestore.degradations") / "presets"
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def preset_text(name_or_path: str | Path) -> tuple[str, str]:
    """(label for messages, TOML text) of a shipped preset name or a file path."""
    text = str(name_or_path)
    if text in list_presets():
        resource = resources.files("manurestore.degradations") / "presets" / f"{text}.toml"
        return f"preset {text}", resource.read_text(encoding="utf-8")
    path = Path(name_or_path)
    if path.suffix.lower() != ".toml" and not path.exists():
        raise UsageError(f"unknown preset {text!r}; shipped presets: {', '.join(list_presets())}, or give a path to a .toml file")
    if not path.is_file():
        raise UsageError(f"{path}: preset file not found")
    try:
        return str(path), path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PresetError(f"{path}: cannot read preset ({error})") from None


def preset_label(name_or_path: str | Path) -> str:
    """The short name used in output file names: `aged`, or a user file's stem."""
    text = str(name_or_path)
    return text if text in list_presets() else Path(text).stem


def read_preset(name_or_path: str | Path) -> Preset:
    """Parse and validate a preset: every op installed, every key known and within its bounds.

    `base = "broad-real"` starts from a shipped preset's steps and appends the file's own, so a
    variant (another `undamaged` share, one more step) need not copy the steps it shares.
    """
    label, text = preset_text(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PresetError(f"{label}: not valid TOML ({error})") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise PresetError(f"{label}: unknown top-level key(s) {sorted(unknown)[:5]}; allowed: description, base, undamaged, [[step]]")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise PresetError(f"{label}: key 'description' must be a text, got {shown(description)}")
    undamaged = data.get("undamaged", 0.0)
    if isinstance(undamaged, bool) or not isinstance(undamaged, (int, float)) or not 0.0 <= undamaged < 1.0:
        raise PresetError(f"{label}: key 'undamaged' must be a share in [0, 1), got {shown(undamaged)}")
    base_steps = _base_steps(label, data.get("base"))
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not (raw_steps or base_steps):
        raise PresetError(f"{label}: no [[step]] tables; a preset needs at least one step")
    ops = registry()
    steps = tuple(_read_step(f"{label}: step {number}", raw, ops) for number, raw in enumerate(raw_steps, start=1))
    return Preset(preset_label(name_or_path), description, base_steps + steps, float(undamaged))


def _base_steps(label: str, base: object) -> tuple[Step, ...]:
    """The steps of the shipped preset named by `base` (none without one). Only shipped presets
    may be a base: ours never chain back to themselves, and a user's file cannot start a loop."""
    if base is None:
        return ()
    if not isinstance(base, str) or base not in list_presets():
        raise PresetError(f"{label}: key 'base' must name a shipped preset ({', '.join(list_presets())}), got {shown(base)}")
    return read_preset(base).steps


def _read_step(where: str, raw: object, ops: dict) -> Step:
    """One [[step]] table as a Step, or a PresetError naming the file, the step and the key."""
    if not isinstance(raw, dict):
        raise PresetError(f"{where}: not a table but {shown(raw)}; write each step as [[step]] with op = \"name\"")
    if "op" not in raw:
        raise PresetError(f"{where}: missing key 'op' (the degradation's name)")
    name = raw["op"]
    if not isinstance(name, str):
        raise PresetError(f"{where}: key 'op' must be the name of a degradation, got {shown(name)}; installed ops: {', '.join(sorted(ops))}")
    where = f"{where} ({_label(name)})"
    if name not in ops:
        provider = raw.get("provided_by")
        hint = f" (provided by {_label(provider)}; pip install it)" if isinstance(provider, str) else ""
        raise PresetError(f"{where}: unknown op {shown(name)}{hint}; installed ops: {', '.join(sorted(ops))}")
    probability = raw.get("p", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0.0 <= probability <= 1.0:
        raise PresetError(f"{where}: key 'p' must be a probability in [0, 1], got {shown(probability)}")
    values = {key: value for key, value in raw.items() if key not in STEP_KEYS}
    cls = ops[name].cls
    try:
        params = cls.Params(**values)
    except ValidationError as error:
        raise PresetError(f"{where}: {_first_problem(error, cls)}") from None
    return Step(cls(params), float(probability))


def _label(text: str) -> str:
    """A name from the file as is, or as `shown` gives it where it is long or unprintable."""
    return text if text.isprintable() and len(text) <= 60 else shown(text)


def _first_problem(error: ValidationError, cls) -> str:
    """One readable line from pydantic's report: the key, what is wrong with it and the value given."""
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"]) or "value"
    if problem["type"] == "extra_forbidden":
        known = ", ".join(cls.Params.model_fields)
        return f"unknown key {key!r}; {cls.name} takes: {known}"
    message = problem["msg"].removeprefix("Value error, ")
    if not problem["loc"]:
        return message
    if problem["type"] == "value_error":  # our own validators say what they got
        return f"key {key!r}: {message}"
    return f"key {key!r}: {message}, got {shown(problem['input'])}"
