"""Laying text out on a page: the stream of words or aksharas, the lines that hold them, justification.

A painter decides where the text block goes and what it must flow round (string holes, a
central motif); these functions fill its lines the way a scribe would, draw the words through
:mod:`ink`, and record what was written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from manurestore.data.synth.fonts import FontChoice, width_at_100
from manurestore.data.synth.ink import paste_run
from manurestore.data.synth.text import DANDA, DIGITS, DOUBLE_DANDA, INVOCATIONS, VIRAMA, verse_tokens

MIN_FONT_SIZE = 7.0  # smaller Devanagari is a grey smudge, whatever the page size


@dataclass(frozen=True)
class Writing:
    """What is written on a page and in which hand: render_page's info shows it, the manifest keeps the font."""

    font: str
    font_family: str
    font_size: float
    lines: tuple[str, ...]
    margin_text: tuple[str, ...]
    continuous: bool

    @classmethod
    def of(cls, choice: FontChoice, size: float, lines: list[str], margin_text: list[str], continuous: bool) -> Writing:
        return cls(choice.label, choice.face.family, round(size, 2), tuple(lines), tuple(margin_text), continuous)


@dataclass(frozen=True)
class TextBlock:
    """Where a page's text goes: its left and right edges, the top of its first line, the bottom of its last."""

    left: float
    right: float
    top: float
    bottom: float


@dataclass
class Unit:
    """A piece of text placed whole: a word, an akshara (scriptio continua) or a run of marks."""

    text: str
    red: bool
    space_before: bool


@dataclass
class Line:
    """One line of a text block: its baseline, the stretches free to write in, its font size."""

    baseline: float
    intervals: list[tuple[float, float]]
    size: float


def free_intervals(cuts, left: float, right: float, min_width: float) -> list[tuple[float, float]]:
    """The stretches of [left, right] outside the `cuts` that are wide enough to hold text."""
    intervals, x = [], left
    for c0, c1 in sorted(cuts):
        if c0 - x > min_width:
            intervals.append((x, c0))
        x = max(x, c1)
    if right - x > min_width:
        intervals.append((x, right))
    return intervals


def text_units(rng: np.random.Generator, *, continuous: bool, red_marks: bool, red_words: float, invocation: bool) -> Iterator[Unit]:
    """An endless stream of layout units: words (spaced) or aksharas (scriptio continua)."""
    verse = int(rng.integers(1, 140))
    tight_numbers = continuous or rng.random() < 0.5
    if invocation:
        text = INVOCATIONS[int(rng.integers(len(INVOCATIONS)))]
        for part in text.split(" "):
            yield Unit(part, red_marks or red_words > 0, True)
    first = True
    carry = ""
    while True:
        tokens = verse_tokens(rng, verse, 4, 8)
        if first and not invocation:  # a folio begins in the middle of a verse
            tokens = tokens[int(rng.integers(0, max(1, len(tokens) - 3))):]
        first = False
        i = 0
        while i < len(tokens):
            kind, value = tokens[i]
            if kind == "word":
                red = rng.random() < red_words
                aks = list(value)  # type: ignore[call-overload]
                if continuous:
                    # a halanta (म्) joins the next akshara into a conjunct when written
                    # continuously, so it travels with it as one unit
                    if carry:
                        aks[0] = carry + aks[0]
                        carry = ""
                    if aks[-1].endswith(VIRAMA):
                        carry = aks.pop()
                    for a in aks:
                        yield Unit(a, red, False)
                else:
                    yield Unit("".join(aks), red, True)
                i += 1
                continue
            if carry:
                yield Unit(carry, False, False)
                carry = ""
            # a run of marks and numbers: "।" or "॥ १२ ॥"
            j = i
            while j < len(tokens) and tokens[j][0] != "word":
                j += 1
            group = [str(v) for _, v in tokens[i:j]]
            text = "".join(group) if tight_numbers else " ".join(group)
            yield Unit(text, red_marks, True)
            i = j
        verse += 1


def write_lines(
    rng: np.random.Generator,
    lines: list[Line],
    choice: FontChoice,
    units: Iterator[Unit],
    shape: tuple[int, int],
    *,
    continuous: bool,
    above: float,
    below: float,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fill `lines` with `units`, justified as scribes do: (black ink, red ink, each line's text).

    The inks are coverage masks of `shape` (h, w). Units are placed by their shaped advance
    widths (which add up exactly: a halanta travels with the akshara it joins). The slack at
    the end of each interval is spread over a few gaps; each stretch between those gaps is
    shaped and drawn whole. A line's text joins its parts by a space, or not at all in
    scriptio continua.
    """
    ink = np.zeros(shape, np.float32)
    red = np.zeros(shape, np.float32)
    texts: list[str] = []
    pending = next(units)
    after_mark = False
    for line in lines:
        font = choice.at(line.size)
        k = line.size / 100.0
        space_char = width_at_100(choice, " ") * k
        gap_w = space_char * (0.7 if continuous else 1.0)
        pieces_text: list[str] = []
        for x0, x1 in line.intervals:
            placed: list[tuple[float, Unit, bool, float]] = []  # (x, unit, gap before, width)
            x = x0
            while True:
                w = width_at_100(choice, pending.text) * k
                gap = gap_w if placed and (pending.space_before or (continuous and after_mark)) else 0.0
                if x + gap + w > x1:
                    break
                placed.append((x + gap, pending, gap > 0, w))
                x += gap + w
                after_mark = pending.text[0] in (DANDA, DOUBLE_DANDA) or pending.text[0] in DIGITS
                pending = next(units)
            if not placed:
                continue
            n = len(placed)
            sep = "" if continuous else " "
            # justify: open the slack at a few places -- some spaces in spaced writing, some
            # akshara joins in scriptio continua (scribes leave small uneven gaps there)
            slack = x1 - x
            gapped = [i for i in range(1, n) if placed[i][2]]
            joins = [i for i in range(1, n) if not placed[i][2]]
            slots: list[int] = []
            if not continuous and slack > 0.5 and gapped:
                want = int(np.clip(math.ceil(slack / (0.6 * gap_w)), 1, len(gapped)))
                slots = sorted(gapped[int(j)] for j in rng.choice(len(gapped), size=want, replace=False))
                per_slot = min(slack / len(slots), 1.5 * gap_w + 0.15 * line.size)
            elif continuous and slack > 0.5 and n > 1:
                # the daṇḍa gaps first, then at most one join in four
                room = len(gapped) + max(1, len(joins) // 4) if joins else len(gapped)
                want = int(np.clip(math.ceil(slack / (0.25 * line.size)), 1, max(room, 1)))
                extra = max(0, want - len(gapped))
                picked = [joins[int(j)] for j in rng.choice(len(joins), size=min(extra, len(joins)), replace=False)] if joins else []
                slots = sorted(set(gapped) | set(picked))
                per_slot = min(slack / len(slots), 0.35 * line.size) if slots else 0.0
            else:
                per_slot = 0.0
            # pieces: drawn one by one, each shaped whole; a new piece starts at a slot, at a
            # gap of scriptio continua, or where the colour changes
            slot_set = set(slots)
            pieces: list[list[int]] = []
            shift = 0.0
            shifts: list[float] = []
            for i, (_, unit, gapped_i, _) in enumerate(placed):
                if i in slot_set:
                    shift += per_slot
                if i == 0 or i in slot_set or (continuous and gapped_i) or unit.red != placed[i - 1][1].red:
                    pieces.append([i])
                    shifts.append(shift)
                else:
                    pieces[-1].append(i)
            for members, piece_shift in zip(pieces, shifts):
                first = placed[members[0]]
                text = sep.join(placed[i][1].text for i in members)
                width = sum(placed[i][3] for i in members) + (len(members) - 1) * (0.0 if continuous else space_char)
                paste_run(red if first[1].red else ink, first[0] + piece_shift, line.baseline, text, font, width, above, below, line.size)
            pieces_text.append(sep.join(u.text for _, u, _, _ in placed))
        texts.append(" ".join(pieces_text))
    return ink, red, texts


def fit_lines(
    n_lines: int, height: float, width: float, extent: float, spacing: float, per_line: tuple[float, float]
) -> tuple[int, float, float]:
    """(lines, pitch, font size) for a text block; `extent` is the font's height per unit size.

    The size follows from the line count, unless a line would then hold fewer than
    per_line[0] or more than per_line[1] ems (odd --size shapes); then the line count follows
    from the clamped size.
    """
    pitch = height / n_lines
    size = pitch / (extent * spacing)
    clamped = max(float(np.clip(size, width / per_line[1], width / per_line[0])), MIN_FONT_SIZE)
    if abs(clamped - size) > 1e-6:
        n_lines = max(1, int(height / (extent * spacing * clamped)))
        pitch = height / n_lines
        size = max(min(clamped, pitch / (extent * spacing)), MIN_FONT_SIZE)
    return n_lines, pitch, size


def rule_lines(
    rng: np.random.Generator,
    n_lines: int,
    block: TextBlock,
    pitch: float,
    size: float,
    choice: FontChoice,
    *,
    above: float,
    below: float,
    cuts: Callable[[float, float], list[tuple[float, float]]],
) -> list[Line]:
    """`n_lines` lines down `block`, their text flowing round what `cuts(band_top, band_bottom)` keeps blank.

    `cuts` gives the stretches (x0, x1) that a line whose letters reach from band_top to
    band_bottom must leave blank: a string hole, a central motif. A handwritten font's size
    wavers a little from line to line.
    """
    lines = []
    for i in range(n_lines):
        baseline = block.top + i * pitch + above * size * 0.92
        band_top, band_bottom = baseline - above * size * 0.75, baseline + below * size * 0.5
        intervals = free_intervals(cuts(band_top, band_bottom), block.left, block.right, min_width=size * 2.5)
        jitter = rng.uniform(0.97, 1.03) if choice.face.family == "Kalam" else 1.0
        lines.append(Line(baseline, intervals, size * jitter))
    return lines


def write_margin_number(
    ink: np.ndarray, number: str, x: float, baseline: float, choice: FontChoice, size: float, *, above: float, below: float,
) -> None:
    """A folio number in the margin, centred on x, a little smaller than the text."""
    paste_run(ink, x, baseline, number, choice.at(size * 0.8),
              width_at_100(choice, number) * size * 0.8 / 100, above, below, size * 0.8, anchor="ms")
