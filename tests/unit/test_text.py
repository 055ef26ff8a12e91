"""core.text: what user text loses before it is stored, and the one tag normaliser."""

import re
import sys

import pytest

from imageservice.core.filenames import download_name, sanitize_filename
from imageservice.core.text import INVISIBLE, SPACES, is_utf8_encodable, normalise_tag, strip_invisible


@pytest.mark.parametrize("raw, clean", [
    ("photo\u202egnp.exe", "photognp.exe"),
    ("a\x00b\x1b[31mc", "ab[31mc"),
    ("\u2066x\u2069\u200e\u200f\u061c", "x"),
    ("line\u2028sep\u2029", "linesep"),
    ("\x85\x9fnext", "next"),
    ("family \U0001F468\u200d\U0001F469", "family \U0001F468\u200d\U0001F469"),  # ZWJ emoji kept
])
def test_strip_invisible(raw, clean):
    assert strip_invisible(raw) == clean


def test_filenames_lose_bidi_overrides_and_nul():
    assert sanitize_filename("invoice\u202efdp.exe\x00") == "invoicefdp.exe"


def test_download_name_takes_the_detected_types_extension():
    assert download_name("setup.exe", "image/png") == "setup.png"
    assert download_name("holiday.JPG", "image/jpeg") == "holiday.jpg"
    assert download_name("odd.bin", None) == "odd.bin"


def test_one_tag_normaliser():
    assert normalise_tag("  Beach\u200e  Day\t") == "beach day"
    assert normalise_tag("Cafe\u0301") == "café"  # NFC: one spelling matches the other
    assert normalise_tag("\u202e\u2066") == ""


def test_spaces_are_what_str_split_splits_on_once_the_invisible_characters_are_gone():
    """SPACES (published for the browser, whose own whitespace class differs) is Python's."""
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    visible = re.sub(INVISIBLE, "", every)
    assert "".join(re.findall(SPACES, visible)) == "".join(c for c in visible if c.isspace())
    assert normalise_tag("a\ufeffb") == "a\ufeffb"   # a browser's \s holds U+FEFF; str.split() does not


def test_lone_surrogates_are_not_encodable():
    assert is_utf8_encodable("ok \U0001F600")
    assert not is_utf8_encodable("bad \ud800")
