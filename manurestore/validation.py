"""Checks for values read from files a user may not have written: bounded whole numbers, short
printable texts, JSON without NaN, and one-line messages from pydantic's reports.

Model metadata, run settings and presets are read from files that can be damaged or hostile; each
field is checked before anything is allocated, and a message shows a value from the file cut short
and printable, so it stays one line.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Sequence

from pydantic import BaseModel, PlainValidator, ValidationError


def whole_number(low: int, high: int) -> Any:
    """An int field in [low, high] that refuses bools, floats and text, with a message that says so."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return Annotated[int, PlainValidator(check)]


def one_of(choices: Sequence[int]) -> Any:
    """An int field that takes only the listed values."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
        return value

    return Annotated[int, PlainValidator(check)]


def number(low: float, high: float) -> Any:
    """A finite float field in [low, high] (ints welcome, bools and text not)."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"must be a number from {low} to {high}")
        return float(value)

    return Annotated[float, PlainValidator(check)]


def short_text(limit: int) -> Any:
    """A str field of at most `limit` printable characters, so a hostile file cannot flood or
    break a message that shows it."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit or not value.isprintable():
            raise ValueError(f"must be a text of at most {limit} printable characters")
        return value

    return Annotated[str, PlainValidator(check)]


def shown(value: object, limit: int = 60) -> str:
    """A value as a message shows it: its repr on one line, cut short so a hostile file cannot
    flood the line (a tensor's or a long list's repr spans several)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def readable_path(parts: Sequence[str | int]) -> str:
    """A field's place (`model_config.conv_channels.3`) as one line: a key with a newline or other
    unprintable character from a hostile file is shown as its repr."""
    return ".".join(str(part) if str(part).isprintable() else repr(part) for part in parts)


def validation_problem(error: ValidationError, subject: str) -> str:
    """One line from pydantic's report on `subject` (say "metadata"): the first field and what is
    wrong with it. `whole_number` and its kin say "must be …"; pydantic's own messages are kept."""
    problem = error.errors()[0]
    where = f"{subject} field {readable_path(problem['loc'])}" if problem["loc"] else subject
    if problem["type"] == "missing":
        return f"{where} is missing"
    if problem["type"] == "extra_forbidden":
        return f"{where} is an unknown key (written by a newer manurestore?)"
    message = problem["msg"].removeprefix("Value error, ")
    if not message.startswith("must"):
        message = f"is invalid: {message}"
    got = problem["input"]
    if isinstance(got, (dict, BaseModel)):
        return f"{where} {message}"
    return f"{where} {message}, got {shown(got)}"


def finite_json(text: str):
    """`json.loads` that refuses NaN, Infinity and numbers too large for a float (1e999), which
    Python's json accepts; for settings and model metadata read back from files."""

    def finite(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise ValueError(f"{literal} is not a finite number")
        return value

    return json.loads(text, parse_float=finite, parse_constant=finite)
