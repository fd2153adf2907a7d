"""Normalising people's and places' names, in any script, for addresses and for comparisons."""

import re
import unicodedata
from collections.abc import Callable

from anyascii import anyascii

# The accents of Latin, Greek and Cyrillic letters once decomposed (the combining diacritical marks); the marks of
# other scripts (a Japanese voicing mark, a Devanagari vowel sign) change the letter, so they stay.
ACCENTS = re.compile(r"[\u0300-\u036f]")
APOSTROPHES = re.compile(r"[\s'‘’`ʼ]+")


def is_name_character(char: str) -> bool:
    """Letters, digits and marks, of any script; symbols, punctuation and spaces are not part of a name."""
    return unicodedata.category(char)[0] in "LMN"


def address_part(value: str) -> str:
    """One substituted value of an e-mail template: `Jean-Loup O'Brien` → `jean-loup-o-brien`, `Иван` → `ivan`."""
    # Symbols go before transliterating: anyascii spells them too (`©` → `(C)`, an emoji → `:grinning:`). The
    # apostrophes go first, so that one anyascii writes (`Ольга` → `Ol'ga`) is dropped, not made a `-`.
    text = "".join(char for char in APOSTROPHES.sub("-", value) if char == "-" or is_name_character(char))
    text = re.sub(r"[^a-z0-9-]", "", anyascii(text).lower())
    return re.sub(r"-{2,}", "-", text).strip("-")


def comparable(value: str) -> str:
    """Equal for names that differ only by case, accents, punctuation or runs of spaces, in any script."""
    text = ACCENTS.sub("", unicodedata.normalize("NFKD", APOSTROPHES.sub(" ", value)).casefold())
    return " ".join("".join(folded(char) for char in text).split())


def folded(char: str) -> str:
    """A character of a name as compared: every script's letters stay themselves (`王伟` is not `李娜`), a Latin
    letter without decomposition is spelled out (`ø` → `o`), anything else separates words."""
    if not is_name_character(char):
        return " "
    if not char.isascii() and unicodedata.name(char, "").startswith("LATIN "):
        return anyascii(char).lower()
    return char


def same_name(one: str, other: str) -> bool:
    """The same name once normalised; a name without any letter or digit is the same as none."""
    return same_name_as(one)(other)


def same_name_as(name: str) -> Callable[[str], bool]:
    """A test for names that are the same as `name`, normalised once: it is compared with many (aliases, places)."""
    wanted = comparable(name)
    return lambda other: bool(wanted) and comparable(other) == wanted
