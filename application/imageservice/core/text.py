"""User-supplied text shown back to people: what is removed from filenames and tags, and the one
tag normaliser every caller (upload, edit, list filter) goes through."""

from __future__ import annotations

import re
import unicodedata

# Characters that change how the text around them is read without being text: C0/C1 controls
# (NUL, CR, LF, ESC ...), the bidirectional embeddings, overrides and isolates (U+202E makes
# "photo\u202egnp.exe" display as "photoexe.png"), the directional marks, the line and paragraph
# separators, and lone surrogates. Zero-width joiners stay: emoji sequences need them.
# This pattern, SPACES and TAG_NORMAL_FORM are the tag rule as data: written with escapes only,
# Python's re and a browser's RegExp (with the u flag) read them alike, so the pages publish them
# (web/pages/constants.py) and the gallery's tag filter matches tags as they are stored.
INVISIBLE = r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
# Whitespace once the invisible characters are gone: what str.isspace() holds, less those.
SPACES = r"[ \xa0\u1680\u2000-\u200a\u202f\u205f\u3000]+"
TAG_NORMAL_FORM = "NFC"
_INVISIBLE = re.compile(INVISIBLE)
_SPACES = re.compile(SPACES)


def strip_invisible(text: str) -> str:
    """``text`` without control, bidi-format and separator characters (see _INVISIBLE)."""
    return _INVISIBLE.sub("", text)


def is_utf8_encodable(text: str) -> bool:
    """False for strings holding lone surrogates (JSON may carry them as ``\\ud800``); such a
    string cannot be stored, logged or put in a header, so callers refuse it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalise_tag(text: str) -> str:
    """One tag as it is stored and matched: NFC, invisible characters gone, runs of whitespace
    made one space, lower case. May return "" (the caller drops it)."""
    text = strip_invisible(unicodedata.normalize(TAG_NORMAL_FORM, text))
    return _SPACES.sub(" ", text).strip(" ").lower()
