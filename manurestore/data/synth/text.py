"""Devanagari text for synthetic pages: an akshara (orthographic syllable) generator and the grammar that checks it.

The words are not real Sanskrit, but every one is made of valid syllables, so HarfBuzz never
has to draw a dotted circle for a broken cluster; the tests hold the generator to the grammar.
"""

from __future__ import annotations

import re

import numpy as np

VIRAMA = "\u094d"  # ्
ANUSVARA = "\u0902"  # ं
VISARGA = "\u0903"  # ः
CHANDRABINDU = "\u0901"  # ँ
DANDA = "\u0964"  # ।
DOUBLE_DANDA = "\u0965"  # ॥
OM = "\u0950"  # ॐ
DIGITS = "०१२३४५६७८९"

# Sanskrit consonants with rough text frequencies (single consonant onsets).
_CONSONANT_WEIGHTS = {
    "क": 3.5, "ख": 0.4, "ग": 1.6, "घ": 0.3, "ङ": 0.05,
    "च": 2.2, "छ": 0.3, "ज": 1.4, "झ": 0.05, "ञ": 0.05,
    "ट": 0.5, "ठ": 0.2, "ड": 0.3, "ढ": 0.1, "ण": 1.0,
    "त": 6.5, "थ": 0.6, "द": 2.8, "ध": 1.6, "न": 5.5,
    "प": 3.0, "फ": 0.1, "ब": 0.7, "भ": 1.5, "म": 4.5,
    "य": 3.8, "र": 5.0, "ल": 1.3, "व": 4.5,
    "श": 1.6, "ष": 1.4, "स": 4.5, "ह": 1.8,
}
CONSONANTS = "".join(_CONSONANT_WEIGHTS)

# Conjuncts that occur in Sanskrit (C + ् + C, a few triples). Every one is a valid onset.
CONJUNCTS = tuple(
    "क्ष त्र ज्ञ श्र स्त द्ध द्व न्त न्द न्न स्व त्व प्र क्र ग्र ध्य र्म र्थ र्व र्ण च्च त्त ष्ट ष्ठ "
    "ष्ण म्ब म्भ ञ्च ञ्ज ङ्ग ङ्क स्म त्म न्य श्च ह्म ब्र द्य ण्ड ण्ट न्ध ल्प ल्ल प्त क्त स्थ द्र भ्य "
    "त्य क्य स्य स्त्र न्त्र त्र्य ष्ट्र र्त्य ज्ज द्भ ग्ध ब्ध स्क ह्न ह्य ह्व श्व क्व ज्य व्य श्य द्म "
    "न्म प्य म्य ग्न त्स र्ध्व श्न ष्प ष्क र्ग र्य र्त र्द र्ध र्श र्ष र्ह".split()
)
_RAKAR_BASES = "कगतदपबभमशसवधघ"  # C + ्र
_YAPHALA_BASES = "कतदनमसवशधभप"  # C + ्य

# Independent vowels (only at the start of a word) and dependent vowel signs (matras).
_VOWEL_WEIGHTS = {
    "अ": 0.30, "आ": 0.12, "इ": 0.12, "ई": 0.02, "उ": 0.12, "ऊ": 0.02,
    "ऋ": 0.03, "ए": 0.12, "ऐ": 0.03, "ओ": 0.06, "औ": 0.03,
}
INDEPENDENT_VOWELS = "".join(_VOWEL_WEIGHTS) + "ॠऌ"
_MATRA_WEIGHTS = {
    "": 0.42, "ा": 0.15, "ि": 0.10, "ी": 0.05, "ु": 0.08, "ू": 0.03,
    "ृ": 0.025, "े": 0.07, "ै": 0.02, "ो": 0.04, "ौ": 0.01,
}
MATRAS = "".join(m for m in _MATRA_WEIGHTS if m) + "ॄ"


# Openings a scribe writes before the first verse of a work (paper folios, sometimes palm leaves).
INVOCATIONS = (
    "॥ श्रीगणेशाय नमः ॥",
    "॥ श्री ॥",
    "ॐ नमः शिवाय ॥",
    "॥ श्रीसरस्वत्यै नमः ॥",
    "॥ श्रीगुरुभ्यो नमः ॥",
)


def _table(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    p = np.fromiter(weights.values(), dtype=np.float64)
    return list(weights), np.cumsum(p / p.sum())


_TABLES: dict[int, tuple[list[str], np.ndarray]] = {}


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    table = _TABLES.get(id(weights))
    if table is None:
        table = _TABLES[id(weights)] = _table(weights)
    keys, cdf = table
    return keys[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(keys) - 1)]


def _onset(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.15:
        return CONJUNCTS[int(rng.integers(len(CONJUNCTS)))]
    if r < 0.19:
        return _RAKAR_BASES[int(rng.integers(len(_RAKAR_BASES)))] + VIRAMA + "र"
    if r < 0.22:
        return _YAPHALA_BASES[int(rng.integers(len(_YAPHALA_BASES)))] + VIRAMA + "य"
    return _weighted(rng, _CONSONANT_WEIGHTS)


def _consonant_syllable(rng: np.random.Generator) -> str:
    onset = _onset(rng)
    matra = _weighted(rng, _MATRA_WEIGHTS)
    if matra == "ृ" and onset.endswith("र"):
        matra = "ु"  # रृ / ्रृ do not occur in Sanskrit
    mod = ANUSVARA if rng.random() < 0.06 else ""
    return onset + matra + mod


def make_syllables(rng: np.random.Generator, n: int) -> list[str]:
    """`n` aksharas that together form one Sanskrit-looking word.

    The first may be an independent vowel (अ, इ, ए ...), the others start with a consonant
    or conjunct and may carry a matra and anusvara; the last may carry a visarga, and a
    word-final halanta consonant (म्, त्, न्, क्) may follow as one extra akshara.
    Every element passes :func:`is_valid_devanagari_syllable`.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    out: list[str] = []
    for i in range(n):
        if i == 0 and rng.random() < 0.14:
            vowel = _weighted(rng, _VOWEL_WEIGHTS)
            out.append(vowel + (ANUSVARA if rng.random() < 0.05 else ""))
        else:
            out.append(_consonant_syllable(rng))
    ending = rng.random()
    last = out[-1]
    if ending < 0.22 and not last.endswith(ANUSVARA):
        out[-1] = last + VISARGA
    elif ending < 0.40 and not last.endswith(ANUSVARA):
        out.append(str(rng.choice(["म्", "म्", "म्", "म्", "त्", "न्", "क्"])))
    return out


def make_word(rng: np.random.Generator, syllables: int | None = None) -> str:
    """One word of `syllables` aksharas (2 to 5 when None)."""
    n = int(rng.integers(2, 6)) if syllables is None else syllables
    return "".join(make_syllables(rng, n))


def to_devanagari_digits(number: int) -> str:
    """12 -> '१२'."""
    return "".join(DIGITS[int(d)] for d in str(int(number)))


def _pada_words(rng: np.random.Generator, syllables: int) -> list[list[str]]:
    """Words (as akshara lists) whose syllables add up to `syllables` (halanta not counted)."""
    words: list[list[str]] = []
    left = syllables
    while left > 0:
        n = min(left, int(rng.integers(2, 6)))
        if left - n == 1:  # avoid a one-syllable tail word most of the time
            n = left
        words.append(make_syllables(rng, n))
        left -= n
    return words


def verse_tokens(
    rng: np.random.Generator, number: int | None, padas: int, syllables_per_pada: int
) -> list[tuple[str, object]]:
    """A verse as tokens: ("word", [aksharas]) and ("mark", "।" | "॥" | "१२")."""
    tokens: list[tuple[str, object]] = []
    for p in range(padas):
        tokens.extend(("word", w) for w in _pada_words(rng, syllables_per_pada))
        if p == padas - 1:
            tokens.append(("mark", DOUBLE_DANDA))
            if number is not None:
                tokens.append(("num", to_devanagari_digits(number)))
                tokens.append(("mark", DOUBLE_DANDA))
        elif p % 2 == 1:
            tokens.append(("mark", DANDA))
    return tokens


def make_verse(
    rng: np.random.Generator,
    number: int | None = None,
    *,
    padas: int = 4,
    syllables_per_pada: int = 8,
) -> str:
    """A śloka-shaped verse: 4 pādas of 8 syllables, '।' after the 2nd, '॥ 12 ॥' at the end.

    >>> make_verse(np.random.default_rng(0), 12)  # doctest: +SKIP
    'धर्मक्षेत्रे कुरुक्षेत्रे ... । ... ॥ १२ ॥'
    """
    parts = []
    for kind, value in verse_tokens(rng, number, padas, syllables_per_pada):
        parts.append("".join(value) if kind == "word" else value)  # type: ignore[arg-type]
    return " ".join(parts)


_C = f"[{CONSONANTS}]"
_SYL = rf"(?:{_C}{VIRAMA}){{0,3}}{_C}[{MATRAS}]?[{ANUSVARA}{VISARGA}{CHANDRABINDU}]?"
_HAL = rf"(?:{_C}{VIRAMA}){{1,3}}"
_VOW = rf"[{INDEPENDENT_VOWELS}][{ANUSVARA}{VISARGA}{CHANDRABINDU}]?"
_SYLLABLE_RE = re.compile(rf"{_SYL}|{_HAL}|{_VOW}")
_TOKEN_RE = re.compile(
    rf"(?P<hal>{_HAL}(?!{_C}))|(?P<syl>{_SYL})|(?P<vow>{_VOW})"
    rf"|(?P<mark>[{DANDA}{DOUBLE_DANDA}{OM}])|(?P<num>[{DIGITS}]+)|(?P<space> +)"
)


def is_valid_devanagari_syllable(text: str) -> bool:
    """True when `text` is exactly one valid akshara.

    Grammar: (C ्){0..3} C [matra] [ं|ः|ँ]  |  (C ्){1..3} (word-final halanta)  |  V [ं|ः|ँ]
    with C a Sanskrit consonant, V an independent vowel; रृ does not occur.
    """
    return bool(_SYLLABLE_RE.fullmatch(text)) and "रृ" not in text


def is_valid_devanagari_text(text: str, *, continuous: bool = False) -> bool:
    """True when every token of `text` is a valid word, daṇḍa, ॐ or Devanagari number.

    A word is a run of aksharas in which an independent vowel may only come first and a
    halanta consonant only last. ``continuous=True`` accepts scriptio continua (words
    written without spaces, lines broken anywhere between aksharas): there a vowel may
    follow any akshara, since a word boundary can fall anywhere.
    """
    if "रृ" in text or not text.strip():
        return False
    pos = 0
    in_word = 0  # aksharas so far in the current word
    after_halanta = False
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            return False
        kind = m.lastgroup
        if kind in ("syl", "hal", "vow"):
            if after_halanta and not continuous:
                return False
            if kind == "vow" and in_word and not continuous:
                return False
            in_word += 1
            after_halanta = kind == "hal"
        else:
            in_word = 0
            after_halanta = False
        pos = m.end()
    return True
