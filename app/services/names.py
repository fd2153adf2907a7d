"""Normalising people's and places' names, for addresses and for comparisons."""

import re
import unicodedata

# Letters that Unicode decomposition does not reduce to ASCII.
TRANSLITERATIONS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "œ": "oe", "Œ": "OE", "đ": "d",
     "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i"}
)  # fmt: skip


def to_ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.translate(TRANSLITERATIONS))
    return decomposed.encode("ascii", "ignore").decode()


def address_part(value: str) -> str:
    """One substituted value of an e-mail template: `Jean-Loup O'Brien` → `jean-loup-o-brien`."""
    # Apostrophes first: a typographic one would otherwise vanish in the ASCII folding.
    text = to_ascii(re.sub(r"[\s'’`]+", "-", value)).lower()
    text = re.sub(r"[^a-z0-9-]", "", text)
    return re.sub(r"-{2,}", "-", text).strip("-")


def comparable(value: str) -> str:
    """Equal for names that differ only by case, accents, punctuation or runs of spaces."""
    text = re.sub(r"[^a-z0-9]+", " ", to_ascii(value).lower())
    return text.strip()
