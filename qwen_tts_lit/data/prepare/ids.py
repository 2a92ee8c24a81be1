"""Clip ids: an id becomes a file name (``audio/<id>.wav``) on any file system.

The rule: letters and digits of any script (NFC), marks after the first character, '.', '_', '-'; no separators or
control characters; not a Windows device name. :func:`id_problem` says why a given id breaks it (the checks report
that row), :func:`safe_id` makes one that keeps it from a file name (the readers of folder inputs, and the checks
when a row has no id). Pure functions, imported by both ``sources`` and ``checks``, so neither imports the other.
"""

from __future__ import annotations

import re
import unicodedata

ID_MAX_CHARS, ID_MAX_BYTES = 128, 200  # 200 UTF-8 bytes + ".wav" stays under every file system's 255-byte limit
ID_PUNCTUATION = "._-"
RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def _id_char_ok(char: str, first: bool) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or (not first and (category[0] == "M" or char in ID_PUNCTUATION))


def id_problem(value: str) -> str | None:
    """Why ``value`` (NFC) cannot be a file name on every file system, or None."""
    if not value or not all(_id_char_ok(c, i == 0) for i, c in enumerate(value)):
        return "letters and digits of any script, then also '.', '_', '-'"
    if len(value) > ID_MAX_CHARS or len(value.encode("utf-8")) > ID_MAX_BYTES:
        return f"at most {ID_MAX_CHARS} characters and {ID_MAX_BYTES} UTF-8 bytes"
    if value.endswith("."):
        return "no '.' at the end (Windows drops it)"
    if value.split(".")[0].casefold() in RESERVED_NAMES:
        return "a reserved device name on Windows"
    return None


def safe_id(stem: str) -> str:
    """A file-name-safe id from a file name: NFC, other characters become '_', reserved names get a '_'."""
    chars = [c if _id_char_ok(c, False) else "_" for c in unicodedata.normalize("NFC", stem)]
    clean = re.sub(r"_+", "_", "".join(chars)).lstrip(ID_PUNCTUATION)[:ID_MAX_CHARS].rstrip(".") or "clip"
    while len(clean.encode("utf-8")) > ID_MAX_BYTES:
        clean = clean[:-1]
    return clean + "_" if clean.split(".")[0].casefold() in RESERVED_NAMES else clean
